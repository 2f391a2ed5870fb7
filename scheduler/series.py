"""The `Recurrence` rule a stored `SlotSeries` row means (`SlotService.book` stores it)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from scheduler.models import SlotSeries
from scheduler.recurrence import Recurrence


def recurrence_of(series: SlotSeries) -> Recurrence:
    return Recurrence(
        tz=ZoneInfo(series.tz),
        first_date=series.first_date,
        at=series.local_time,
        weekdays=tuple(int(d) for d in series.weekdays.split(",")),
        interval_weeks=series.interval_weeks,
        until=series.until_date,
        count=series.count,
    )
