"""How Spaces and tickets read in chat: one wording for every platform."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from bot.commands.times import format_delta, format_when
from bot.events import FieldChange
from bot.models import Hold, Identity, InviteLink, PromoCode, Space, SpaceStatus, Ticket
from bot.money import format_minor
from bot.ports import Recording
from bot.replies import Button
from bot.services.invites import short_id
from bot.services.promos import describe as describe_promo
from bot.services.replays import ReplayService
from bot.services.stage import Seat
from bot.services.waitlist import Line

#: How a simulated payment (billing's keyless TEST MODE) is named wherever money shows.
TEST_MODE = "TEST MODE — no real payment"


def price(space: Space) -> str:
    return "Free" if space.is_free else format_minor(space.price_minor, space.currency)


def seats_left(space: Space) -> str:
    """Tickets left, as every announcement and `/space info` show them. Seats held for a
    buyer who has not paid yet are shown as held, not as sold: they come back if unpaid."""
    if space.sold >= space.capacity:
        return "Sold out"
    text = f"{space.tickets_left:,} of {space.capacity:,}"
    return text + (f" ({space.held:,} held, awaiting payment)" if space.held else "")


def seats_on_sale(space: Space) -> str:
    """Tickets left as the public page sells them: `3 left, 1 held awaiting payment`."""
    if space.sold >= space.capacity:
        return "Sold out"
    left = f"{max(space.tickets_left, 0):,} left"
    if space.held:
        return f"{left}, {space.held:,} held awaiting payment"
    return f"{left} of {space.capacity:,}"


def seats_taken(space: Space) -> str:
    """Sold vs held, for the host: `3 sold, 1 held (awaiting payment), 1 left of 5`."""
    held = f"{space.held:,} held" + (" (awaiting payment)" if space.held else "")
    left = max(space.tickets_left, 0)
    return f"{space.sold:,} sold, {held}, {left:,} left of {space.capacity:,}"


def full_label(space: Space) -> str | None:
    """The buy button's label when no seat can be claimed right now, else None."""
    if space.tickets_left > 0:
        return None
    return "Sold out" if space.sold >= space.capacity else "All held, try later"


def space_lines(space: Space, host: Identity, tz: ZoneInfo, now: datetime) -> list[str]:
    lines = [
        f"Host: {host.display_name}",
        f"Starts: {format_when(space.starts_at, tz)}"
        + (f" (in {format_delta(space.starts_at - now)})" if space.starts_at > now else ""),
        f"Duration: {space.duration_minutes} min",
        f"Price: {price(space)}",
        f"Tickets left: {seats_left(space)}",
        f"Seats: {seats_taken(space)}",
        f"Status: {status_text(space)}",
    ]
    if space.description:
        lines.insert(0, space.description)
    return lines


def status_text(space: Space) -> str:
    """The Space's state as people read it: a cancel shows its reason."""
    if space.status == SpaceStatus.CANCELLED and space.cancel_reason:
        reason = space.cancel_reason
        return "cancelled" if reason == "cancelled" else f"cancelled ({reason})"
    return space.status.value


_FIELD_NAMES = {
    "title": "Title",
    "description": "Description",
    "starts_at": "Starts",
    "duration_minutes": "Duration",
    "capacity": "Tickets",
    "per_buyer_limit": "Tickets per buyer",
    "voice_bridge": "Discord voice bridge",
    "replay_days": "Replay days after the end",
}


def change_lines(space: Space, changes: tuple[FieldChange, ...], tz: ZoneInfo) -> list[str]:
    """Each change as "Price: €3.00 → €4.00", times in `tz`; price and currency are read
    together, so a price shows in the currency it had and has."""
    by_name = {c.name: c for c in changes}
    lines = []
    for change in changes:
        match change.name:
            case "price_minor" | "currency":
                if change.name == "currency" and "price_minor" in by_name:
                    continue
                money = by_name.get("price_minor")
                cur = by_name.get("currency")
                old_minor = money.old if money else space.price_minor
                old_cur = cur.old if cur else space.currency
                old = "Free" if old_minor == 0 else format_minor(old_minor, old_cur)
                lines.append(f"Price: {old} → {price(space)}")
            case "starts_at":
                lines.append(
                    f"Starts: {format_when(change.old, tz)} → {format_when(change.new, tz)}"
                )
            case "duration_minutes":
                lines.append(f"Duration: {change.old} min → {change.new} min")
            case "description":
                lines.append("Description: updated")
            case name:
                label = _FIELD_NAMES.get(name, name)
                lines.append(f"{label}: {_plain(change.old)} → {_plain(change.new)}")
    return lines


def _plain(value: object) -> str:
    return str(getattr(value, "value", value))


def space_title(space: Space) -> str:
    return f"#{space.id} {space.title}"


def space_buttons(space: Space) -> tuple[Button, ...]:
    if space.status not in (SpaceStatus.SCHEDULED, SpaceStatus.LIVE):
        return ()
    full = full_label(space)
    label = full or ("Get ticket" if space.is_free else f"Buy ticket ({price(space)})")
    buttons: tuple[Button, ...] = (
        Button(label, command=f"/ticket buy {space.id}"),
        Button("Remind me", command=f"/remind on {space.id}"),
    )
    if full is not None:
        buttons += (Button("Join the waitlist", command=f"/ticket waitlist {space.id}"),)
    return buttons


