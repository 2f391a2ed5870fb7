"""The adapter's settings, read once from `Settings` and resolved per server.

Channel settings hold one id per server; channel ids are unique across Discord, so the
channel for a server is the configured one that belongs to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import discord

from bot.settings import Settings


@dataclass(frozen=True, slots=True)
class DiscordConfig:
    guild_ids: frozenset[int] = frozenset()
    announce_channels: tuple[int, ...] = ()
    stage_channels: tuple[int, ...] = ()
    alert_channels: tuple[int, ...] = ()
    moderator_roles: frozenset[str] = frozenset()
    ticket_only_stage: bool = True
    retry_seconds: float = 300.0
    #: how often everyone on a live Space's channel is checked again (`StageSync.recheck`):
    #: how late a refund made by another process reaches the Stage at most
    recheck_seconds: float = 10.0
    public_url: str = "http://127.0.0.1:8080"
    #: Discord drops an interaction not answered within 3 s: past this, defer and follow up.
    ack_within: float = 2.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DiscordConfig:
        return cls(
            guild_ids=frozenset(settings.discord_guild_ids),
            announce_channels=tuple(settings.discord_announce_channel_ids),
            stage_channels=tuple(settings.discord_stage_channel_ids),
            alert_channels=tuple(settings.discord_alert_channel_ids),
            moderator_roles=frozenset(settings.discord_moderator_roles),
            ticket_only_stage=settings.discord_ticket_only_stage,
            retry_seconds=float(settings.discord_retry_seconds),
            public_url=settings.resolved_public_url,
        )

    def serves(self, guild_id: int) -> bool:
        """Whether Stagepass runs in this server (every server when none are listed)."""
        return not self.guild_ids or guild_id in self.guild_ids

    def announce_channel(self, guild: discord.Guild) -> discord.TextChannel | None:
        channel = _first(guild, self.announce_channels)
        return channel if isinstance(channel, discord.TextChannel) else None

    def stage_channel(self, guild: discord.Guild) -> discord.StageChannel | None:
        channel = _first(guild, self.stage_channels)
        return channel if isinstance(channel, discord.StageChannel) else None

    def alert_channel(self, guild: discord.Guild) -> discord.TextChannel | None:
        channel = _first(guild, self.alert_channels)
        return channel if isinstance(channel, discord.TextChannel) else None


def _first(guild: discord.Guild, ids: Iterable[int]) -> discord.abc.GuildChannel | None:
    for channel_id in ids:
        channel = guild.get_channel(channel_id)
        if channel is not None:
            return channel
    return None
