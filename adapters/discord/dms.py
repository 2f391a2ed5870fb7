"""Direct messages: the core's `DirectMessage` events and the adapter's own notes."""

from __future__ import annotations

import discord
import structlog

from adapters.discord import render
from adapters.discord.members import split_key
from bot.events import DirectMessage

log = structlog.get_logger(__name__)


class DirectMessages:
    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def deliver(self, message: DirectMessage) -> None:
        """Render a core DM for a Discord identity; other platforms' DMs are not ours."""
        ids = split_key(message.identity_key)
        if ids is None:
            return
        await self.send(ids[1], render.direct_message(message.text, message.links))

    async def send(self, user_id: int, message: render.Rendered) -> bool:
        """False when Discord refuses (DMs closed, no shared server): logged, not raised."""
        try:
            channel = await self.client.create_dm(discord.Object(user_id))
            await channel.send(**message.send_kwargs())
        except discord.Forbidden:
            log.warning("direct message refused; the member's DMs are closed", user_id=user_id)
            return False
        except discord.HTTPException as exc:
            log.warning("direct message failed", user_id=user_id, status=exc.status, code=exc.code)
            return False
        return True
