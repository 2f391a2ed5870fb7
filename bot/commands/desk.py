"""The host's desk as chat text (`/space tickets`): totals, then the rows a page at a
time, each page short enough for any platform (Discord's 2,000 characters, a Slack
section's 3,000)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.commands.times import format_when
from bot.money import format_minor
from bot.services.hostdesk import DeskRow, DeskSheet, EntryStatus

PAGE_ROWS = 15
MAX_CHARS = 1800


def totals_line(sheet: DeskSheet) -> str:
    t = sheet.totals

    def money(minor: int) -> str:
        return format_minor(minor, t.currency)

    line = (
        f"{t.tickets} ticket(s), {money(t.gross_minor)} sold, platform cut "
        f"{money(t.fee_minor)}; tips {money(t.tips_minor)} ({t.tips}); "
        f"you keep {money(t.host_minor)}."
    )
    if t.held:
        line += f" {t.held} seat(s) held, awaiting payment."
    if t.refunded:
        line += f" {t.refunded} refunded ({money(t.refunded_minor)})."
    return line


def row_line(row: DeskRow, currency: str, tz: ZoneInfo) -> str:
    who = row.holder.display_name or row.holder.user_id
    amount = format_minor(row.amount_minor, currency) if row.amount_minor else "free"
    line = f"{row.ref} — {who} — {row.status.value} — {amount}"
    if row.status == EntryStatus.PENDING:
        line += f" for {row.quantity} seat(s)"
    if row.expires_at is not None:
        line += f", until {format_when(row.expires_at, tz)}"
    return line


def desk_page(sheet: DeskSheet, page: int, tz: ZoneInfo) -> tuple[str, str]:
    """(text, title) of page `page` (past the last: the last)."""
    space = sheet.space
    pages = max(1, -(-len(sheet.rows) // PAGE_ROWS))
    page = min(max(page, 1), pages)
    head = totals_line(sheet)
    if not sheet.rows:
        return head + "\nNo tickets yet.", f"Tickets of #{space.id}"
    shown = sheet.rows[(page - 1) * PAGE_ROWS : page * PAGE_ROWS]
    lines = [row_line(r, space.currency, tz) for r in shown]
    foot = f"Page {page} of {pages}" + (
        f" — next: /space tickets {space.id} page:{page + 1}" if page < pages else ""
    )
    text = "\n".join([head, *lines, foot])
    while len(text) > MAX_CHARS and len(lines) > 1:
        lines.pop()
        text = "\n".join([head, *lines, foot + " (some rows cut: use the desk)"])
    return text[:MAX_CHARS], f"Tickets of #{space.id}"
