"""Telling people what to change when Discord refuses the bot something.

A problem goes to the Space's host by DM and to the moderators: in the alert channel
(mentioning the moderator role) when one is configured, else by DM to the server owner.
"""

from __future__ import annotations

import discord
import structlog

from adapters.discord.config import DiscordConfig
from adapters.discord.dms import DirectMessages
from adapters.discord.render import Rendered

log = structlog.get_logger(__name__)


class Alerts:
    def __init__(self, client: discord.Client, config: DiscordConfig, dms: DirectMessages) -> None:
        self.client = client
        self.config = config
        self.dms = dms
        self._told: set[tuple[int, str]] = set()

    async def tell_staff(self, guild: discord.Guild, host_user_id: int | None, text: str) -> None:
        told = set()
        if host_user_id is not None and await self.dms.send(host_user_id, Rendered(content=text)):
            told.add(host_user_id)
        channel = self.config.alert_channel(guild)
        if channel is not None:
            role = self.config.moderator_role(guild)
            prefix = f"{role.mention} " if role is not None else ""
            try:
                await channel.send(
                    content=prefix + text,
                    allowed_mentions=discord.AllowedMentions(roles=True, users=False),
                )
                return
            except discord.HTTPException as exc:
                log.warning("alert channel refused a message", channel=channel.id, code=exc.code)
        if guild.owner_id is not None and guild.owner_id not in told:
            await self.dms.send(guild.owner_id, Rendered(content=text))

    async def once(
        self, guild: discord.Guild, key: str, text: str, host: int | None = None
    ) -> None:
        """`tell_staff` at most once per server and problem while this process runs."""
        if (guild.id, key) in self._told:
            return
        self._told.add((guild.id, key))
        log.warning("told staff about a Discord problem", guild=guild.id, problem=key)
        await self.tell_staff(guild, host, text)
