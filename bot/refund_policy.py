"""The refund policy, once: a paid ticket is refunded in full until
`STAGEPASS_REFUND_CUTOFF_HOURS` before its Space starts, and not after (a cancelled
Space always refunds). `/ticket refund` in chat and the host's desk both ask here."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.commands.times import format_when
from bot.errors import Conflict
from bot.models import Space, SpaceStatus, Ticket
from bot.settings import Settings


def refund_deadline(space: Space, settings: Settings) -> datetime:
    """Until when a ticket for `space` may be refunded in full."""
    return space.starts_at - timedelta(hours=settings.refund_cutoff_hours)


def policy_text(space: Space, settings: Settings, tz: ZoneInfo) -> str:
    """The policy as a host reads it next to the Refund buttons."""
    if space.status == SpaceStatus.CANCELLED:
        return "The Space is cancelled: every ticket is refunded in full."
    return (
        f"Full refunds (the platform's cut included) until "
        f"{format_when(refund_deadline(space, settings), tz)}, "
        f"{settings.refund_cutoff_hours} h before the start; none after. Free tickets are "
        "voided."
    )


def holder_terms(space: Space, settings: Settings, now: datetime, tz: ZoneInfo) -> str:
    """The policy as a buyer reads it on their ticket, at `now`: open until the
    deadline, or already closed (a Space bought less than the cutoff before its start)."""
    deadline = refund_deadline(space, settings)
    hours = settings.refund_cutoff_hours
    if now >= deadline:
        return (
            f"Refunds: closed at {format_when(deadline, tz)} ({hours} h before the start), "
            "so this ticket cannot be refunded unless the Space is cancelled."
        )
    return (
        f"Refunds: in full until {format_when(deadline, tz)} ({hours} h before the start), "
        "none after."
    )


def refund_open(space: Space, ticket: Ticket, settings: Settings, now: datetime) -> bool:
    """Whether the policy allows refunding `ticket` now (free tickets: voiding it)."""
    if ticket.price_minor <= 0 or space.status == SpaceStatus.CANCELLED:
        return True
    return now < refund_deadline(space, settings)


def check_refund_window(
    space: Space,
    ticket: Ticket,
    settings: Settings,
    now: datetime,
    tz: ZoneInfo,
    *,
    holder: bool = False,
) -> None:
    """`Conflict` when the policy allows no refund of `ticket` now; worded for the
    `holder` asking for their own refund (who can only ask the host), or for the host."""
    if refund_open(space, ticket, settings, now):
        return
    deadline = refund_deadline(space, settings)
    if holder:
        raise Conflict(
            f"Refunds for Space #{space.id} closed at {format_when(deadline, tz)}; ask the host."
        )
    raise Conflict(
        f"Refunds for Space #{space.id} closed at {format_when(deadline, tz)} "
        f"({settings.refund_cutoff_hours} h before the start); the refund "
        "policy allows none after."
    )
