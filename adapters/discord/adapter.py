"""The Discord adapter: Discord interactions -> typed core commands, core events ->
Discord messages, roles, scheduled events and Stage state.

It owns every task it starts (interactions in flight, handlers of Discord events, the
upkeep loop) and closes them in order: finish what is in flight, close the client,
cancel and await the rest.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import discord
import structlog
from discord.app_commands import Choice

from adapters.discord import render
from adapters.discord.alerts import Alerts
from adapters.discord.announcements import Announcer, announcement_link
from adapters.discord.client import StagepassClient
from adapters.discord.commands import Build, SpaceKind
from adapters.discord.config import DiscordConfig
from adapters.discord.dms import DirectMessages
from adapters.discord.members import actor_for, guild_of, split_key
from adapters.discord.models import DiscordSpace
from adapters.discord.roles import TicketRoles
from adapters.discord.stage import StageSync
from adapters.discord.stage_access import StageAccess
from adapters.discord.store import DiscordStore, SpaceLocks
from bot.actors import Actor, UserRef
from bot.announcements import AnnouncementLink
from bot.commands import types as t
from bot.commands.handlers import Dispatcher
from bot.commands.times import format_when
from bot.core import Core
from bot.errors import InvalidInput, UserError
from bot.events import (
    CohostChanged,
    DirectMessage,
    HoldCreated,
    HoldReleased,
    PaymentDisputed,
    SpaceAnnounced,
    SpaceCancelled,
    SpaceEnded,
    SpaceEvent,
    SpaceStarted,
    SpaceUpdated,
    StageChanged,
    TicketClosed,
    TicketIssued,
    TipReceived,
)
from bot.models import Platform, Space, SpaceStatus
from bot.money import currency as lookup_currency
from bot.money import parse_amount
from bot.notices import dispute_alert
from bot.replies import Reply

log = structlog.get_logger(__name__)

_UTC = ZoneInfo("UTC")

SpaceWork = Callable[[discord.Guild, Space, DiscordSpace], Awaitable[None]]


class DiscordAdapter:
    def __init__(
        self,
        core: Core,
        dispatcher: Dispatcher,
        config: DiscordConfig,
        *,
        ready_timeout: float = 60.0,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        """`client_options` go to `discord.Client` (tests shorten `guild_ready_timeout`)."""
        self.core = core
        self.dispatcher = dispatcher
        self.config = config
        self.client = StagepassClient(self, **(client_options or {}))
        self.store = DiscordStore(core.db, core.clock)
        self.locks = SpaceLocks()
        self.dms = DirectMessages(self.client)
        self.alerts = Alerts(self.client, config, self.dms)
        self.announcer = Announcer(core, self.client, config, self.store, self.alerts)
        self.roles = TicketRoles(core, self.client, config, self.store, self.alerts)
        self.stage = StageSync(core, self.client, config, self.store, self.alerts)
        self.access = StageAccess(core, self.client, config, self.store, self.alerts)
        self.roles.access = self.stage.access = self.access
        self._ready_timeout = ready_timeout
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- life cycle ----------------------------------------------------------------------

    async def announcement_link(self, space_id: int) -> AnnouncementLink | None:
        """The link to the Space's announcement here (the public page's call to action)."""
        return announcement_link(await self.store.get(space_id))

    def subscribe(self) -> None:
        """Listen to the core's events (once per core)."""
        self.core.spaces.add_start_check(self.access.claim)
        self.core.announcements.register(self.announcement_link)
        bus = self.core.bus
        bus.subscribe(SpaceAnnounced, self.on_announced)
        bus.subscribe(SpaceUpdated, self.on_updated)
        bus.subscribe(SpaceStarted, self.on_started)
        bus.subscribe(SpaceEnded, self.on_over)
        bus.subscribe(SpaceCancelled, self.on_over)
        bus.subscribe(TicketIssued, self.on_ticket_issued)
        bus.subscribe(TicketClosed, self.on_ticket_closed)
        bus.subscribe(HoldCreated, self.on_seats)
        bus.subscribe(HoldReleased, self.on_seats)
        bus.subscribe(CohostChanged, self.on_cohost)
        bus.subscribe(StageChanged, self.on_stage_changed)
        bus.subscribe(DirectMessage, self.on_direct_message)
        self.core.outbox.delivers(Platform.DISCORD)
        bus.subscribe(TipReceived, self.on_tip)
        bus.subscribe(PaymentDisputed, self.on_payment_disputed)

    async def run(self, token: str, stop: asyncio.Event) -> None:
        """Connect and serve until `stop` is set, then close and await everything owned.
        Raises what ended the client early (a bad token, say), after logging it."""
        client = asyncio.create_task(self.client.start(token), name="discord:client")
        stopping = asyncio.create_task(stop.wait(), name="discord:stop")
        upkeep = asyncio.create_task(self._upkeep(), name="discord:upkeep")
        try:
            await asyncio.wait({client, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await self.close()
            stopping.cancel()
            upkeep.cancel()
            await asyncio.gather(client, stopping, upkeep, return_exceptions=True)
        error = None if client.cancelled() else client.exception()
        if error is not None and not stop.is_set():
            log.error("the Discord client stopped", exc_info=error)
            raise error

    async def close(self) -> None:
        """Let in-flight interactions and handlers finish (up to 10 s), close the client,
        then cancel and await whatever is left."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)
        if self.stage.bridges is not None:
            await self.stage.bridges.aclose()  # leave voice before the gateway goes
        await self.client.close()
        pending = list(self._tasks)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def connected(self) -> None:
        self._ready.set()

    def wake(self) -> None:
        """Roles changed somewhere: retry refused role changes now."""
        self._wake.set()

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` as an owned, named task whose failure is logged."""
        task = asyncio.create_task(self._logged(work, name), name=f"discord:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await work
        except Exception:
            log.exception("Discord handler failed", handler=name)

    async def _upkeep(self) -> None:
        """Every DISCORD_RETRY_SECONDS: retry refused role changes and turn "interested"
        marks on scheduled events into reminders. Role changes in Discord wake it early."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.retry_seconds)
                woken = True
            except TimeoutError:
                woken = False
            self._wake.clear()
            if not self._ready.is_set() or self.client.is_closed():
                continue
            # a round is an owned task like any other: close() lets it finish
            round_ = asyncio.create_task(self._upkeep_round(woken), name="discord:upkeep-round")
            self._tasks.add(round_)
            round_.add_done_callback(self._tasks.discard)
            await asyncio.wait({round_})

    async def _upkeep_round(self, woken: bool) -> None:
        try:
            await self.retry_roles()
            if not woken:
                for guild in self.client.guilds:
                    if self.config.serves(guild.id):
                        await self.stage.sync_interested(guild)
        except Exception:
            log.exception("Discord upkeep failed; trying again next round")

    # --- servers -------------------------------------------------------------------------

    async def guild_ready(self, guild: discord.Guild) -> None:
        """A server became available (start-up, reconnect, invite): sync the slash
        commands there and catch up with what happened while we were away."""
        if not self.config.serves(guild.id):
            return
        await self.sync_commands(guild)
        await self.reconcile(guild)

    async def sync_commands(self, guild: discord.abc.Snowflake) -> int:
        tree = self.client.tree
        tree.copy_global_to(guild=guild)
        try:
            synced = await tree.sync(guild=guild)
        except discord.Forbidden:
            log.error(
                "cannot register slash commands: invite the bot with the applications.commands "
                "scope (see adapters/discord/README.md)",
                guild=guild.id,
            )
            return 0
        log.info("slash commands synced", guild=guild.id, commands=len(synced))
        return len(synced)

    async def reconcile(self, guild: discord.Guild) -> None:
        """Post announcements (and events, roles) for Spaces announced while offline,
        refresh the others, retry refused role changes. Never posts anything twice."""
        for space in await self.core.spaces.list_spaces(f"discord:{guild.id}"):
            assert space.id is not None
            await self._settle(guild, space.id)
            await self._step(space.id, "announcement refresh", self.announcer.refresh(space.id))
        await self.retry_roles(guild)

    async def retry_roles(self, only: discord.Guild | None = None) -> None:
        refused: set[int] = set()
        for space_id in dict.fromkeys(task.space_id for task in await self.store.tasks()):
            space = await self.core.spaces.get(space_id)
            guild_id = guild_of(space.community_id)
            guild = self.client.get_guild(guild_id) if guild_id is not None else None
            if guild is None or guild.id in refused or (only is not None and only.id != guild.id):
                continue
            async with self.locks.hold(space_id):
                row = await self.store.get_or_new(space_id, guild.id)
                if not await self.roles.retry(guild, space, row):
                    refused.add(guild.id)

    # --- core events -> Discord ----------------------------------------------------------

    async def on_announced(self, event: SpaceAnnounced) -> None:
        guild = await self._guild(event.community_id)
        if guild is not None:
            await self._settle(guild, event.space_id)

    async def on_updated(self, event: SpaceUpdated) -> None:
        await self._locked(event, "scheduled event edit", self.stage.updated)
        await self._refresh(event)

    async def on_started(self, event: SpaceStarted) -> None:
        async def start(guild: discord.Guild, space: Space, row: DiscordSpace) -> None:
            await self._step(
                event.space_id, "Stage instance", self.stage.started(guild, space, row)
            )
            await self.roles.prepare(guild, space, row)  # the host's way in, without sales
            await self._step(event.space_id, "Stage lock", self.access.lock(guild, space, row))
            text = render.live(space, self.access.venue(guild, row))
            await self._step(
                event.space_id, "live post", self.announcer.tell(guild, space.id, text)
            )

        await self._locked(event, "start of Space", start)
        await self._refresh(event)

    async def on_over(self, event: SpaceEnded | SpaceCancelled) -> None:
        async def finish(guild: discord.Guild, space: Space, row: DiscordSpace) -> None:
            sync = self.stage.ended if isinstance(event, SpaceEnded) else self.stage.cancelled
            await self._step(event.space_id, "scheduled event", sync(guild, space, row))
            await self._step(event.space_id, "Stage unlock", self.access.unlock(guild, space, row))
            await self.roles.delete(guild, space, row)

        await self._locked(event, "end of Space", finish)
        await self._refresh(event)

    async def on_ticket_issued(self, event: TicketIssued) -> None:
        await self._member_role(event, event.holder_key, grant=True)
        await self._refresh(event)

    async def on_ticket_closed(self, event: TicketClosed) -> None:
        await self._member_role(event, event.holder_key, grant=False)
        await self._refresh(event)

    async def on_seats(self, event: HoldCreated | HoldReleased) -> None:
        await self._refresh(event)

    async def on_cohost(self, event: CohostChanged) -> None:
        await self._member_role(event, event.identity_key, grant=event.added)

    async def on_stage_changed(self, event: StageChanged) -> None:
        guild = await self._guild(event.community_id)
        if guild is None:
            return
        await self._step(event.space_id, "Stage sync", self.stage.mirror(event))
        if event.change == "promoted":
            space = await self.core.spaces.get(event.space_id)
            text = render.new_speaker(space, event.identity_key)
            await self._step(
                event.space_id, "speaker post", self.announcer.tell(guild, space.id, text)
            )

    async def on_direct_message(self, event: DirectMessage) -> None:
        ids = split_key(event.identity_key)
        if ids is not None and await self._guild(f"discord:{ids[0]}") is not None:
            await self.dms.deliver(event, self.core.outbox, await self.zone(event.identity_key))

    async def on_tip(self, event: TipReceived) -> None:
        guild = await self._guild(event.community_id)
        if guild is not None:
            await self._step(event.space_id or 0, "tip thanks", self.announcer.thank(guild, event))

    async def on_payment_disputed(self, event: PaymentDisputed) -> None:
        """The moderators hear of a disputed payment (the host has the core's DM)."""
        guild = await self._guild(event.community_id)
        if guild is None:
            return
        space = await self.core.spaces.get(event.space_id)
        host = await self.core.identities.get(space.host_id)
        text = dispute_alert(
            event, space, buyer=render.mention(event.holder_key), quote=render.quote
        )
        told = {int(host.user_id)} if host.user_id.isdigit() else set()
        await self._step(
            event.space_id, "dispute alert", self.alerts.tell_moderators(guild, text, told=told)
        )

    async def _member_role(self, event: SpaceEvent, identity_key: str, *, grant: bool) -> None:
        ids = split_key(identity_key)
        if ids is None:
            return
        user_id = str(ids[1])

        async def change(guild: discord.Guild, space: Space, row: DiscordSpace) -> None:
            if grant:
                await self.roles.grant(guild, space, row, user_id)
            else:
                await self.roles.revoke(guild, space, row, user_id)
                await self.access.recheck(guild, space, row, int(user_id))

        await self._locked(event, "ticket role", change)

    async def _settle(self, guild: discord.Guild, space_id: int) -> None:
        """Give a Space its announcement and scheduled event (its role comes with the
        first sale, or at the start); idempotent."""
        async with self.locks.hold(space_id):
            space = await self.core.spaces.get(space_id)
            if space.status.is_final:
                return
            row = await self.store.get_or_new(space_id, guild.id)
            await self._step(space_id, "announcement", self.announcer.post(guild, space, row))
            await self._step(space_id, "scheduled event", self.stage.schedule(guild, space, row))

    async def _locked(self, event: SpaceEvent, what: str, work: SpaceWork) -> None:
        guild = await self._guild(event.community_id)
        if guild is None:
            return
        async with self.locks.hold(event.space_id):
            space = await self.core.spaces.get(event.space_id)
            row = await self.store.get_or_new(event.space_id, guild.id)
            await self._step(event.space_id, what, work(guild, space, row))

    async def _refresh(self, event: SpaceEvent) -> None:
        if await self._guild(event.community_id) is not None:
            await self._step(
                event.space_id, "announcement refresh", self.announcer.refresh(event.space_id)
            )

    async def _guild(self, community_id: str) -> discord.Guild | None:
        """The server of a core event, once connected; None when it is not ours."""
        guild_id = guild_of(community_id)
        if guild_id is None or not self.config.serves(guild_id) or self.client.is_closed():
            return None
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=self._ready_timeout)
        except TimeoutError:
            log.warning("Discord is not connected; the next start catches up", guild=guild_id)
            return None
        return self.client.get_guild(guild_id)

    @staticmethod
    async def _step(space_id: int, what: str, work: Awaitable[None]) -> None:
        """One Discord step of a larger change: a refusal is logged and the rest goes on."""
        try:
            await work
        except discord.HTTPException as exc:
            log.warning(
                "Discord refused a step",
                space_id=space_id,
                step=what,
                status=exc.status,
                code=exc.code,
                text=exc.text,
            )

    # --- interactions -> core ------------------------------------------------------------

    def actor(self, interaction: discord.Interaction[Any]) -> Actor:
        member = interaction.user
        if not isinstance(member, discord.Member):
            raise InvalidInput("Stagepass works in servers; use its commands there.")
        return actor_for(member, self.config.moderator_roles, interaction.permissions)

    async def command(self, interaction: discord.Interaction[Any], build: Build) -> None:
        """Run the typed command `build` makes for the member behind `interaction`."""

        async def work() -> Reply:
            try:
                actor = self.actor(interaction)
                command = await build(actor)
            except UserError as exc:
                return Reply(exc.message, error=True)
            return await self.dispatcher.execute(actor, command)

        await self.answer(interaction, work())

    async def run_line(self, interaction: discord.Interaction[Any], line: str) -> None:
        """A button's command line, run as the member who clicked it."""

        async def work() -> Reply:
            try:
                actor = self.actor(interaction)
            except UserError as exc:
                return Reply(exc.message, error=True)
            return await self.dispatcher.handle(actor, line)

        await self.answer(interaction, work())

    async def tip(
        self, interaction: discord.Interaction[Any], space_id: int, amount: str, message: str
    ) -> None:
        """The tip form of an announcement: tip the Space's host in its currency."""

        async def build(actor: Actor) -> t.Command:
            space = await self.core.spaces.get_in(space_id, actor.community_id)
            host = await self.core.identities.get(space.host_id)
            code = lookup_currency(space.currency).code
            parse_amount(amount, code)
            return t.Tip(
                UserRef(host.user_id, host.display_name),
                amount.strip(),
                code,
                message.strip()[:300],
                True,
                space_id,
            )

        await self.command(interaction, build)

    async def answer(
        self, interaction: discord.Interaction[Any], work: Coroutine[Any, Any, Reply]
    ) -> None:
        """Answer within Discord's 3 seconds: directly when the work is quick, otherwise
        defer ("thinking…") and replace that with the reply. Every answer is ephemeral: it
        concerns the person who asked (the host's echo, refund counts, thanks for hosting);
        what concerns everyone (announced, live, a new speaker) is posted once, in the
        announcement channel, from the core's events."""
        current = asyncio.current_task()
        if current is not None:
            self._tasks.add(current)
        job = asyncio.create_task(self._safely(work), name=f"discord:interaction:{interaction.id}")
        try:
            done, _ = await asyncio.wait({job}, timeout=self.config.ack_within)
            if not done:
                await interaction.response.defer(ephemeral=True, thinking=True)
            reply = await job
            reader = f"discord:{interaction.guild_id}:{interaction.user.id}"
            shown = render.reply(reply, await self.zone(reader))
            if not interaction.response.is_done():
                await interaction.response.send_message(**shown.send_kwargs(), ephemeral=True)
            else:
                await interaction.edit_original_response(**shown.edit_kwargs())
        finally:
            if not job.done():
                job.cancel()
                await asyncio.gather(job, return_exceptions=True)
            if current is not None:
                self._tasks.discard(current)

    async def zone(self, identity_key: str) -> ZoneInfo:
        """The zone the core writes this person's times in (theirs, by /tz set; else UTC)."""
        identity = await self.core.identities.by_key(identity_key)
        return ZoneInfo(identity.tz if identity is not None else "UTC")

    @staticmethod
    async def _safely(work: Coroutine[Any, Any, Reply]) -> Reply:
        try:
            return await work
        except Exception:
            ref = secrets.token_hex(3)
            log.exception("Discord interaction failed", ref=ref)
            return Reply(
                f"Something went wrong on our side and it was logged (ref {ref}). "
                "Nothing was changed; please try again.",
                error=True,
            )

    async def space_choices(
        self, interaction: discord.Interaction[Any], current: str, kind: SpaceKind
    ) -> list[Choice[int]]:
        """Autocomplete: Spaces here by title or number — the member's own for host
        commands (every one for moderators), live ones for stage commands. A choice's
        name is plain text (no `<t:…>` markup), so its time is in UTC, labelled so."""
        try:
            actor = self.actor(interaction)
        except UserError:
            return []
        identity = await self.core.identities.by_key(actor.key)
        spaces = await self.core.spaces.list_spaces(actor.community_id)
        if kind == "live":
            spaces = [s for s in spaces if s.status == SpaceStatus.LIVE]
        elif kind == "yours" and not actor.is_moderator:
            me = identity.id if identity is not None else None
            spaces = [
                s
                for s in spaces
                if s.host_id == me or me in await self.core.spaces.cohost_ids(s.id or 0)
            ]
        needle = current.strip().lstrip("#").lower()
        return [
            Choice(
                name=render.clip(f"#{s.id} {s.title} · {format_when(s.starts_at, _UTC)}", 100),
                value=s.id or 0,
            )
            for s in spaces
            if not needle or needle in s.title.lower() or str(s.id).startswith(needle)
        ][:25]

    async def interested(self, event: discord.ScheduledEvent, user: discord.User) -> None:
        row = await self.store.by_event(event.id)
        guild = self.client.get_guild(event.guild_id)
        if row is not None and guild is not None:
            await self.stage.interested(guild, row.space_id, user)
