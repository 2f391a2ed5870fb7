"""The announcement of a Space in its workspace's channel, kept current.

Posted on `SpaceAnnounced`; every later change (tickets taken, start, end, cancel) edits
the same message with `chat.update`, its place remembered in `slack_announcements`. All
changes to one announcement go through a `Coalescer`, so a burst of sales makes one
edit at a time and the last edit shows the latest count.
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from adapters.slack.blocks import (
    Block,
    actions,
    button,
    context,
    date_token,
    escape,
    fields,
    header,
    section,
)
from adapters.slack.clients import WebClients
from adapters.slack.messages import reply_button
from adapters.slack.people import mention, team_of
from adapters.slack.tasks import Coalescer
from bot.core import Core
from bot.events import TipReceived
from bot.models import Identity, SlackAnnouncement, Space, SpaceStatus
from bot.notices import tip_thanks
from bot.views import price, seats_left, space_buttons

log = structlog.get_logger(__name__)

TIP = "tip"  # action_id of the announcement's Tip button

_STATUS = {
    SpaceStatus.DRAFT: "Draft",
    SpaceStatus.SCHEDULED: "On sale",
    SpaceStatus.LIVE: ":red_circle: Live now",
    SpaceStatus.ENDED: "Ended",
    SpaceStatus.CANCELLED: "Cancelled",
}


def tip_value(space: Space, host: Identity) -> str:
    return json.dumps({"space": space.id, "host": host.user_id})


def announcement(space: Space, host: Identity) -> dict[str, Any]:
    """`text` and `blocks` of a Space's announcement in its current state."""
    left = seats_left(space)
    status = _STATUS[space.status]
    if space.status == SpaceStatus.CANCELLED and space.cancel_reason:
        status += f" — {escape(space.cancel_reason)}"
    blocks: list[Block] = [header(space.title)]
    if space.description:
        blocks.append(section(escape(space.description)))
    blocks.append(
        fields(
            f"*Starts*\n{date_token(space.starts_at)}",
            f"*Duration*\n{space.duration_minutes} min",
            f"*Host*\n<@{host.user_id}>",
            f"*Price*\n{escape(price(space))}",
            f"*Tickets left*\n{left}",
            f"*Status*\n{status}",
        )
    )
    if space.status.is_open_for_sale:
        elements = [reply_button(b, i) for i, b in enumerate(space_buttons(space))]
        if elements:
            elements[0]["style"] = "primary"
        elements.append(button("Tip the host", TIP, value=tip_value(space, host)))
        blocks.append(actions(*elements, block_id=f"space:{space.id}"))
    blocks.append(
        context(
            f"Space #{space.id} · Your ticket and its join link arrive in a DM from "
            "Stagepass · Listen in your browser"
        )
    )
    text = f"{space.title} — {price(space)}, {left} tickets left ({status})"
    return {"text": text, "blocks": blocks}


class Announcements:
    def __init__(self, core: Core, clients: WebClients, coalescer: Coalescer) -> None:
        self.core = core
        self.clients = clients
        self.coalescer = coalescer
        self._told: set[str] = set()  # workspaces whose missing channel was logged

    async def sync(self, space_id: int) -> None:
        """Post the announcement, or bring the posted one up to date."""
        await self.coalescer.run(("announcement", space_id), lambda: self._sync(space_id))

    async def _row(self, space_id: int) -> SlackAnnouncement | None:
        async with self.core.db.session() as session:
            return await session.get(SlackAnnouncement, space_id)

    async def _sync(self, space_id: int) -> None:
        space = await self.core.spaces.get(space_id)
        team = team_of(space.community_id)
        if team is None:
            return
        row = await self._row(space_id)
        if row is None and not space.status.is_open_for_sale:
            return  # over before it was ever posted
        client = await self.clients.for_team(team)
        if client is None:
            log.warning("slack: not installed in the Space's workspace", team=team,
                        space=space_id)
            return
        host = await self.core.identities.get(space.host_id)
        message = announcement(space, host)
        now = self.core.clock.now()
        if row is not None:
            await client.chat_update(channel=row.channel_id, ts=row.ts, **message)
            async with self.core.db.write() as session:
                row.updated_at = now
                session.add(row)
            return
        channel = await self.clients.announce_channel(team)
        if channel is None:
            if team not in self._told:
                self._told.add(team)
                log.warning("slack: Spaces are not announced: no channel (set "
                            "SLACK_ANNOUNCE_CHANNEL, or reinstall and pick one)", team=team)
            return
        posted = await client.chat_postMessage(
            channel=channel, unfurl_links=False, unfurl_media=False, **message
        )
        async with self.core.db.write() as session:
            session.add(
                SlackAnnouncement(
                    space_id=space_id,
                    team_id=team,
                    channel_id=str(posted["channel"]),
                    ts=str(posted["ts"]),
                    posted_at=now,
                    updated_at=now,
                )
            )

    async def thank(self, event: TipReceived) -> None:
        """A public tip is thanked under the Space's announcement (else in the channel)."""
        team = team_of(event.community_id)
        if team is None or not event.public:
            return
        client = await self.clients.for_team(team)
        if client is None:
            return
        row = await self._row(event.space_id) if event.space_id is not None else None
        channel = row.channel_id if row else await self.clients.announce_channel(team)
        if channel is None:
            return
        await client.chat_postMessage(
            channel=channel,
            thread_ts=row.ts if row else None,
            text=tip_thanks(
                event,
                tipper=mention(event.tipper_key),
                host=mention(event.host_key),
                quote=escape,
            ),
        )
