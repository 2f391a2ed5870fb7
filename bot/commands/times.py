"""Reading times people type, in their own zone, and showing times in the viewer's zone."""

from __future__ import annotations

import re
import warnings
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
