"""Reading times people type, in their own zone, and showing times in the viewer's zone."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.errors import InvalidInput

_DURATION = re.compile(r"^\s*(?:(\d+)\s*h(?:ours?)?)?\s*(?:(\d+)\s*m(?:in(?:utes?)?)?)?\s*$", re.I)


def parse_when(text: str, tz: ZoneInfo, now: datetime) -> datetime:
    """`"tomorrow 18:00"`, `"fri 18:00"`, `"2030-05-01 09:30"`, `"in 2 hours"` -> aware UTC.

    Read in `tz`, preferring the future, relative to `now`."""
    import dateparser

    cleaned = " ".join(text.split())
    if not cleaned or len(cleaned) > 100:
        raise InvalidInput(
            'Give a start time like "tomorrow 18:00" or "2030-05-01 18:00".', field="starts"
        )
    local_now = now.astimezone(tz).replace(tzinfo=None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = dateparser.parse(
                cleaned,
                languages=["en"],
                settings={
                    "TIMEZONE": tz.key,
                    "TO_TIMEZONE": "UTC",
                    "RETURN_AS_TIMEZONE_AWARE": True,
                    "PREFER_DATES_FROM": "future",
                    "RELATIVE_BASE": local_now,
                },
            )
    except Exception:  # dateparser raises assorted errors on odd input
        parsed = None
    if parsed is None:
        raise InvalidInput(
            f'I can\'t read {text!r} as a time. Try "tomorrow 18:00" or "2030-05-01 18:00".',
            field="starts",
        )
    return parsed.astimezone(UTC)


def parse_duration(text: str) -> int:
    """Minutes from `90`, `1h30m`, `2h`, `45m`."""
    raw = text.strip()
    if raw.isdigit():
        return int(raw)
    match = _DURATION.match(raw)
    if match and any(match.groups()):
        hours, minutes = (int(g) if g else 0 for g in match.groups())
        return hours * 60 + minutes
    raise InvalidInput(
        f"I can't read {text!r} as a duration; write 90, 1h30m or 45m.", field="duration"
    )


def format_when(when: datetime, tz: ZoneInfo) -> str:
    """`Fri 3 May 2030, 18:00 CEST` in the viewer's zone."""
    local = when.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()}"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: what `format_when` writes; a candidate only until it formats back to the same words
_WRITTEN = re.compile(
    r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\d{1,2}) (" + "|".join(_MONTHS) + r") (\d{4}), "
    r"(\d{2}):(\d{2}) (?:[A-Za-z]+|[+-]\d{2,4})\b"
)


def mark_times(text: str, tz: ZoneInfo, mark: Callable[[datetime], str]) -> str:
    """Replace each time `format_when(..., tz)` wrote in `text` with `mark(when)` (an
    aware UTC datetime), for platforms whose own markup shows each reader's zone (Discord's
    `<t:…>`). Times written in another zone, or any look-alike, are left as they are."""

    def one(found: re.Match[str]) -> str:
        day, month, year, hour, minute = found.groups()
        for fold in (0, 1):  # the repeated hour when clocks go back
            try:
                local = datetime(
                    int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute),
                    tzinfo=tz, fold=fold,
                )  # fmt: skip
            except ValueError:
                return found.group(0)  # no such day or hour: not a time we wrote
            if format_when(local, tz) == found.group(0):
                return mark(local.astimezone(UTC))
        return found.group(0)

    return _WRITTEN.sub(one, text)


def format_delta(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "now"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    return " ".join(p for p in parts if p) or "under a minute"
