"""Every refusal that a Space's state causes, worded once: what is wrong, and what to do
next. Services raise these; adapters only show `message`.

Each function returns the `UserError` for the caller to raise, so the call site reads
`raise refusals.not_now(space, Action.CANCEL)`.
"""

from __future__ import annotations

from datetime import timedelta

from bot.commands.times import format_delta
from bot.errors import Conflict, LimitExceeded, PermissionDenied
from bot.models import Space, SpaceStatus
from bot.permissions import Action

#: how each action reads after "so it can't be …"
_PASSIVE = {
    Action.EDIT: "edited",
    Action.CANCEL: "cancelled",
    Action.START: "started",
    Action.END: "ended",
    Action.MANAGE_COHOSTS: "given co-hosts",
    Action.RUN_STAGE: "run",
}


def _state(space: Space) -> str:
    match space.status:
        case SpaceStatus.LIVE:
            return "is live"
        case SpaceStatus.ENDED:
            return "has ended"
        case SpaceStatus.CANCELLED:
            return "was cancelled"
        case SpaceStatus.SCHEDULED:
            return "has not started yet"
        case _:
            return f"is {space.status.value}"


def _next_step(space: Space, action: Action) -> str:
    n = space.id
    match space.status:
        case SpaceStatus.ENDED | SpaceStatus.CANCELLED:
            return "announce a new one with /space create"
        case SpaceStatus.LIVE if action == Action.CANCEL:
            return f"use /space end {n}, or add confirm:yes to end it and refund every ticket"
        case SpaceStatus.LIVE:
            return f"it is on now; end it with /space end {n} when you are done"
        case _ if action == Action.END:
            return f"start it with /space start {n}, or cancel it with /space cancel {n}"
        case _ if action == Action.RUN_STAGE:
            return f"the stage opens when it starts (/space start {n})"
        case _:
            return f"see /space info {n}"


def not_now(space: Space, action: Action) -> Conflict:
    """`action` does not fit the Space's state: "Space #3 is live, so it can't be
    cancelled; use /space end 3, or add confirm:yes to end it and refund every ticket"."""
    what = _PASSIVE.get(action, action.value)
    subject = "its stage" if action == Action.RUN_STAGE else "it"
    return Conflict(
        f"Space #{space.id} {_state(space)}, so {subject} can't be {what}; "
        f"{_next_step(space, action)}."
    )


def not_on_sale(space: Space) -> Conflict:
    """A ticket asked for a Space that no longer (or not yet) sells them."""
    return Conflict(
        f"Space #{space.id} {_state(space)}, so its tickets are not on sale; "
        "see what is coming up with /space list."
    )


def no_reminders(space: Space) -> Conflict:
    return Conflict(
        f"Space #{space.id} {_state(space)}, so there is nothing to be reminded of; "
        "see what is coming up with /space list."
    )


def ticket_closed(ticket_id: str, status: str) -> Conflict:
    return Conflict(f"Ticket {ticket_id} is already {status}; there is nothing left to refund.")


def start_cannot_move(space: Space) -> Conflict:
    return Conflict(
        f"Space #{space.id} is live, so its start time can't move; "
        f"end it with /space end {space.id} when you are done."
    )


def price_locked(space: Space) -> Conflict:
    """Buyers hold tickets (or holds) at the current price: it stays."""
    return Conflict(
        f"{space.taken} ticket(s) for Space #{space.id} are already sold or held for buyers, "
        f"so its price can't change; to sell at a new price, cancel it (/space cancel "
        f"{space.id} refunds every ticket) and announce it again."
    )


def capacity_below_taken(taken: int) -> Conflict:
    return Conflict(
        f"{taken} ticket(s) are already sold or held for buyers, so there can't be fewer "
        f"tickets than that; pick tickets:{taken} or more."
    )


def early_start(space: Space, ahead: timedelta) -> Conflict:
    """Starting long before the announced time surprises ticket holders: ask first."""
    return Conflict(
        f"Space #{space.id} is announced to start in {format_delta(ahead)}; starting now "
        "tells every ticket holder it started early. To go ahead, use "
        f"/space start {space.id} confirm:yes."
    )


def holder_removed(name: str) -> PermissionDenied:
    """A ticket whose holder was removed from the stage: valid, but it admits nobody."""
    return PermissionDenied(
        f"{name} was removed from this Space's stage, so the ticket admits nobody until a "
        "moderator uses /stage allow."
    )


def removed_from_live(space: Space) -> PermissionDenied:
    """Someone removed from a live Space tries to listen again (its Stage, its room)."""
    return PermissionDenied(
        f"You were removed from “{space.title}” (Space #{space.id}); a moderator of "
        "the Space can let you back in with /stage allow."
    )


def listening_needs_ticket(space: Space) -> PermissionDenied:
    """Someone without a ticket for the live Space joins its Stage."""
    return PermissionDenied(
        f"“{space.title}” (Space #{space.id}) is live on this stage, and listening "
        f"needs a ticket for it. Get one with /ticket buy {space.id}, then join again."
    )


def removed_from_stage(name: str | None = None) -> Conflict:
    """Someone removed from a stage tries to join or speak (`name`: when staff act on them)."""
    if name is None:
        return Conflict(
            "You were removed from this Space's stage; a moderator can let you back in "
            "with /stage allow."
        )
    return Conflict(
        f"{name} was removed from this Space's stage; let them back in with /stage allow first."
    )


class BuyerLimitReached(LimitExceeded):
    """A buyer asked for more tickets of a Space than its per-buyer limit lets them
    (counting their valid tickets and pending holds). The ticket service words it again
    with what they hold (`TicketService.limit_refusal`); `pay_url`: a pending hold's."""

    api_type = "limit_exceeded"
    """What the HTTP API calls it: the type its clients have always seen."""

    def __init__(
        self, message: str, *, space_id: int, limit: int, pay_url: str | None = None
    ) -> None:
        super().__init__(message)
        self.space_id = space_id
        self.limit = limit
        self.pay_url = pay_url


def buyer_limit(space: Space) -> BuyerLimitReached:
    limit = space.per_buyer_limit
    return BuyerLimitReached(
        f"You can have at most {limit} ticket{'s' if limit > 1 else ''} for this Space.",
        space_id=space.id or 0,
        limit=limit,
    )
