"""The announcement of each Space: posted once in the server's announcement channel, then
edited in place whenever the Space or its ticket count changes. Public events (live, a
new speaker, a public tip) are posted in reply to it, once (`tell`).

The message id is stored (`discord_spaces`), so a restart never posts it again. Bursts of
sales collapse into one edit at a time per Space (`bot.coalescing`): while an edit is in
flight, any number of further changes make a single follow-up edit that reads the latest
state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord
import structlog

from adapters.discord import render
from adapters.discord.models import DiscordSpace
from adapters.discord.store import DELETED
from bot.announcements import AnnouncementLink
from bot.coalescing import Coalescer
from bot.events import TipReceived
from bot.models import Space
from bot.notices import tip_thanks

if TYPE_CHECKING:
    from adapters.discord.alerts import Alerts
    from adapters.discord.config import DiscordConfig
    from adapters.discord.store import DiscordStore
    from bot.core import Core

log = structlog.get_logger(__name__)

MESSAGE_URL = "https://discord.com/channels/{guild}/{channel}/{message}"
"""A message's link as Discord's "Copy Message Link" gives it (opens the app or the web)."""


def announcement_link(row: DiscordSpace | None) -> AnnouncementLink | None:
    """The link to a Space's posted announcement, or None (not posted, or deleted)."""
    if row is None or not row.channel_id or not row.message_id or row.message_id == DELETED:
        return None
    url = MESSAGE_URL.format(guild=row.guild_id, channel=row.channel_id, message=row.message_id)
    return AnnouncementLink("Discord", url)


@dataclass(eq=False, repr=False)
class Announcer:
    core: Core
    client: discord.Client
    config: DiscordConfig
    store: DiscordStore
    #: tells the host and moderators what Discord refused
    alerts: Alerts
    _edits: Coalescer = field(
        default_factory=lambda: Coalescer("discord", failed="announcement edit failed"), init=False
    )

    async def post(self, guild: discord.Guild, space: Space, row: DiscordSpace) -> None:
        """Post the announcement unless it was posted before (caller holds the Space lock)."""
        if row.message_id is not None:
            return
        channel = self.config.announce_channel(guild)
        host = await self.core.identities.get(space.host_id)
        if channel is None:
            # answers are private, so without this channel nobody would see the Space
            await self.alerts.once(
                guild,
                "announce_channel",
                f"“{space.title}” (#{space.id}) was not announced: this server has no "
                "announcement channel.\nTo fix: set DISCORD_ANNOUNCE_CHANNEL to a text "
                "channel of this server and restart Stagepass; the announcement is posted then.",
                int(host.user_id) if host.user_id.isdigit() else None,
            )
            return
        try:
            message = await channel.send(**render.announcement(space, host).send_kwargs())
        except discord.Forbidden as exc:
            await self.alerts.once(
                guild,
                "announce",
                f"Stagepass could not announce “{space.title}” (#{space.id}) in "
                f"{channel.mention}: {exc.text or exc.status}.\nTo fix: let the bot's role "
                "**View Channel**, **Send Messages** and **Embed Links** there; the "
                "announcement is posted on the bot's next start.",
                int(host.user_id) if host.user_id.isdigit() else None,
            )
            return
        row.channel_id, row.message_id = str(channel.id), str(message.id)
        await self.store.save(row)

    async def refresh(self, space_id: int) -> None:
        """Bring the posted announcement up to date (tickets left, status, buttons); one
        edit at a time per Space, and one more after it that reads the latest state."""
        await self._edits.run(space_id, lambda: self._edit(space_id))

    async def _edit(self, space_id: int) -> None:
        """Edit the announcement in every server that shows the Space."""
        rows = [
            row
            for row in await self.store.rows(space_id)
            if row.channel_id is not None and row.message_id not in (None, DELETED)
        ]
        if not rows:
            return
        space = await self.core.spaces.get(space_id)
        host = await self.core.identities.get(space.host_id)
        for row in rows:
            await self._edit_one(row, render.announcement(space, host))

    async def _edit_one(self, row: DiscordSpace, shown: render.Rendered) -> None:
        space_id = row.space_id
        assert row.channel_id is not None and row.message_id is not None
        channel = self.client.get_partial_messageable(int(row.channel_id))
        try:
            await channel.get_partial_message(int(row.message_id)).edit(
                embed=shown.embed, view=shown.view
            )
        except discord.NotFound:
            # deleted by someone in Discord: a deliberate act, so it is not re-posted
            log.warning(
                "announcement was deleted in Discord", space_id=space_id, guild=row.guild_id
            )
            row.message_id = DELETED
            await self.store.save(row)
        except discord.HTTPException as exc:
            log.warning(
                "Discord refused an announcement edit",
                space_id=space_id,
                status=exc.status,
                code=exc.code,
                text=exc.text,
            )

    async def thank(self, guild: discord.Guild, event: TipReceived) -> None:
        """Thank a public tip where the Space was announced (private tips are only DMed,
        by the core)."""
        if not event.public:
            return
        text = tip_thanks(
            event,
            tipper=render.mention(event.tipper_key),
            host=render.mention(event.host_key),
            quote=render.quote,
        )
        await self.tell(guild, event.space_id, text)

    async def tell(self, guild: discord.Guild, space_id: int | None, text: str) -> None:
        """Post a public event once, where the Space was announced: in reply to its
        announcement (or in the server's announcement channel for one outside any Space,
        or when the announcement was never posted)."""
        row = await self.store.get(space_id, guild.id) if space_id is not None else None
        channel: discord.abc.Messageable | None
        reference = None
        if row is not None and row.channel_id is not None:
            channel = self.client.get_partial_messageable(int(row.channel_id), guild_id=guild.id)
            if row.message_id not in (None, DELETED):
                assert row.message_id is not None
                reference = discord.MessageReference(
                    message_id=int(row.message_id),
                    channel_id=int(row.channel_id),
                    fail_if_not_exists=False,
                )
        else:
            channel = self.config.announce_channel(guild)
        if channel is None:
            log.info("a public event was not posted: no announcement channel", guild=guild.id)
            return
        if reference is not None:
            await channel.send(content=render.clip(text, 2000), reference=reference)
        else:
            await channel.send(content=render.clip(text, 2000))
