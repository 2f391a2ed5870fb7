"""The discord.py client: intents, the command tree, and Discord events handed to the
adapter as owned tasks.

Intents are all non-privileged (no Members, no Message Content): guilds, voice states
(Stage speakers) and scheduled events (who is interested).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
import structlog
from discord import app_commands

from adapters.discord.commands import build_commands
from adapters.discord.components import CommandButton, TipButton

if TYPE_CHECKING:
    from adapters.discord.adapter import DiscordAdapter

log = structlog.get_logger(__name__)

INTENTS = discord.Intents(guilds=True, voice_states=True, guild_scheduled_events=True)


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
    def __init__(self, adapter: DiscordAdapter, **options: Any) -> None:
        super().__init__(
            intents=INTENTS,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            **options,
        )
        self.adapter = adapter
        self.tree = StagepassTree(self)

    async def setup_hook(self) -> None:
        # persistent buttons: matched by custom_id, whoever posted them and whenever
        self.add_dynamic_items(CommandButton, TipButton)
        for command in build_commands(self.adapter):
            self.tree.add_command(command)

    async def on_ready(self) -> None:
        log.info("connected to Discord", user=str(self.user), guilds=len(self.guilds))
        self.adapter.connected()

    async def on_guild_available(self, guild: discord.Guild) -> None:
        self.adapter.spawn(self.adapter.guild_ready(guild), f"guild-ready:{guild.id}")

    async def on_guild_join(self, guild: discord.Guild) -> None:
        self.adapter.spawn(self.adapter.guild_ready(guild), f"guild-join:{guild.id}")

    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        self.adapter.spawn(
            self.adapter.stage.voice_changed(member, before, after), f"voice:{member.id}"
        )

    async def on_scheduled_event_user_add(
        self, event: discord.ScheduledEvent, user: discord.User
    ) -> None:
        self.adapter.spawn(self.adapter.interested(event, user), f"interested:{event.id}")

    async def on_guild_role_update(self, before: discord.Role, after: discord.Role) -> None:
        self.adapter.wake()

    async def on_guild_role_create(self, role: discord.Role) -> None:
        self.adapter.wake()

    async def on_member_update(self, before: discord.Member, after: discord.Member) -> None:
        if self.user is not None and after.id == self.user.id:
            self.adapter.wake()
