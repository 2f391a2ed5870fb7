"""A local fake Discord: REST API and gateway websocket on 127.0.0.1, driven by tests.

    async with FakeDiscord() as fake, fake.installed():   # discord.py now talks to it
        guild = fake.add_guild("HQ")
        alice = fake.add_member(guild, "alice")
        ...start the bot (the real, unmodified discord.py client)...
        interaction = await fake.slash(guild, alice, "space create", title="AMA", ...)
        message = await fake.answer(interaction)

The gateway sends HELLO, READY and GUILD_CREATE, answers heartbeats and RESUMEs, and
dispatches the events REST calls cause (roles, channels, scheduled events, Stage
instances, voice states), filtered by the intents the client identified with. Every REST
call is recorded in `calls`. Permissions and the role hierarchy are enforced the way
Discord enforces them (403, code 50013), interactions expire 3 s after creation (404,
code 10062), and JSON replies carry exactly `Content-Type: application/json`, which
discord.py requires. Unknown routes answer 404 and are listed in `unknown`.

Layers: `gateway.Gateway` (the world and the websocket) < `rest.RestAPI` <
`webhooks.InteractionAPI` < `FakeDiscord` (lifecycle, building the world, what people do).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import discord.gateway
import discord.http
import yarl
from aiohttp import web

from tests.waiting import PATIENCE, eventually

from . import permissions as P
from .gateway import GUILD_SCHEDULED_EVENTS, GUILDS
from .interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    FakeInteraction,
)
from .rest import API, Call
from .state import (
    DM,
    STAGE,
    TEXT,
    Channel,
    Guild,
    Json,
    Member,
    Message,
    Overwrite,
    Role,
    User,
    VoiceState,
)
from .webhooks import InteractionAPI


class FakeDiscord(InteractionAPI):
    def __init__(self, token: str = "fake-bot-token") -> None:
        super().__init__(token)
        self._runner: web.AppRunner | None = None

    # --- running -------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway/", self._gateway)
        app.router.add_route("*", API + "/{path:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_sessions()
        if self._runner is not None:
            await self._runner.cleanup()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Point discord.py's REST base and default gateway here; restore them after."""
        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.base_url + API
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url + "/")
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    # --- building the world --------------------------------------------------------------

    def add_guild(self, name: str, *, bot_permissions: int = P.BOT_INVITE) -> Guild:
        guild = Guild(self.ids.next(), name, self.operator.id)
        guild.roles[guild.id] = Role(guild.id, "@everyone", P.EVERYONE_DEFAULT, position=0)
        bot_role = Role(
            self.ids.next(),
            "Stagepass",
            bot_permissions,
            position=1,
            managed=True,
            bot_id=self.bot.id,
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot.id] = Member(self.bot, {bot_role.id})
        guild.members[self.operator.id] = Member(self.operator)
        self.guilds[guild.id] = guild
        return guild

    def bot_role(self, guild: Guild) -> Role:
        return next(r for r in guild.roles.values() if r.bot_id == self.bot.id)

    def add_role(
        self, guild: Guild, name: str, permissions: int = 0, *, above_bot: bool = False
    ) -> Role:
        """A role below the bot's (or above it, to test the hierarchy)."""
        position = self.bot_role(guild).position + 1 if above_bot else 1
        for role in guild.roles.values():
            if role.id != guild.id and role.position >= position:
                role.position += 1
        role = Role(self.ids.next(), name, permissions, position)
        guild.roles[role.id] = role
        return role

    def add_channel(self, guild: Guild, name: str, kind: int = TEXT) -> Channel:
        channel = Channel(self.ids.next(), name, kind, guild.id, position=len(guild.channels))
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        self.messages[channel.id] = []
        return channel

    def add_member(self, guild: Guild, name: str, *roles: Role) -> Member:
        user = User(self.ids.next(), name)
        self.users[user.id] = user
        member = Member(user, {r.id for r in roles})
        guild.members[user.id] = member
        return member

    # --- what tests read -----------------------------------------------------------------

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        regex = re.compile(pattern)
        return [c for c in self.calls if c.method == method and regex.fullmatch(c.path)]

    def channel_messages(self, channel: Channel) -> list[Message]:
        return list(self.messages.get(channel.id, []))

    def dms(self, user: User | Member) -> list[Message]:
        user = user.user if isinstance(user, Member) else user
        for channel in self.channels.values():
            if (
                channel.type == DM
                and channel.recipient is not None
                and channel.recipient.id == user.id
            ):
                return list(self.messages[channel.id])
        return []

    def find_message(self, message_id: int) -> Message:
        for messages in self.messages.values():
            for message in messages:
                if message.id == message_id:
                    return message
        raise AssertionError(f"no message {message_id}")

    # --- what people do in Discord -------------------------------------------------------

    async def slash(
        self, guild: Guild, member: Member, command: str, /, **values: Any
    ) -> FakeInteraction:
        """A member runs a slash command (in the first text channel), with options typed
        from the schema the bot synced."""
        data = self._command_data(guild, command, values)
        return await self._interact(APPLICATION_COMMAND, guild, member, data, None)

    async def autocomplete(
        self,
        guild: Guild,
        member: Member,
        command: str,
        option: str,
        typed: str,
        /,
        **values: Any,
    ) -> list[Json]:
        data = self._command_data(guild, command, {**values, option: typed}, focused=option)
        interaction = await self._interact(AUTOCOMPLETE, guild, member, data, None)
        await self.until(lambda: interaction.choices is not None, what="autocomplete choices")
        assert interaction.choices is not None
        return interaction.choices

    async def click(
        self, guild: Guild, member: Member, message: Message, label: str
    ) -> FakeInteraction:
        """A member clicks a button (by its label) on a message."""
        button = message.button(label)
        if button.get("disabled"):
            raise AssertionError(f"the {label!r} button is disabled")
        data = {"custom_id": button["custom_id"], "component_type": 2}
        channel = self.channels[message.channel_id]
        return await self._interact(
            MESSAGE_COMPONENT, guild, member, data, channel, message=message
        )

    async def submit(
        self, guild: Guild, member: Member, modal: Json, values: dict[str, str]
    ) -> FakeInteraction:
        """A member fills in a modal the bot opened and sends it."""
        components = []
        for label in modal["components"]:
            inner = label["component"]
            components.append(
                {
                    "type": 18,
                    "id": label.get("id", 0),
                    "component": {
                        "type": 4,
                        "id": inner.get("id", 0),
                        "custom_id": inner["custom_id"],
                        "value": values.get(inner["custom_id"], ""),
                    },
                }
            )
        data = {"custom_id": modal["custom_id"], "components": components}
        return await self._interact(MODAL_SUBMIT, guild, member, data, None)

    async def answer(self, interaction: FakeInteraction, within: float = PATIENCE) -> Message:
        """Wait for the message the member ends up seeing."""
        await self.until(lambda: interaction.answer() is not None, within, what="an answer")
        answer = interaction.answer()
        assert answer is not None
        return answer

    async def join_voice(self, guild: Guild, member: Member, channel: Channel) -> None:
        state = VoiceState(member.user.id, channel.id, suppress=channel.type == STAGE)
        guild.voice[member.user.id] = state
        await self._voice_update(guild, state)

    async def request_to_speak(self, guild: Guild, member: Member) -> None:
        state = guild.voice[member.user.id]
        state.request_to_speak = datetime.now(UTC)
        await self._voice_update(guild, state)

    async def set_suppress(self, guild: Guild, member: Member, suppress: bool) -> None:
        """A moderator (un)suppresses someone in Discord's own Stage UI."""
        state = guild.voice[member.user.id]
        state.suppress = suppress
        state.request_to_speak = None
        await self._voice_update(guild, state)

    async def mark_interested(self, guild: Guild, event_id: int, member: Member) -> None:
        event = guild.events[event_id]
        event.interested.append(member.user.id)
        await self.dispatch(
            "GUILD_SCHEDULED_EVENT_USER_ADD",
            {
                "guild_scheduled_event_id": str(event.id),
                "user_id": str(member.user.id),
                "guild_id": str(guild.id),
            },
            GUILD_SCHEDULED_EVENTS,
        )

    async def update_role(
        self,
        guild: Guild,
        role: Role,
        *,
        permissions: int | None = None,
        position: int | None = None,
    ) -> None:
        """An admin edits a role in Server Settings."""
        if permissions is not None:
            role.permissions = permissions
        if position is not None:
            role.position = position
        await self.dispatch(
            "GUILD_ROLE_UPDATE", {"guild_id": str(guild.id), "role": role.payload()}, GUILDS
        )

    async def set_overwrite(
        self, channel: Channel, target: Role, *, allow: int = 0, deny: int = 0
    ) -> None:
        """An admin edits a role's permissions on a channel (nothing allowed or denied:
        the overwrite is removed)."""
        if allow or deny:
            channel.overwrites[target.id] = Overwrite(target.id, 0, allow, deny)
        else:
            channel.overwrites.pop(target.id, None)
        await self.dispatch("CHANNEL_UPDATE", channel.payload(), GUILDS)

    async def until(
        self, check: Callable[[], object], within: float = PATIENCE, *, what: str = "it"
    ) -> None:
        """Poll `check` until it holds (`tests.waiting.eventually`)."""
        await eventually(check, what=what, within=within)
