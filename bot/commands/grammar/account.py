"""/slot, /payouts and /tz: a host's booked slots, payouts and a person's time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.commands import types as t
from bot.commands.grammar.reader import Parser, Reader
from bot.commands.grammar.usage import SPACE_FIELDS, Usage

#: The options of `/slot add` that say how it repeats (the rest are `SPACE_FIELDS`).
SLOT_RULE_FIELDS = ("every", "days", "until", "count", "interval")

USAGES: tuple[Usage, ...] = (
    Usage(
        "slot add",
        '/slot add title:"…" starts:"…" [every:week] [days:mon,thu] [until:…] …',
        "Book a time slot, one-off or recurring.",
        (*SPACE_FIELDS, *SLOT_RULE_FIELDS),
    ),
    Usage("slot list", "/slot list", "Your booked slots."),
    Usage("slot remove", "/slot remove SLOT", "Remove future occurrences of a slot."),
    Usage("payouts connect", "/payouts connect", "Connect a Stripe account to get paid."),
    Usage("payouts status", "/payouts status", "Whether you can sell and get paid."),
    Usage("tz set", "/tz set Europe/Berlin", "Your time zone; `/tz` shows it."),
)


def _slot(verb: str) -> Parser:
    def parse(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
        r.max_positional(1 if verb == "remove" else 0)
        return t.SlotCommand(verb, tuple(sorted(r.words.options.items())), r.positional(0))

    return parse


def _payouts(verb: str) -> Parser:
    def parse(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
        r.max_positional(0)
        return t.PayoutsCommand(verb)

    return parse


def _tz(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    zone = r.positional(0)
    if zone is None:
        raise r.fail("Name a zone, e.g. /tz set Europe/Berlin.")
    r.max_positional(1)
    return t.SetTimezone(zone)


PARSERS: dict[str, Parser] = {
    **{f"slot {verb}": _slot(verb) for verb in ("add", "list", "remove")},
    **{f"payouts {verb}": _payouts(verb) for verb in ("connect", "status")},
    "tz set": _tz,
    "tz": lambda r, *_: (r.max_positional(0), t.SetTimezone(None))[1],
}
