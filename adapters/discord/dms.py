"""Direct messages: the core's `DirectMessage` events and the adapter's own notes."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import discord
import structlog

from adapters.discord import render
from adapters.discord.members import split_key
from bot.events import DirectMessage
from bot.outbox import Outbox

log = structlog.get_logger(__name__)
_UTC = ZoneInfo("UTC")


class DirectMessages:
    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def deliver(self, message: DirectMessage, outbox: Outbox, tz: ZoneInfo = _UTC) -> None:
        """Render a core DM for a Discord identity (other platforms' DMs are not ours),
        whose times the core wrote in `tz`, and tell `outbox` how it went: a closed door is
        refused for good, anything else that failed is retried."""
        ids = split_key(message.identity_key)
        if ids is None:
            return
        user_id = ids[1]
        try:
            await self._post(user_id, render.direct_message(message.text, message.links, tz))
        except discord.HTTPException as exc:
            for_good = isinstance(exc, discord.Forbidden | discord.NotFound)  # closed, gone
            log.warning(
                "direct message refused" if for_good else "direct message failed; retried later",
                user_id=user_id,
                status=exc.status,
                code=exc.code,
                outbox_id=message.id,
            )
            answer = outbox.refused if for_good else outbox.failed
            await answer(message.id, f"{exc.status} {exc.code}: {exc.text}")
        except Exception as exc:  # the network, say: retried, and logged by the bus
            await outbox.failed(message.id, repr(exc))
            raise
        else:
            await outbox.sent(message.id)

    async def _post(self, user_id: int, message: render.Rendered) -> None:
        channel = await self.client.create_dm(discord.Object(user_id))
        await channel.send(**message.send_kwargs())

    async def send(self, user_id: int, message: render.Rendered) -> bool:
        """False when Discord refuses (DMs closed, no shared server): logged, not raised."""
        try:
            await self._post(user_id, message)
        except discord.Forbidden:
            log.warning("direct message refused; the member's DMs are closed", user_id=user_id)
            return False
        except discord.HTTPException as exc:
            log.warning("direct message failed", user_id=user_id, status=exc.status, code=exc.code)
            return False
        return True
