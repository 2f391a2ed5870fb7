"""Telling the people who run a server about a problem: Discord refusing the bot something,
or a disputed payment.

The host hears by DM. The moderators hear in the alert channel, which mentions every role
that makes a member a moderator, when one is configured; else the server owner gets a DM
(without the privileged Members intent, the owner is the one moderator the bot can name).
"""

from __future__ import annotations

from collections.abc import Collection

import discord
import structlog

from adapters.discord.config import DiscordConfig
from adapters.discord.dms import DirectMessages
from adapters.discord.members import moderator_roles
from adapters.discord.render import Rendered, clip

log = structlog.get_logger(__name__)


class Alerts:
    def __init__(self, client: discord.Client, config: DiscordConfig, dms: DirectMessages) -> None:
        self.client = client
        self.config = config
        self.dms = dms
        self._told: set[tuple[int, str]] = set()

    async def tell_staff(self, guild: discord.Guild, host_user_id: int | None, text: str) -> None:
        """The host by DM, and the moderators (`tell_moderators`)."""
        told = set()
        if host_user_id is not None and await self.dms.send(host_user_id, Rendered(content=text)):
            told.add(host_user_id)
        await self.tell_moderators(guild, text, told=told)

    async def tell_moderators(
        self, guild: discord.Guild, text: str, *, told: Collection[int] = ()
    ) -> None:
        """A post in the alert channel mentioning the moderator roles; when there is none,
        or it refuses the post, a DM to the server owner unless they are among `told`."""
        channel = self.config.alert_channel(guild)
        if channel is not None:
            mentions = "".join(
                f"{role.mention} " for role in moderator_roles(guild, self.config.moderator_roles)
            )
            try:
                await channel.send(
                    content=clip(mentions + text, 2000),
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

    def forget(self, guild: discord.Guild, key: str) -> None:
        """The problem is solved: `once` tells about it again if it comes back."""
        self._told.discard((guild.id, key))
