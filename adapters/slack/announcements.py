"""The announcement of a Space in its workspace's channel, kept current.

Posted on `SpaceAnnounced`; every later change (tickets taken, start, end, cancel) edits
the same message with `chat.update`, its place remembered in `slack_announcements`. All
changes to one announcement go through a `Coalescer`, so a burst of sales makes one
edit at a time and the last edit shows the latest count.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Any
from urllib.parse import urlencode

import structlog
from slack_sdk.errors import SlackApiError

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
from adapters.slack.messages import RUN, buy_button, reply_button
from adapters.slack.models import SlackAnnouncement
from adapters.slack.people import mention, team_of
from bot.announcements import AnnouncementLink
from bot.coalescing import Coalescer
from bot.core import Core
from bot.events import TipReceived
from bot.models import Identity, Platform, Space, SpaceStatus
from bot.notices import tip_thanks
from bot.replies import Button
from bot.wording import price, seats_left, space_buttons

log = structlog.get_logger(__name__)

TIP = "tip"  # action_id of the announcement's Tip button
#: the command line of the "Post it again" button (Slack's own, not the core's)
REPOST = "/slack-repost"
APP_REDIRECT = "https://slack.com/app_redirect?"
"""Slack's documented deep link into a channel (`team`, `channel`): the fallback link."""
PENDING = "pending"  # `outcome`: the first post has not been tried yet

_NO_CHANNEL = "no_channel"
#: what the host can do about the ways a first post fails
_FIX = {
    _NO_CHANNEL: "no announcement channel is set. Set SLACK_ANNOUNCE_CHANNEL to a channel "
    "id (or reinstall Stagepass and pick one), then press Post it again.",
    "channel_not_found": "Slack can't find the announcement channel {channel}. Set "
    "SLACK_ANNOUNCE_CHANNEL to the channel's id (or reinstall Stagepass and pick one), "
    "then press Post it again.",
    "not_in_channel": "Stagepass is not a member of the channel {channel}. Invite it there "
    "(/invite @Stagepass), then press Post it again.",
    "is_archived": "the channel {channel} is archived. Unarchive it or set another "
    "channel, then press Post it again.",
}


def why_not_posted(error: str, channel: str | None) -> str:
    """What went wrong with an announcement and what the host should do, in words."""
    fix = _FIX.get(error, "Slack answered " + error + ". Press Post it again in a moment.")
    return fix.format(channel=channel or "")


def not_announced(space_id: int, error: str, channel: str | None) -> str:
    return f"Space #{space_id} is set up but not announced: {why_not_posted(error, channel)}"


_STATUS = {
    SpaceStatus.DRAFT: "Draft",
    SpaceStatus.SCHEDULED: "On sale",
    SpaceStatus.LIVE: ":red_circle: Live now",
    SpaceStatus.ENDED: "Ended",
    SpaceStatus.CANCELLED: "Cancelled",
}


def repost_button(space_id: int) -> Button:
    return Button("Post it again", command=f"{REPOST} {space_id}")


def tip_value(space: Space, host: Identity) -> str:
    """The Tip button's value: the Space, and the host's Slack id when they are in Slack
    (a host in a linked community is tipped through the Space)."""
    slack_host = host.user_id if host.platform == Platform.SLACK else None
    return json.dumps({"space": space.id, "host": slack_host})


def host_name(host: Identity) -> str:
    """The host as a mention, or by name when they host from a linked community."""
    return f"<@{host.user_id}>" if host.platform == Platform.SLACK else escape(host.display_name)


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
            f"*Host*\n{host_name(host)}",
            f"*Price*\n{escape(price(space))}",
            f"*Tickets left*\n{left}",
            f"*Status*\n{status}",
        )
    )
    if space.status.is_open_for_sale:
        elements = [buy_button(space, f"{RUN}:0")]
        elements += [reply_button(b, i) for i, b in enumerate(space_buttons(space)) if i]
        elements.append(button("Tip the host", TIP, value=tip_value(space, host)))
        blocks.append(actions(*elements, block_id=f"space:{space.id}"))
    blocks.append(
        context(
            f"Space #{space.id} · Your ticket and its join link arrive in a DM from "
            "Stagepass · Listen in your browser"
        )
    )
    status_word = _STATUS[space.status]
    text = escape(f"{space.title} — {price(space)}, tickets left: {left} ({status_word})")
    return {"text": text, "blocks": blocks}