def room_link(public_url: str, space_id: int, token: str) -> str:
    """The join link. The token rides in the fragment so it never reaches server logs."""
    return f"{public_url}/rooms/{space_id}#token={token}"


def hold_line(hold: Hold, tz: ZoneInfo) -> str:
    """A pending hold as its buyer reads it: seats, price, and when they go back on sale."""
    paid = format_minor(hold.amount_minor, hold.currency)
    return (
        f"{hold.quantity} seat(s) held, awaiting payment of {paid} until "
        f"{format_when(hold.expires_at, tz)}"
    )


def desk_link(public_url: str, space_id: int, token: str) -> str:
    """The host's desk. The page is rendered on the server, so the token rides in the
    query; the page sends no referrer and the token expires within the hour."""
    return f"{public_url}/spaces/{space_id}/manage?token={token}"


def web_signin_link(public_url: str, token: str, next_path: str = "/") -> str:
    """A link that signs its person in on the web (`bot.http.buying`), then opens
    `next_path` there."""
    return f"{public_url.rstrip('/')}/signin?token={token}&next={quote(next_path, safe='/')}"


def invite_link(public_url: str, token: str) -> str:
    """An invite's web page: its Space, redeemed there by a signed-in buyer."""
    return f"{public_url.rstrip('/')}/invites/{token}"


def ticket_link(public_url: str, ticket_id: str, token: str) -> str:
    """The holder's manage-my-ticket page (rendered on the server: the token rides in the
    query; the page sends no referrer and the token expires within a day)."""
    return f"{public_url}/tickets/{ticket_id}?token={token}"


def ticket_line(ticket: Ticket, seat: Seat | None = None) -> str:
    """A ticket as its holder reads it; with their `seat`, a removal from the stage shows
    (the ticket is still theirs, but it does not admit them until a moderator allows it)."""
    paid = "free" if ticket.price_minor == 0 else format_minor(ticket.price_minor, ticket.currency)
    if seat is not None and seat.removed:
        return (
            f"Ticket {ticket.id} ({paid}, removed from the stage by a moderator: it does not "
            "admit you until a moderator uses /stage allow)"
        )
    return f"Ticket {ticket.id} ({paid}, {ticket.status.value})"


def promo_line(promo: PromoCode, currency: str, tz: ZoneInfo, now: datetime) -> str:
    """`EARLY — 20% off — 38 of 50 uses left — until Fri 4 Dec 2026, 18:00 CET`."""
    parts = [promo.code, describe_promo(promo, currency)]
    parts.append(f"{promo.max_uses - promo.uses} of {promo.max_uses} uses left")
    if promo.until is not None:
        parts.append(("ended " if promo.until <= now else "until ") + format_when(promo.until, tz))
    if not promo.active:
        parts.append("off")
    return " — ".join(parts)


def invite_line(link: InviteLink, expires_at: datetime, tz: ZoneInfo, now: datetime) -> str:
    """`3f9a0c1b — 3 of 10 tickets taken — expires Sat 5 Dec 2026, 20:00 CET — open`."""
    parts = [short_id(link), f"{link.uses} of {link.max_uses} tickets taken"]
    parts.append(("expired " if expires_at <= now else "expires ") + format_when(expires_at, tz))
    if link.revoked_at is not None:
        parts.append("withdrawn " + format_when(link.revoked_at, tz))
    else:
        parts.append("used up" if link.uses >= link.max_uses else "open")
    return " — ".join(parts)


def waitlist_lines(line: Line, shown: int = 10) -> list[str]:
    """A Space's waitlist for its host: how many wait, the first `shown` in order, and
    the open offers."""
    names = ", ".join(i.display_name or i.user_id for i in line.waiting[:shown])
    more = f" and {len(line.waiting) - shown} more" if len(line.waiting) > shown else ""
    lines = [f"Waitlist: {len(line.waiting)} waiting" + (f": {names}{more}" if names else "")]
    if line.offered:
        offered = ", ".join(i.display_name or i.user_id for i, _ in line.offered[:shown])
        lines.append(f"Seats offered, awaiting payment: {offered}")
    return lines


def recording_line(part: Recording) -> str:
    """`Recording 2 (1.4 MB)`."""
    return f"Recording {part.number} ({part.size / 1_000_000:.1f} MB)"


def replay_window(replays: ReplayService, space: Space, tz: ZoneInfo) -> str:
    """Until when the Space's holders may replay its recordings, as anyone reads it."""
    days = replays.days(space)
    if days == 0:
        return "No replays: the host keeps none for ticket holders."
    until = replays.until(space)
    if until is None:
        return f"Ticket holders may replay the recordings for {days} day(s) after the end."
    if replays.is_open(space):
        return f"Ticket holders may replay the recordings until {format_when(until, tz)}."
    return f"Replays closed at {format_when(until, tz)}."
