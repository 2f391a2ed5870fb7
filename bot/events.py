"""Domain events and the in-process async bus that carries them.

Services publish after their transaction commits. Each subscriber runs as its own named
task owned by the bus: a slow Discord post never delays a command's reply, and a failing
handler is logged with the event and never breaks the others. `drain()` waits for every
pending handler (tests, and shutdown before the loop closes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import structlog

from bot.tasks import TaskGroup

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of all domain events. `actor_key` is who caused it, when a person did."""

    actor_key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SpaceEvent(Event):
    space_id: int
    community_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SpaceAnnounced(SpaceEvent):
    pass


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of a Space an edit changed (`starts_at`, `price_minor`, ...)."""

    name: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class SpaceUpdated(SpaceEvent):
    """A Space was edited: `changed` names the fields, `changes` holds old and new values."""

    changed: tuple[str, ...] = ()
    changes: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SpaceStarted(SpaceEvent):
    """`early_minutes`: how long before the announced time it started, when that was
    early enough to need confirming (0 otherwise)."""

    early_minutes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SpaceEnded(SpaceEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class SpaceCancelled(SpaceEvent):
    """`was_live`: it was cancelled while live (ended, and every ticket refunded)."""

    reason: str = ""
    was_live: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CohostChanged(SpaceEvent):
    identity_key: str
    added: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldCreated(SpaceEvent):
    hold_id: str
    buyer_key: str
    quantity: int
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldReleased(SpaceEvent):
    hold_id: str
    buyer_key: str
    quantity: int
    expired: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitlistOffered(SpaceEvent):
    """A freed seat is held for the next in line until `expires_at`; `pay_url` is where
    they pay (None when the checkout could not be opened)."""

    hold_id: str
    buyer_key: str
    expires_at: datetime
    pay_url: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketIssued(SpaceEvent):
    ticket_ids: tuple[str, ...]
    holder_key: str
    hold_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketClosed(SpaceEvent):
    """A ticket stopped being valid: refunded, or revoked (dispute, removal)."""

    ticket_id: str
    holder_key: str
    refunded: bool
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentDisputed(SpaceEvent):
    """A buyer's bank disputed a payment: its tickets were revoked. Adapters tell the
    moderators; the host is told by DM."""

    holder_key: str
    ticket_ids: tuple[str, ...]
    amount_minor: int
    currency: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LatePaymentRefunded(SpaceEvent):
    """A payment completed after its hold lapsed and no seat was left (or the Space was
    cancelled meanwhile): it was refunded in full and no ticket was issued."""

    buyer_key: str
    amount_minor: int
    currency: str
    space_cancelled: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TipReceived(Event):
    """A tip was paid. `public`: the tipper wants it thanked in the channel."""

    community_id: str
    host_key: str
    tipper_key: str
    amount_minor: int
    currency: str
    message: str = ""
    public: bool = True
    space_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReminderSet(SpaceEvent):
    identity_key: str
    on: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ReminderDue(SpaceEvent):
    identity_key: str
    minutes_before: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StageChanged(SpaceEvent):
    """Someone's place on the stage changed; `change` names how."""

    identity_key: str
    change: str  # hand_raised, hand_lowered, promoted, demoted, muted, unmuted, removed, allowed


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectMessage(Event):
    """A message for one person, rendered by the adapter of their platform. `id`: its
    row in the outbox (bot/outbox.py), which the delivering adapter acknowledges; None
    for a DM sent at most once."""

    identity_key: str
    text: str
    links: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    id: int | None = None


E = TypeVar("E", bound=Event)
Handler = Callable[[Any], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler]] = defaultdict(list)
        self._tasks = TaskGroup("event", failed="event handler failed")

    @property
    def failures(self) -> int:
        """How many handlers have failed (each was logged as 'event handler failed')."""
        return self._tasks.failures

    @property
    def busy(self) -> bool:
        """Whether any handler is still running."""
        return self._tasks.busy

    def subscribe(self, event_type: type[E], handler: Callable[[E], Awaitable[None]]) -> None:
        """Call `handler` for every event of `event_type` or a subclass of it."""
        self._handlers[event_type].append(handler)

    def publish(self, event: Event) -> None:
        """Hand `event` to every subscriber, each in its own named task (after `close`,
        the event is logged and dropped)."""
        if self._tasks.closed:
            log.warning("event published after the bus closed", event_type=type(event).__name__)
            return
        for event_type in type(event).__mro__:
            for handler in self._handlers.get(event_type, ()):
                qualname = getattr(handler, "__qualname__", repr(handler))
                self._tasks.spawn(
                    _run(handler, event),
                    name=f"{type(event).__name__}:{qualname}",
                    event_type=type(event).__name__,
                    handler=qualname,
                    payload=event,
                )

    async def drain(self) -> None:
        """Wait until no handler is running (handlers may publish more events)."""
        await self._tasks.idle()

    async def close(self) -> None:
        """Finish in-flight handlers (up to 10 s); cancel what is still running after that."""
        await self._tasks.close(grace=10)


async def _run(handler: Handler, event: Event) -> None:
    await handler(event)
