"""How Spaces and tickets read in chat: one wording for every platform."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.commands.times import format_delta, format_when
from bot.models import Identity, Space, SpaceStatus, Ticket
from bot.money import format_minor
from bot.replies import Button

#: How a simulated payment (billing's keyless TEST MODE) is named wherever money shows.
TEST_MODE = "TEST MODE — no real payment"


def price(space: Space) -> str:
    return "Free" if space.is_free else format_minor(space.price_minor, space.currency)


def space_lines(space: Space, host: Identity, tz: ZoneInfo, now: datetime) -> list[str]:
    lines = [
        f"Host: {host.display_name}",
        f"Starts: {format_when(space.starts_at, tz)}"
        + (f" (in {format_delta(space.starts_at - now)})" if space.starts_at > now else ""),
        f"Duration: {space.duration_minutes} min",
        f"Price: {price(space)}",
        f"Tickets left: {space.tickets_left} of {space.capacity}",
        f"Status: {space.status.value}",
    ]
    if space.description:
        lines.insert(0, space.description)
    return lines


def space_title(space: Space) -> str:
    return f"#{space.id} {space.title}"


def space_buttons(space: Space) -> tuple[Button, ...]:
    if space.status not in (SpaceStatus.SCHEDULED, SpaceStatus.LIVE):
        return ()
    label = "Get ticket" if space.is_free else f"Buy ticket ({price(space)})"
    return (
        Button(label, command=f"/ticket buy {space.id}"),
        Button("Remind me", command=f"/remind on {space.id}"),
    )


def room_link(public_url: str, space_id: int, token: str) -> str:
    """The join link. The token rides in the fragment so it never reaches server logs."""
    return f"{public_url}/rooms/{space_id}#token={token}"


def ticket_line(ticket: Ticket) -> str:
    paid = "free" if ticket.price_minor == 0 else format_minor(ticket.price_minor, ticket.currency)
    return f"Ticket {ticket.id} ({paid}, {ticket.status.value})"
