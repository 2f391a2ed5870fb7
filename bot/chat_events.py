"""The core events a chat platform shows, in one table that each adapter's notifier maps.

A chat shows a Space in a few places: its announcement (every event of `ANNOUNCEMENT`
changes what it shows: status, details, seats left), news said under it (the start, a new
speaker, a public tip), people's own lists and roles (a co-host, a reminder), and private
messages (a DM, the moderators' alert on a disputed payment). A notifier gives one handler
per place it has (`ChatRoutes`); `subscribe` puts them on the bus, so a new event that an
announcement must show is added here once and every platform shows it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.events import (
    CohostChanged,
    DirectMessage,
    Event,
    EventBus,
    HoldCreated,
    HoldReleased,
    PaymentDisputed,
    ReminderSet,
    SpaceAnnounced,
    SpaceCancelled,
    SpaceEnded,
    SpaceEvent,
    SpaceStarted,
    SpaceUpdated,
    StageChanged,
    TicketClosed,
    TicketIssued,
    TipReceived,
)
from bot.models import Platform
from bot.outbox import Outbox

#: events that change what an announcement shows (status, details, tickets left)
ANNOUNCEMENT: tuple[type[SpaceEvent], ...] = (
    SpaceAnnounced,
    SpaceUpdated,
    SpaceStarted,
    SpaceEnded,
    SpaceCancelled,
    TicketIssued,
    TicketClosed,
    HoldCreated,
    HoldReleased,
)

#: events that change one person's own lists or roles (a co-host added, a reminder set)
PEOPLE: tuple[type[SpaceEvent], ...] = (CohostChanged, ReminderSet)

Handler = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRoutes:
    """A chat notifier's handlers, one a row of the table; None: the platform has no such
    place. Each runs in the bus's own task (see `EventBus`)."""

    announcement: Handler
    """Every event of `ANNOUNCEMENT`."""
    direct_message: Handler
    """`DirectMessage`: deliver it and tell the outbox how it went."""
    people: Handler | None = None
    """Every event of `PEOPLE`."""
    started: Handler | None = None
    """`SpaceStarted`: the news that it is live (the announcement hears it too)."""
    stage: Handler | None = None
    """`StageChanged`."""
    tip: Handler | None = None
    """`TipReceived`."""
    dispute: Handler | None = None
    """`PaymentDisputed`: the moderators hear of it (the host has the core's DM)."""

    def table(self) -> list[tuple[type[Event], Handler]]:
        rows: list[tuple[tuple[type[Event], ...], Handler | None]] = [
            (ANNOUNCEMENT, self.announcement),
            ((DirectMessage,), self.direct_message),
            (PEOPLE, self.people),
            ((SpaceStarted,), self.started),
            ((StageChanged,), self.stage),
            ((TipReceived,), self.tip),
            ((PaymentDisputed,), self.dispute),
        ]
        return [(kind, handler) for kinds, handler in rows if handler for kind in kinds]


def subscribe(bus: EventBus, outbox: Outbox, platform: Platform, routes: ChatRoutes) -> None:
    """Put a chat notifier's handlers on the bus; its platform's DMs are then delivered by
    this process (the outbox's sweep resends them)."""
    for kind, handler in routes.table():
        bus.subscribe(kind, handler)
    outbox.delivers(platform)