class Announcements:
    def __init__(self, core: Core, clients: WebClients, coalescer: Coalescer) -> None:
        self.core = core
        self.clients = clients
        self.coalescer = coalescer
        self._told: set[str] = set()  # workspaces whose missing channel was logged
        # how each Space's first post went (None: posted; else Slack's error), kept for
        # a command reply that asks after it; the latest 256
        self._outcomes: OrderedDict[int, tuple[str | None, str | None]] = OrderedDict()
        self._waiting: dict[int, asyncio.Event] = {}
        self._permalinks: OrderedDict[int, str] = OrderedDict()  # space id -> permalink

    async def outcome(self, space_id: int, within: float) -> tuple[str | None, str | None]:
        """(error or None, channel) of the Space's first post, waiting up to `within`
        seconds for it; (`PENDING`, None) if it has not been tried by then. A caller that
        gets a failure tells the host itself (else the host is told by DM)."""
        if space_id not in self._outcomes:
            event = self._waiting.setdefault(space_id, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), within)
            except TimeoutError:
                return PENDING, None
            finally:
                self._waiting.pop(space_id, None)
        return self._outcomes.pop(space_id, (PENDING, None))

    async def post_again(self, space_id: int) -> tuple[str | None, str | None]:
        """Try the first post again ("Post it again"): (error or None, channel)."""
        self._waiting.setdefault(space_id, asyncio.Event())
        try:
            await self.sync(space_id)
        finally:
            self._waiting.pop(space_id, None)
        return self._outcomes.pop(space_id, (None, None))  # nothing new: it was posted

    def _record(self, space_id: int, error: str | None, channel: str | None) -> bool:
        """Keep a first post's outcome; True when a command reply is waiting for it."""
        self._outcomes[space_id] = (error, channel)
        while len(self._outcomes) > 256:
            self._outcomes.popitem(last=False)
        event = self._waiting.get(space_id)
        if event is None:
            return False
        event.set()
        return True

    async def sync(self, space_id: int) -> None:
        """Post the announcement, or bring the posted one up to date."""
        await self.coalescer.run(("announcement", space_id), lambda: self._sync(space_id))

    async def link(self, space_id: int) -> AnnouncementLink | None:
        """The announcement's permalink (`chat.getPermalink`, asked once per Space), or,
        when Slack cannot say, the documented `app_redirect` to its channel."""
        row = await self._first_row(space_id)
        if row is None:
            return None
        known = self._permalinks.get(space_id)
        if known is None:
            known = await self._permalink(row)
            if known is not None:
                self._permalinks[space_id] = known
                while len(self._permalinks) > 1024:
                    self._permalinks.popitem(last=False)
        url = known or APP_REDIRECT + urlencode({"team": row.team_id, "channel": row.channel_id})
        return AnnouncementLink("Slack", url)

    async def _permalink(self, row: SlackAnnouncement) -> str | None:
        client = await self.clients.for_team(row.team_id)
        if client is None:
            return None
        try:
            answer = await client.chat_getPermalink(channel=row.channel_id, message_ts=row.ts)
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.info("no permalink for an announcement", space_id=row.space_id, error=str(exc))
            return None
        permalink = answer.get("permalink")
        if isinstance(permalink, str) and permalink.startswith("https://"):
            return permalink
        return None

    async def _row(self, space_id: int, team: str) -> SlackAnnouncement | None:
        async with self.core.db.session() as session:
            return await session.get(SlackAnnouncement, (space_id, team))

    async def _first_row(self, space_id: int) -> SlackAnnouncement | None:
        """The announcement in the Space's own workspace, else in the first linked one."""
        space = await self.core.spaces.get(space_id)
        for team in await self.teams(space_id, space.community_id):
            row = await self._row(space_id, team)
            if row is not None:
                return row
        return None

    async def teams(self, space_id: int, community_id: str) -> list[str]:
        """The workspaces that show a Space (`community_id`: its own): its own first,
        then the linked ones."""
        shown = await self.core.communities.shown_on(space_id, community_id, Platform.SLACK)
        return [team for team in map(team_of, shown) if team is not None]

    async def _sync(self, space_id: int) -> None:
        space = await self.core.spaces.get(space_id)
        for index, team in enumerate(await self.teams(space_id, space.community_id)):
            # a command reply waits for the first workspace's post: the host's own
            await self._sync_in(space, team, reported=index == 0)

    async def _sync_in(self, space: Space, team: str, *, reported: bool) -> None:
        """Post the announcement in one workspace, or bring the posted one up to date."""
        assert space.id is not None
        space_id = space.id
        row = await self._row(space_id, team)
        if row is None and not space.status.is_open_for_sale:
            return  # over before it was ever posted
        client = await self.clients.for_team(team)
        if client is None:
            log.warning("slack: not installed in the Space's workspace", team=team, space=space_id)
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
                log.warning(
                    "slack: Spaces are not announced: no channel (set "
                    "SLACK_ANNOUNCE_CHANNEL, or reinstall and pick one)",
                    team=team,
                )
            if reported:
                await self._failed(client, space, host, _NO_CHANNEL, None)
            return
        try:
            posted = await client.chat_postMessage(
                channel=channel, unfurl_links=False, unfurl_media=False, **message
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            log.warning(
                "slack: announcement not posted",
                team=team,
                space=space_id,
                channel=channel,
                error=error,
            )
            if reported:
                await self._failed(client, space, host, error, channel)
            return
        if reported:
            self._record(space_id, None, channel)
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

    async def _failed(
        self, client: Any, space: Space, host: Identity, error: str, channel: str | None
    ) -> None:
        """The host learns why their Space is not announced: in the reply to their command
        when it is waiting, else by DM, with a "Post it again" button either way."""
        assert space.id is not None
        if self._record(space.id, error, channel) or host.platform != Platform.SLACK:
            return  # a host in a linked community has the logged warning only
        text = not_announced(space.id, error, channel)
        opened = await client.conversations_open(users=host.user_id)
        again = reply_button(repost_button(space.id), 0)
        await client.chat_postMessage(
            channel=opened["channel"]["id"],
            text=escape(text),
            blocks=[section(f":warning: {escape(text)}"), actions(again)],
        )

    async def thank(self, event: TipReceived) -> None:
        """A public tip is thanked under the Space's announcement (else in the channel)."""
        team = team_of(event.community_id)
        if team is None or not event.public:
            return
        text = tip_thanks(
            event, tipper=mention(event.tipper_key), host=mention(event.host_key), quote=escape
        )
        await self.in_thread(team, event.space_id, text)

    async def in_thread(self, team: str, space_id: int | None, text: str) -> None:
        """Post `text` (mrkdwn, escaped by the caller) once, under the Space's
        announcement, or in the announcement channel when it has none."""
        client = await self.clients.for_team(team)
        if client is None:
            return
        row = await self._row(space_id, team) if space_id is not None else None
        channel = row.channel_id if row else await self.clients.announce_channel(team)
        if channel is None:
            return
        await client.chat_postMessage(
            channel=channel, thread_ts=row.ts if row else None, text=text, unfurl_links=False
        )
