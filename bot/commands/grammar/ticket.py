"""/ticket, /tip and /remind: what a listener does with a Space."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.commands import types as t
from bot.commands.grammar.reader import Parser, Reader
from bot.commands.grammar.usage import Usage
from bot.errors import InvalidInput
from bot.money import currency as lookup_currency
from bot.money import parse_amount
from bot.services.promos import promo_code

USAGES: tuple[Usage, ...] = (
    Usage(
        "ticket redeem",
        "/ticket redeem TOKEN",
        "Get a ticket through an invite the host gave you.",
    ),
    Usage(
        "ticket buy",
        "/ticket buy SPACE [quantity:1] [code:EARLY]",
        "Get a ticket (code: a promo code).",
        ("quantity", "code"),
    ),
    Usage(
        "ticket waitlist",
        "/ticket waitlist SPACE [leave]",
        "Get in line for a sold-out Space (leave: get out of the line).",
        notes=(
            "A seat that comes back (unpaid, refunded, or a bigger Space) is held for the "
            "next in line, who gets a DM with the pay link; unpaid, it passes on.",
        ),
        example="/ticket waitlist 12",
    ),
    Usage("ticket show", "/ticket show [SPACE]", "Your tickets and their join links."),
    Usage(
        "ticket refund",
        "/ticket refund TICKET",
        "Refund your own ticket within the refund policy (hosts: any of their Space's).",
        who="the ticket's holder, and the host of its Space.",
        notes=("Refunds close some hours before the start (see the ticket's message).",),
    ),
    Usage(
        "tip",
        '/tip @host AMOUNT [currency:usd] [message:"…"] [public:yes] [space:SPACE]',
        "Tip a host.",
        ("currency", "message", "public", "space"),
    ),
    Usage("remind", "/remind on|off SPACE", "Be reminded before a Space starts."),
)


def _buy(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    r.max_positional(1)
    code = r.option("code")
    return t.BuyTicket(space, r.integer("quantity") or 1, promo_code(code) if code else None)


def invite_token(text: str) -> str:
    """An invite's token as pasted -> the token, or `InvalidInput`."""
    token = text.strip()
    if not token or len(token) > 1000 or "." not in token:
        raise InvalidInput("Paste the invite's token: /ticket redeem TOKEN.", field="token")
    return token


def _redeem(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    token = r.positional(0)
    r.max_positional(1)
    return t.RedeemInvite(invite_token(token or ""))


def _waitlist(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    word = (r.positional(1) or "").lower()
    if word not in {"", "leave"}:
        raise r.fail(f"I don't know what {r.positional(1)!r} means here; say leave or nothing.")
    r.max_positional(2)
    return t.JoinWaitlist(space, leave=word == "leave")


def _show_tickets(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    r.max_positional(1)
    return t.ShowTickets(r.space(0, required=False))


def _refund(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    ticket = r.positional(0)
    if not ticket or not ticket.isalnum() or len(ticket) > 40:
        raise r.fail("Name the ticket by its id.")
    r.max_positional(1)
    return t.RefundTicket(ticket.lower())


def _tip(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    user = r.user(0)
    amount = r.positional(1)
    if amount is None:
        raise r.fail("Say how much, e.g. /tip @host 5.")
    r.max_positional(2)
    code = lookup_currency(r.option("currency") or cur).code
    parse_amount(amount, code)  # validated now, converted by billing
    return t.Tip(
        user,
        amount,
        code,
        (r.option("message") or "")[:300],
        r.flag("public") is not False,
        r.space(99, required=False),
    )


def _remind(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    verb = (r.positional(0) or "").lower()
    if verb not in {"on", "off"}:
        raise r.fail("Say on or off.")
    space = r.space(1)
    assert space is not None
    r.max_positional(2)
    return t.SetReminder(space, verb == "on")


PARSERS: dict[str, Parser] = {
    "ticket buy": _buy,
    "ticket waitlist": _waitlist,
    "ticket redeem": _redeem,
    "ticket show": _show_tickets,
    "ticket refund": _refund,
    "tip": _tip,
    "remind": _remind,
}
