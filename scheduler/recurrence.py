"""Recurrence rules and overlaps, as pure functions of time (no database, no clock).

A small RRULE subset, like Discord's recurring events: weekly on some weekdays at one
local time, every N weeks, until a local date or for N occurrences. Occurrences recur on
the wall clock of the rule's zone, so "Mondays 18:00 Europe/Berlin" stays 18:00 across
daylight-saving changes. As in RFC 5545, a local time that does not exist (the spring
gap) moves forward by the length of the gap, and an ambiguous one (the autumn fold)
means its first occurrence.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def local_start(day: date, at: time, tz: ZoneInfo) -> datetime:
    """`day` at `at` on the wall clock of `tz`, as aware UTC (gap: forward; fold: first)."""
    return datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Recurrence:
    """When a slot recurs. `first_date` is the local date of the first occurrence or the
    date the series begins from; `weekdays` are 0 (Monday) to 6, sorted and distinct."""

    tz: ZoneInfo
    first_date: date
    at: time
    weekdays: tuple[int, ...]
    interval_weeks: int = 1
    until: date | None = None  # inclusive, on the local calendar
    count: int | None = None

    def __post_init__(self) -> None:
        if not self.weekdays or any(not 0 <= d <= 6 for d in self.weekdays):
            raise ValueError("weekdays must be a non-empty subset of 0..6")
        if tuple(sorted(set(self.weekdays))) != self.weekdays:
            raise ValueError("weekdays must be sorted and distinct")
        if self.interval_weeks < 1:
            raise ValueError("interval_weeks must be at least 1")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")

    @classmethod
    def once(cls, starts_at: datetime, tz: ZoneInfo) -> Recurrence:
        local = starts_at.astimezone(tz)
        at = local.time().replace(tzinfo=None)
        return cls(tz, local.date(), at, (local.weekday(),), 1, None, 1)

    @property
    def is_once(self) -> bool:
        return self.count == 1

    @property
    def is_bounded(self) -> bool:
        return self.count is not None or self.until is not None

    def occurrences(
        self, *, after: datetime | None = None, until: datetime | None = None
    ) -> Iterator[datetime]:
        """UTC starts in order, strictly after `after` and no later than `until`."""
        week = self.first_date - timedelta(days=self.first_date.weekday())
        step = timedelta(weeks=self.interval_weeks)
        seen = 0
        while True:
            for weekday in self.weekdays:
                day = week + timedelta(days=weekday)
                if day < self.first_date:
                    continue
                if self.until is not None and day > self.until:
                    return
                seen += 1
                if self.count is not None and seen > self.count:
                    return
                start = local_start(day, self.at, self.tz)
                if until is not None and start > until:
                    return
                if after is None or start > after:
                    yield start
            week += step

    def next_after(self, moment: datetime) -> datetime | None:
        return next(self.occurrences(after=moment), None)

    def describe(self) -> str:
        """`every 2 weeks on Mon, Thu at 18:00 (Europe/Berlin), 6 times`."""
        at = f"{self.at:%H:%M} ({self.tz.key})"
        if self.is_once:
            day = self.first_date
            return f"once, {day:%a} {day.day} {day:%b %Y} at {at}"
        every = "every week" if self.interval_weeks == 1 else f"every {self.interval_weeks} weeks"
        days = ", ".join(_WEEKDAY_NAMES[d] for d in self.weekdays)
        text = f"{every} on {days} at {at}"
        if self.until is not None:
            text += f" until {self.until:%a} {self.until.day} {self.until:%b %Y}"
        if self.count is not None:
            text += f", {self.count} times"
        return text


def parse_weekdays(text: str) -> tuple[int, ...]:
    """`mon,thu`, `monday thursday`, `weekdays` or `weekends` -> (0, 3). ValueError if bad."""
    days: set[int] = set()
    for word in (w.strip().lower() for w in text.replace(" ", ",").split(",")):
        if not word:
            continue
        if word in {"weekdays", "workdays"}:
            days.update(range(5))
        elif word in {"weekend", "weekends"}:
            days.update((5, 6))
        else:
            matches = [i for i, name in enumerate(_FULL_NAMES) if name.startswith(word)]
            if len(word) < 2 or len(matches) != 1:
                raise ValueError(word)
            days.add(matches[0])
    if not days:
        raise ValueError(text)
    return tuple(sorted(days))


# --- overlaps ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Busy:
    """A stretch of a host's time, with a label that names it in a refusal."""

    starts_at: datetime
    ends_at: datetime
    label: str = ""


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Half-open intervals: one ending at 19:00 does not clash with one starting at 19:00."""
    return a_start < b_end and b_start < a_end


def first_clash(
    wanted: Iterable[tuple[datetime, datetime]], busy: Sequence[Busy]
) -> tuple[tuple[datetime, datetime], Busy] | None:
    """The earliest wanted interval that overlaps anything in `busy`, and what it hits.

    Both sides are swept in start order: O((n + m) log m) for n wanted and m busy."""
    taken = sorted(busy, key=lambda b: (b.starts_at, b.ends_at))
    # longest busy interval bounds how far back a clash can start
    longest = max((b.ends_at - b.starts_at for b in taken), default=timedelta(0))
    starts = [b.starts_at for b in taken]
    for start, end in sorted(wanted):
        lo = bisect_left(starts, start - longest)
        hi = bisect_right(starts, end)
        for item in taken[lo:hi]:
            if overlaps(start, end, item.starts_at, item.ends_at):
                return (start, end), item
    return None
