"""The discord.py client and its gateway set-up: intents, the command tree and its sync,
the persistent buttons, and what the gateway reports handed on to a `Gateway`.

Intents are all non-privileged (no Members, no Message Content): guilds, voice states
(Stage speakers) and scheduled events (who is interested).
"""

from __future__ import annotations

from typing import Any, Protocol

import discord
import structlog
from discord import app_commands

from adapters.discord.commands import build_commands
from adapters.discord.components import CommandButton, TipButton
from adapters.discord.interactions import Interactions

log = structlog.get_logger(__name__)

INTENTS = discord.Intents(guilds=True, voice_states=True, guild_scheduled_events=True)


class Gateway(Protocol):
    """What the client reports (the adapter, `app.DiscordAdapter`, implements it). Each
    call returns at once: work it starts is the adapter's own task."""

    def connected(self) -> None:
        """The session is ready (first connect and every reconnect)."""

    def guild_ready(self, guild: discord.Guild) -> None:
        """A server became available: start-up, reconnect or invite."""

    def voice_changed(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        """Someone joined, left or changed state in a voice or Stage channel."""

    def interested(self, event: discord.ScheduledEvent, user: discord.User) -> None:
        """A member marked a scheduled event "interested"."""

    def roles_changed(self) -> None:
        """Roles (or the bot's own) changed in some server: refused role changes may work now."""

    def channel_changed(self, channel: discord.abc.GuildChannel) -> None:
        """A channel changed (its permission overwrites, say)."""


class StagepassTree(app_commands.CommandTree["StagepassClient"]):
    async def on_error(
        self, interaction: discord.Interaction[StagepassClient], error: app_commands.AppCommandError
    ) -> None:
        """What the callbacks did not answer themselves: bad option values and bugs."""
        if isinstance(error, app_commands.TransformerError):
            text = f"⚠️ I can't read {error.value!r} there; pick one of the suggestions."
        elif isinstance(error, app_commands.NoPrivateMessage):
            text = "⚠️ Stagepass works in servers; use its commands there."
        elif isinstance(
            error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch
        ):
            text = "⚠️ That command changed; the new one appears in a moment."
            log.warning("stale slash command", command=str(error))
        else:
            log.error("slash command failed", exc_info=error)
            text = "⚠️ Something went wrong on our side and it was logged. Nothing was changed."
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell the member about an error", interaction=interaction.id)


class StagepassClient(discord.Client):
    def __init__(self, interactions: Interactions, gateway: Gateway, **options: Any) -> None:
        super().__init__(
            intents=INTENTS,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            **options,
        )
        self.interactions = interactions  # the buttons find it here (`components.clicks_of`)
        self.gateway = gateway
        self.tree = StagepassTree(self)

    async def setup_hook(self) -> None:
        # persistent buttons: matched by custom_id, whoever posted them and whenever
        self.add_dynamic_items(CommandButton, TipButton)
        for command in build_commands(self.interactions):
            self.tree.add_command(command)

    async def sync_commands(self, guild: discord.abc.Snowflake) -> int:
        """Register the slash commands in `guild` (they appear at once); how many."""
        self.tree.copy_global_to(guild=guild)
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.Forbidden:
            log.error(
                "cannot register slash commands: invite the bot with the applications.commands "
                "scope (see adapters/discord/README.md)",
                guild=guild.id,
            )
            return 0
        log.info("slash commands synced", guild=guild.id, commands=len(synced))
        return len(synced)

    async def on_ready(self) -> None:
        log.info("connected to Discord", user=str(self.user), guilds=len(self.guilds))
        self.gateway.connected()

    async def on_guild_available(self, guild: discord.Guild) -> None:
        self.gateway.guild_ready(guild)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        self.gateway.guild_ready(guild)

    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        self.gateway.voice_changed(member, before, after)

    async def on_scheduled_event_user_add(
        self, event: discord.ScheduledEvent, user: discord.User
    ) -> None:
        self.gateway.interested(event, user)

    async def on_guild_role_update(self, before: discord.Role, after: discord.Role) -> None:
        self.gateway.roles_changed()

    async def on_guild_role_create(self, role: discord.Role) -> None:
        self.gateway.roles_changed()

    async def on_guild_channel_update(
        self, before: discord.abc.GuildChannel, after: discord.abc.GuildChannel
    ) -> None:
        self.gateway.channel_changed(after)

    async def on_member_update(self, before: discord.Member, after: discord.Member) -> None:
        if self.user is not None and after.id == self.user.id:
            self.gateway.roles_changed()
