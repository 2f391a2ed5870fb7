"""Core events -> Slack: direct messages, the announcement (and a public tip's thanks
under it), App Home refreshes, and disputed payments told to each moderator by DM.

Each handler runs in the event bus's own task, so Slack being slow never slows a
command; a handler that fails is logged by the bus with the event.
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.announcements import Announcements
from adapters.slack.blocks import escape
from adapters.slack.clients import WebClients
from adapters.slack.home import Home
from adapters.slack.messages import dm_message
from adapters.slack.people import Directory, mention, slack_user, team_of
from bot.chat_events import ANNOUNCEMENT, ChatRoutes, subscribe
from bot.core import Core
from bot.events import (
    CohostChanged,
    DirectMessage,
    EventBus,
    HoldCreated,
    HoldReleased,
    PaymentDisputed,
    ReminderSet,
    SpaceEvent,
    SpaceStarted,
    StageChanged,
    TicketClosed,
    TicketIssued,
)
from bot.models import Platform
from bot.notices import dispute_alert
from bot.wording import space_title

log = structlog.get_logger(__name__)

#: Slack's answers that no retry changes: the DM is marked refused
_REFUSED = frozenset({"user_not_found", "cannot_dm_bot", "user_disabled"})


class Notifier:
    def __init__(
        self,
        core: Core,
        clients: WebClients,
        announcements: Announcements,
        home: Home,
        directory: Directory,
    ) -> None:
        self.core = core
        self.clients = clients
        self.announcements = announcements
        self.home = home
        self.directory = directory

    def subscribe(self, bus: EventBus) -> None:
        routes = ChatRoutes(
            announcement=self.on_space_changed,
            direct_message=self.on_direct_message,
            people=self.on_space_changed,
            started=self.on_started,
            stage=self.on_stage_changed,
            tip=self.announcements.thank,
            dispute=self.on_payment_disputed,
        )
        subscribe(bus, self.core.outbox, Platform.SLACK, routes)

    async def on_direct_message(self, message: DirectMessage) -> None:
        """Deliver a core DM and tell the outbox how it went: Slack's permanent refusals
        are not retried; anything else that failed (rate limited, a 5xx) is."""
        found = slack_user(message.identity_key)
        if found is None:
            return
        team, user = found
        outbox = self.core.outbox
        client = await self.clients.for_team(team)
        if client is None:
            log.warning("slack: cannot DM, not installed in the workspace", team=team, user=user)
            await outbox.refused(message.id, "not installed in the workspace")
            return
        try:
            zone = await self.core.identities.zone_of(message.identity_key)
            await self._dm(client, user, dm_message(message, zone))
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            log.warning(
                "slack: direct message failed",
                team=team,
                user=user,
                error=error,
                outbox_id=message.id,
            )
            if error in _REFUSED:
                await outbox.refused(message.id, error)
            else:
                await outbox.failed(message.id, error)
        except Exception as exc:  # the network, say: retried, and logged by the bus
            await outbox.failed(message.id, repr(exc))
            raise
        else:
            await outbox.sent(message.id)

    @staticmethod
    async def _dm(client: AsyncWebClient, user: str, message: dict[str, Any]) -> None:
        opened = await client.conversations_open(users=user)
        channel = opened["channel"]["id"]
        await client.chat_postMessage(channel=channel, unfurl_links=False, **message)

    async def on_payment_disputed(self, event: PaymentDisputed) -> None:
        """Each moderator of the workspace gets the alert by DM (Slack has no moderators'
        channel to post in); the host and co-hosts already have a DM of their own from the
        core."""
        team = team_of(event.community_id)
        if team is None:
            return
        client = await self.clients.for_team(team)
        if client is None:
            log.warning("slack: cannot tell moderators, not installed", team=team)
            return
        space = await self.core.spaces.get(event.space_id)
        host = await self.core.identities.get(space.host_id)
        cohost_ids = await self.core.spaces.cohost_ids(event.space_id)
        cohosts = await self.core.identities.keys_for(cohost_ids)
        told = {host.user_id, *(c.user_id for c in cohosts.values())}  # the core DMs them
        moderators = await self.directory.moderators(client, team)
        if not moderators:
            log.warning(
                "slack: a payment was disputed and no moderator is known",
                team=team,
                space=event.space_id,
            )
        alert = {"text": dispute_alert(event, space, buyer=mention(event.holder_key), quote=escape)}
        for user in sorted(moderators - told):
            try:
                await self._dm(client, user, alert)
            except SlackApiError as exc:  # one closed door must not keep the others shut
                log.warning("slack: could not DM a moderator", team=team, user=user, error=str(exc))

    # --- public events: said once, under the announcement --------------------------------

    async def on_started(self, event: SpaceStarted) -> None:
        for team in await self._teams(event):
            space = await self.core.spaces.get(event.space_id)
            await self.announcements.in_thread(
                team,
                event.space_id,
                f":red_circle: *{escape(space_title(space))}* is live now. Ticket holders: "
                "your join link is in your DMs from Stagepass.",
            )

    async def on_stage_changed(self, event: StageChanged) -> None:
        if event.change != "promoted":
            return
        for team in await self._teams(event):
            space = await self.core.spaces.get(event.space_id)
            await self.announcements.in_thread(
                team,
                event.space_id,
                f"{await self._who(event.identity_key)} is now a speaker in "
                f"{escape(space_title(space))}.",
            )

    async def on_space_changed(self, event: SpaceEvent) -> None:
        if not await self._teams(event):
            return
        if isinstance(event, ANNOUNCEMENT):
            await self.announcements.sync(event.space_id)
        await self.home.refresh_people(self._concerned(event))

    async def _who(self, identity_key: str) -> str:
        """A mention, or the name of someone from a linked community (not in Slack)."""
        if slack_user(identity_key) is not None:
            return mention(identity_key)
        found = await self.core.identities.by_key(identity_key)
        return escape(found.display_name) if found is not None else "someone"

    async def _teams(self, event: SpaceEvent) -> list[str]:
        """The workspaces that show the event's Space: its own, and linked ones."""
        return await self.announcements.teams(event.space_id, event.community_id)

    @staticmethod
    def _concerned(event: SpaceEvent) -> list[str]:
        """Identity keys of the people who did this, or whose own lists it changed (a
        ticket bought for them, a co-host added): their App Home is refreshed. Everyone
        else sees it the next time they open the tab."""
        keys = [key for key in (event.actor_key,) if key]
        match event:
            case TicketIssued() | TicketClosed():
                keys.append(event.holder_key)
            case HoldCreated() | HoldReleased():
                keys.append(event.buyer_key)
            case ReminderSet() | CohostChanged():
                keys.append(event.identity_key)
        return keys
