"""Booked slots: one-off or weekly series that become Spaces a few days ahead.

Booking checks the whole series (up to a year ahead) against the host's Spaces and other
slots and refuses naming the first clash. The Spaces of a series are created
`STAGEPASS_SLOT_LOOKAHEAD_DAYS` ahead (never past the horizon) by `materialise`, which
claims each occurrence in `slot_occurrences` before creating its Space, so running it
twice — or in two processes — never creates a Space twice. An occurrence that cannot be
created later (a clash, the per-host limit) is recorded as skipped and the host told.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from bot.actors import Actor
from bot.commands.times import format_when
from bot.core import Core
from bot.errors import Conflict, InvalidInput, LimitExceeded, NotFound, PermissionDenied, UserError
from bot.models import Identity, Space, SpaceStatus
from bot.services.spaces import SpaceDraft
from scheduler import messages
from scheduler.models import SlotOccurrence, SlotSeries, SlotStatus
from scheduler.policy import SchedulePolicy, describe_busy
from scheduler.recurrence import Recurrence, first_clash
from scheduler.series import recurrence_of

log = structlog.get_logger(__name__)

CHECK_AHEAD = timedelta(days=366)  # how far a new series is checked for clashes
_STALE_CLAIM = timedelta(minutes=5)  # a pending claim older than this was abandoned


@dataclass
class Materialised:
    created: list[Space] = field(default_factory=list)
    skipped: list[tuple[datetime, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Booking:
    series: SlotSeries
    rule: Recurrence
    result: Materialised


@dataclass(frozen=True, slots=True)
class Removal:
    series: SlotSeries
    cancelled: list[int]
    refunded: int
    failed: int


class SlotService:
    def __init__(self, core: Core, policy: SchedulePolicy) -> None:
        self.core = core
        self.settings = core.settings
        self.policy = policy

    def window_end(self, now: datetime) -> datetime:
        days = min(self.settings.slot_lookahead_days, self.settings.slot_horizon_days)
        return now + timedelta(days=days)

    # --- booking -------------------------------------------------------------------------

    async def book(self, actor: Actor, draft: SpaceDraft, rule: Recurrence) -> Booking:
        core = self.core
        now = core.clock.now()
        core.spaces.eligibility.check(actor, now)
        first = rule.next_after(now)
        if first is None:
            raise InvalidInput(
                "That slot has no occurrence ahead; check starts:, until: and days:."
            )
        draft = core.spaces.check_draft(replace(draft, starts_at=first))
        assert draft.duration_minutes is not None and draft.per_buyer_limit is not None
        host = await core.identities.ensure(actor)
        assert host.id is not None
        tz = ZoneInfo(host.tz)
        horizon = now + timedelta(days=self.settings.slot_horizon_days)
        if first > horizon:
            raise InvalidInput(
                f"The first occurrence must be within {self.settings.slot_horizon_days} days "
                f"(by {format_when(horizon, tz)}).",
                field="starts",
            )
        await core.payments.ensure_can_sell(host, draft.price_minor)
        length = timedelta(minutes=draft.duration_minutes)
        wanted = [(s, s + length) for s in rule.occurrences(after=now, until=now + CHECK_AHEAD)]
        soon = [s for s, _ in wanted if s <= self.window_end(now)]
        async with core.db.write() as session:
            await self.policy.lock_host(session, host.id)
            busy = await self.policy.busy(session, host.id, wanted[0][0], wanted[-1][1])
            clash = first_clash(wanted, busy)
            if clash is not None:
                raise Conflict(
                    f"The {format_when(clash[0][0], tz)} occurrence overlaps "
                    f"{describe_busy(clash[1], tz)}. Pick another time or other days."
                )
            count = await self.policy.scheduled_count(session, host.id)
            limit = self.settings.max_scheduled_per_host
            if count + len(soon) > limit:
                raise LimitExceeded(
                    f"That would make {count + len(soon)} scheduled Spaces in the next "
                    f"{self.settings.slot_lookahead_days} days; the limit is {limit} per host."
                )
            series = SlotSeries(
                community_id=host.community_id,
                host_id=host.id,
                title=draft.title,
                description=draft.description,
                price_minor=draft.price_minor,
                currency=draft.currency,
                capacity=draft.capacity,
                duration_minutes=draft.duration_minutes,
                per_buyer_limit=draft.per_buyer_limit,
                visibility=draft.visibility,
                status=SlotStatus.ACTIVE,
                created_at=now,
                tz=rule.tz.key,
                first_date=rule.first_date,
                local_time=rule.at,
                weekdays=",".join(str(d) for d in rule.weekdays),
                interval_weeks=rule.interval_weeks,
                until_date=rule.until,
                count=rule.count,
            )
            session.add(series)
        result = await self.materialise(series, notify=False)
        return Booking(series, rule, result)

    # --- materialising -------------------------------------------------------------------

    async def materialise_all(self) -> Materialised:
        """Create the Spaces every active series needs within the look-ahead window."""
        now = self.core.clock.now()
        end = self.window_end(now)
        async with self.core.db.session() as session:
            due = list(
                await session.exec(
                    select(SlotSeries).where(
                        SlotSeries.status == SlotStatus.ACTIVE.value,
                        sa.or_(
                            col(SlotSeries.materialised_until).is_(None),
                            col(SlotSeries.materialised_until) < end,
                        ),
                    )
                )
            )
        total = Materialised()
        for series in due:
            result = await self.materialise(series)
            total.created += result.created
            total.skipped += result.skipped
        return total

    async def materialise(self, series: SlotSeries, *, notify: bool = True) -> Materialised:
        core = self.core
        assert series.id is not None
        now = core.clock.now()
        end = self.window_end(now)
        rule = recurrence_of(series)
        after = max(series.materialised_until or now, now)
        host = await core.identities.get(series.host_id)
        result = Materialised()
        retry = await self._stale_claims(series.id, now)
        for start in sorted({*retry, *rule.occurrences(after=after, until=end)}):
            if start <= now:
                continue
            try:
                space = await self._occurrence(series, host, start, now)
            except UserError as exc:
                await self._mark(series.id, start, "skipped", note=exc.message[:300])
                result.skipped.append((start, exc.message))
                if notify:
                    await core.outbox.send(
                        host.key,
                        messages.occurrence_skipped(
                            series.title, start, ZoneInfo(host.tz), exc.message
                        ),
                    )
                continue
            if space is not None:
                result.created.append(space)
        async with core.db.write() as session:
            fresh = await session.get(SlotSeries, series.id)
            assert fresh is not None
            if fresh.status == SlotStatus.ACTIVE:
                fresh.materialised_until = max(fresh.materialised_until or end, end)
                if rule.next_after(end) is None:
                    fresh.status = SlotStatus.FINISHED
                session.add(fresh)
        if result.created or result.skipped:
            log.info(
                "slot materialised",
                series_id=series.id,
                created=[s.id for s in result.created],
                skipped=len(result.skipped),
            )
        return result

    async def _occurrence(
        self, series: SlotSeries, host: Identity, start: datetime, now: datetime
    ) -> Space | None:
        """Claim one occurrence and create its Space; None when another run has it."""
        assert series.id is not None
        core = self.core
        insert = sqlite.insert if core.db.is_sqlite else postgresql.insert
        async with core.db.write_conn() as conn:
            claimed = (
                await conn.execute(
                    insert(SlotOccurrence)
                    .values(
                        series_id=series.id,
                        starts_at=start,
                        status="pending",
                        note="",
                        created_at=now,
                    )
                    .on_conflict_do_nothing()
                    .returning(col(SlotOccurrence.series_id))
                )
            ).first()
        if claimed is None:
            return await self._adopt_stale(series, host, start, now)
        return await self._create(series, host, start)

    async def _create(self, series: SlotSeries, host: Identity, start: datetime) -> Space:
        assert series.id is not None
        draft = SpaceDraft(
            title=series.title,
            starts_at=start,
            capacity=series.capacity,
            price_minor=series.price_minor,
            currency=series.currency,
            duration_minutes=series.duration_minutes,
            description=series.description,
            per_buyer_limit=series.per_buyer_limit,
            visibility=series.visibility,
        )
        space = await self.core.spaces.create_for(host, draft)
        await self._mark(series.id, start, "created", space_id=space.id)
        return space

    async def _stale_claims(self, series_id: int, now: datetime) -> list[datetime]:
        async with self.core.db.session() as session:
            rows = await session.exec(
                select(SlotOccurrence.starts_at).where(
                    SlotOccurrence.series_id == series_id,
                    SlotOccurrence.status == "pending",
                    col(SlotOccurrence.created_at) <= now - _STALE_CLAIM,
                    col(SlotOccurrence.starts_at) > now,
                )
            )
            return list(rows)

    async def _adopt_stale(
        self, series: SlotSeries, host: Identity, start: datetime, now: datetime
    ) -> Space | None:
        """A claim left pending by a run that died: link the Space it made, or make it."""
        assert series.id is not None
        async with self.core.db.session() as session:
            claim = await session.get(SlotOccurrence, (series.id, start))
            if claim is None or claim.status != "pending" or claim.created_at > now - _STALE_CLAIM:
                return None
            made = (
                await session.exec(
                    select(Space).where(
                        Space.host_id == series.host_id,
                        Space.starts_at == start,
                        Space.title == series.title,
                        Space.status != SpaceStatus.CANCELLED.value,
                    )
                )
            ).first()
        if made is not None:
            await self._mark(series.id, start, "created", space_id=made.id)
            return None
        return await self._create(series, host, start)

    async def _mark(
        self,
        series_id: int,
        start: datetime,
        status: str,
        *,
        space_id: int | None = None,
        note: str = "",
    ) -> None:
        async with self.core.db.write() as session:
            row = await session.get(SlotOccurrence, (series_id, start))
            if row is None:
                row = SlotOccurrence(
                    series_id=series_id,
                    starts_at=start,
                    status=status,
                    created_at=self.core.clock.now(),
                )
            row.status = status
            row.space_id = space_id if space_id is not None else row.space_id
            row.note = note
            session.add(row)

    # --- listing and removing ------------------------------------------------------------

    async def of_host(self, host_id: int) -> list[SlotSeries]:
        async with self.core.db.session() as session:
            return list(
                await session.exec(
                    select(SlotSeries)
                    .where(
                        SlotSeries.host_id == host_id,
                        SlotSeries.status != SlotStatus.REMOVED.value,
                    )
                    .order_by(col(SlotSeries.id))
                )
            )

    async def upcoming(self, series_id: int, now: datetime, limit: int = 5) -> list[Space]:
        async with self.core.db.session() as session:
            return list(
                await session.exec(
                    select(Space)
                    .join(SlotOccurrence, col(SlotOccurrence.space_id) == col(Space.id))
                    .where(
                        SlotOccurrence.series_id == series_id,
                        col(Space.status).in_(
                            [SpaceStatus.SCHEDULED.value, SpaceStatus.LIVE.value]
                        ),
                        col(Space.starts_at) > now - timedelta(hours=24),
                    )
                    .order_by(col(Space.starts_at))
                    .limit(limit)
                )
            )

    async def get_in(self, series_id: int, community_id: str) -> SlotSeries:
        async with self.core.db.session() as session:
            series = await session.get(SlotSeries, series_id)
        if series is None or series.community_id != community_id:
            raise NotFound(f"There is no slot S{series_id} here.")
        return series

    async def remove(self, actor: Actor, series_id: int) -> Removal:
        """Stop a series and cancel its Spaces still ahead (tickets are refunded)."""
        core = self.core
        series = await self.get_in(series_id, actor.community_id)
        me = await core.identities.ensure(actor)
        if me.id != series.host_id and not actor.is_moderator:
            raise PermissionDenied("Only the host or a moderator can remove this slot.")
        if series.status == SlotStatus.REMOVED:
            raise Conflict(f"Slot S{series_id} is already removed.")
        now = core.clock.now()
        async with core.db.write() as session:
            fresh = await session.get(SlotSeries, series_id)
            assert fresh is not None
            fresh.status = SlotStatus.REMOVED
            fresh.removed_at = now
            session.add(fresh)
        async with core.db.session() as session:
            ahead = list(
                await session.exec(
                    select(Space.id)
                    .join(SlotOccurrence, col(SlotOccurrence.space_id) == col(Space.id))
                    .where(
                        SlotOccurrence.series_id == series_id,
                        Space.status == SpaceStatus.SCHEDULED.value,
                        col(Space.starts_at) > now,
                    )
                    .order_by(col(Space.starts_at))
                )
            )
        cancelled: list[int] = []
        refunded = failed = 0
        for space_id in ahead:
            if space_id is None:
                continue
            try:
                done, bad = await core.tickets.cancel_space(
                    actor, space_id, messages.SLOT_REMOVED_REASON
                )
            except Conflict:
                continue  # went live or was cancelled meanwhile
            cancelled.append(space_id)
            refunded += done
            failed += bad
        return Removal(fresh, cancelled, refunded, failed)
