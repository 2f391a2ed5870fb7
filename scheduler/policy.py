"""The calendar rules for every Space a host schedules, however it is created: how far
ahead, how many at once, and no overlaps with the host's other Spaces or booked slots.

`SchedulePolicy.check` runs inside the core's write transaction (`SpaceService.
add_schedule_check`); on PostgreSQL it first locks the host's identity row, so two
concurrent bookings by one host are checked one after the other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.commands.times import format_when
from bot.errors import Conflict, InvalidInput, LimitExceeded
from bot.models import Identity, Space, SpaceStatus
from bot.services.spaces import ScheduleRequest
from bot.settings import Settings
from scheduler.models import SlotOccurrence, SlotSeries, SlotStatus
from scheduler.recurrence import Busy, first_clash
from scheduler.series import recurrence_of

_ACTIVE = (SpaceStatus.SCHEDULED.value, SpaceStatus.LIVE.value)


def describe_busy(busy: Busy, tz: ZoneInfo) -> str:
    end = busy.ends_at.astimezone(tz)
    return f"{busy.label} ({format_when(busy.starts_at, tz)}–{end:%H:%M})"


class SchedulePolicy:
    def __init__(self, settings: Settings, clock: Clock, *, is_sqlite: bool) -> None:
        self.settings = settings
        self.clock = clock
        self.is_sqlite = is_sqlite

    async def check(self, session: AsyncSession, request: ScheduleRequest) -> None:
        host = await self.lock_host(session, request.host_id)
        tz = ZoneInfo(host.tz) if host is not None else ZoneInfo("UTC")
        now = self.clock.now()
        horizon = now + timedelta(days=self.settings.slot_horizon_days)
        if request.starts_at > horizon:
            raise InvalidInput(
                f"Spaces can be scheduled at most {self.settings.slot_horizon_days} days ahead "
                f"(until {format_when(horizon, tz)}).",
                field="starts",
            )
        if request.space_id is None:
            count = await self.scheduled_count(session, request.host_id)
            if count >= self.settings.max_scheduled_per_host:
                raise LimitExceeded(
                    f"You already have {count} scheduled Spaces; the limit is "
                    f"{self.settings.max_scheduled_per_host}. Cancel one or wait until one ends."
                )
        start = request.starts_at
        end = start + timedelta(minutes=request.duration_minutes)
        busy = await self.busy(session, request.host_id, start, end, exclude_space=request.space_id)
        clash = first_clash([(start, end)], busy)
        if clash is not None:
            raise Conflict(
                f"That overlaps {describe_busy(clash[1], tz)}. Pick another time.",
                field="starts",
            )

    async def lock_host(self, session: AsyncSession, host_id: int) -> Identity | None:
        """The host's identity, row-locked on PostgreSQL until the transaction ends."""
        query = select(Identity).where(Identity.id == host_id)
        if not self.is_sqlite:  # SQLite: the write transaction is already exclusive
            query = query.with_for_update()
        return (await session.exec(query)).first()

    async def scheduled_count(self, session: AsyncSession, host_id: int) -> int:
        query = (
            select(sa.func.count())
            .select_from(Space)
            .where(Space.host_id == host_id, Space.status == SpaceStatus.SCHEDULED.value)
        )
        return int((await session.exec(query)).one())

    async def busy(
        self,
        session: AsyncSession,
        host_id: int,
        start: datetime,
        end: datetime,
        *,
        exclude_space: int | None = None,
        exclude_series: int | None = None,
    ) -> list[Busy]:
        """The host's Spaces and not-yet-created slot occurrences that could touch
        [start, end): what a new Space or series must not overlap."""
        longest = timedelta(minutes=self.settings.max_duration_minutes)
        query = select(Space).where(
            Space.host_id == host_id,
            col(Space.status).in_(_ACTIVE),
            col(Space.starts_at) < end,
            col(Space.starts_at) > start - longest,
        )
        if exclude_space is not None:
            query = query.where(Space.id != exclude_space)
        busy = [
            Busy(s.starts_at, s.starts_at + timedelta(minutes=s.duration_minutes), _label(s))
            for s in await session.exec(query)
        ]
        series_query = select(SlotSeries).where(
            SlotSeries.host_id == host_id, SlotSeries.status == SlotStatus.ACTIVE.value
        )
        if exclude_series is not None:
            series_query = series_query.where(SlotSeries.id != exclude_series)
        for series in await session.exec(series_query):
            rule = recurrence_of(series)
            starts = list(rule.occurrences(after=start - longest, until=end))
            if not starts:
                continue
            taken = set(
                await session.exec(
                    select(SlotOccurrence.starts_at).where(
                        SlotOccurrence.series_id == series.id,
                        col(SlotOccurrence.starts_at).in_(starts),
                    )
                )
            )
            length = timedelta(minutes=series.duration_minutes)
            busy += [
                Busy(s, s + length, f"your slot S{series.id} {series.title}")
                for s in starts
                if s not in taken
            ]
        return busy


def _label(space: Space) -> str:
    return f"your Space #{space.id} {space.title}"
