"""`Scheduling`: the APScheduler instance, its jobs, the owner election, and the one
entry point that does every piece of due work now (`run_due`).

Every process that runs the core keeps the job store up to date from the core's events
(a Space announced anywhere gets its jobs); only the elected owner runs the jobs. The
job functions are plain coroutines on the injected clock — APScheduler only decides
*when* to call them — and `run_due()` calls the same coroutines for everything due by
the clock: the tests move a `ManualClock` and call it, and the owner calls it on taking
over and every `STAGEPASS_SCHEDULER_SWEEP_SECONDS` as a catch-up net.

Why a net: APScheduler 3 removes a one-off job from its store when it *submits* it, so a
process killed between that and the job's commit would lose it. The source of truth is
the database — Spaces, subscriptions and `reminder_deliveries` — and the sweep derives
what is still owed from it; the delivery rows keep it exactly-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import structlog
from apscheduler.jobstores.base import JobLookupError
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import col

from bot.core import Core
from bot.errors import NotFound
from bot.events import (
    ReminderSet,
    SpaceAnnounced,
    SpaceCancelled,
    SpaceEnded,
    SpaceEvent,
    SpaceStarted,
    SpaceUpdated,
    TicketIssued,
)
from bot.models import Space, SpaceStatus
from scheduler import jobs
from scheduler.jobstore import JOB_TABLE, GreenletScheduler
from scheduler.lifecycle import Lifecycle, Step
from scheduler.ownership import FileLock, OwnerLock, PostgresLock
from scheduler.policy import SchedulePolicy
from scheduler.reminders import ReminderSender
from scheduler.slots import Materialised, SlotService

log = structlog.get_logger(__name__)

_TARGETS = {
    "remind": "scheduler.jobs:remind",
    "start": "scheduler.jobs:start",
    "abandon": "scheduler.jobs:abandon",
    "end": "scheduler.jobs:end",
}
_TIMING_FIELDS = {"starts_at", "duration_minutes"}


@dataclass
class DueWork:
    """What one `run_due` did."""

    holds_released: int = 0
    slots: Materialised = field(default_factory=Materialised)
    lifecycle: list[tuple[str, int, str]] = field(default_factory=list)
    reminders_sent: int = 0
    replays_purged: int = 0


def default_lock(core: Core) -> OwnerLock:
    if not core.db.is_sqlite:
        return PostgresLock(core.db.engine)
    database = sa.engine.make_url(core.db.url).database
    if database and database != ":memory:":
        path = Path(database)
        return FileLock(path.with_name(path.name + ".scheduler.lock"))
    return FileLock(core.settings.data_dir / "scheduler.lock")


class Scheduling:
    def __init__(self, core: Core, *, lock: OwnerLock | None = None) -> None:
        self.core = core
        self.settings = core.settings
        self.aps = GreenletScheduler(
            core.db,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self.settings.reminder_grace_seconds,
            },
        )
        self.reminders = ReminderSender(core)
        self.lifecycle = Lifecycle(core, self.reminders)
        self.policy = SchedulePolicy(self.settings, core.clock, is_sqlite=core.db.is_sqlite)
        self.slots = SlotService(core, self.policy)
        self.lock = lock or default_lock(core)
        self.is_owner = False
        self.inflight: set[asyncio.Task[object]] = set()
        self._planned: dict[int, tuple[object, ...]] = {}
        self._planning: dict[int, asyncio.Lock] = {}

    # --- setting up ----------------------------------------------------------------------

    async def open(self) -> None:
        """Start APScheduler paused: this process can write jobs, not run them."""
        if not self.aps.running:
            await self.aps.call(self.aps.start, paused=True)

    def attach(self) -> None:
        """Follow the core's events and add the calendar rules to Space creation."""
        bus = self.core.bus
        for event_type in (SpaceAnnounced, SpaceStarted, SpaceEnded, SpaceCancelled):
            bus.subscribe(event_type, self._on_space)
        bus.subscribe(SpaceUpdated, self._on_updated)
        bus.subscribe(ReminderSet, self._on_reminder_set)
        bus.subscribe(TicketIssued, self._on_ticket_issued)
        self.core.spaces.add_schedule_check(self.policy.check)

    async def _on_space(self, event: SpaceEvent) -> None:
        await self.plan(event.space_id)

    async def _on_updated(self, event: SpaceUpdated) -> None:
        if _TIMING_FIELDS & set(event.changed):
            await self.plan(event.space_id)

    async def _on_reminder_set(self, event: ReminderSet) -> None:
        if event.on:
            await self.plan(event.space_id)

    async def _on_ticket_issued(self, event: TicketIssued) -> None:
        holder = await self.core.identities.by_key(event.holder_key)
        if holder is not None:
            await self.core.reminders.subscribe(holder, event.space_id, True)

    # --- jobs ----------------------------------------------------------------------------

    @staticmethod
    def job_id(space_id: int, kind: str) -> str:
        return f"space:{space_id}:{kind}"

    def _kinds(self) -> list[str]:
        return [f"remind:{o}" for o in self.reminders.offsets()] + ["start", "abandon", "end"]

    async def plan(self, space_id: int) -> None:
        """Make the stored jobs of `space_id` match its current state: add, move, remove.

        One plan per Space at a time, so an older state never overwrites a newer one;
        a job left over anyway does nothing (every step checks the Space again)."""
        lock = self._planning.setdefault(space_id, asyncio.Lock())
        try:
            async with lock:
                await self._plan(space_id)
        finally:
            if not lock.locked() and self._planning.get(space_id) is lock:
                del self._planning[space_id]

    async def _plan(self, space_id: int) -> None:
        try:
            space = await self.core.spaces.get(space_id)
        except NotFound:
            space = None
        key = _plan_key(space)
        if self._planned.get(space_id) == key:
            return
        now = self.core.clock.now()
        steps = {s.kind: s for s in self.lifecycle.plan(space, now)} if space else {}
        for kind in self._kinds():
            job_id = self.job_id(space_id, kind)
            step = steps.get(kind)
            if step is None:
                with contextlib.suppress(JobLookupError):
                    await self.aps.call(self.aps.remove_job, job_id)
            else:
                await self._put(job_id, space_id, step)
        if space is None or space.status.is_final:
            self._planned.pop(space_id, None)
        else:
            self._planned[space_id] = key

    async def _put(self, job_id: str, space_id: int, step: Step) -> None:
        kind, _, offset = step.kind.partition(":")
        args: list[int] = [space_id, int(offset)] if offset else [space_id]
        # a reminder later than its grace is dropped; a lifecycle step runs however late
        grace = self.settings.reminder_grace_seconds if kind == "remind" else None
        await self.aps.call(
            self.aps.add_job,
            _TARGETS[kind],
            trigger=DateTrigger(run_date=step.at, timezone=UTC),
            args=args,
            id=job_id,
            name=job_id,
            replace_existing=True,
            misfire_grace_time=grace,
            coalesce=True,
            max_instances=1,
        )

    async def plan_unplanned(self) -> int:
        """Plan the upcoming Spaces that have no stored job at all (made before the
        scheduler was installed, or while it was switched off). Returns how many."""
        async with self.core.db.engine.connect() as conn:
            job_ids = (await conn.execute(sa.text(f"SELECT id FROM {JOB_TABLE}"))).scalars()
            have = {int(j.split(":")[1]) for j in job_ids if j.startswith("space:")}
            upcoming = (
                await conn.execute(
                    sa.select(col(Space.id)).where(
                        col(Space.status).in_([SpaceStatus.SCHEDULED.value, SpaceStatus.LIVE.value])
                    )
                )
            ).scalars()
            missing = [i for i in upcoming if i is not None and i not in have]
        for space_id in missing:
            await self.plan(space_id)
        return len(missing)

    async def jobs_of(self, space_id: int) -> dict[str, datetime]:
        """The stored jobs of a Space: kind -> next run time (for tests and operators)."""
        found: dict[str, datetime] = {}
        for kind in self._kinds():
            job = await self.aps.call(self.aps.get_job, self.job_id(space_id, kind))
            if job is not None and job.next_run_time is not None:
                found[kind] = job.next_run_time.astimezone(UTC)
        return found

    async def _put_periodic(self) -> None:
        s = self.settings
        for job_id, target, seconds in (
            ("holds", "scheduler.jobs:expire_holds", s.hold_sweep_seconds),
            ("slots", "scheduler.jobs:materialise_slots", 3600),
            ("sweep", "scheduler.jobs:sweep", s.scheduler_sweep_seconds),
            ("replays", "scheduler.jobs:purge_replays", 3600),
        ):
            await self.aps.call(
                self.aps.add_job,
                target,
                trigger=IntervalTrigger(seconds=seconds, timezone=UTC),
                id=job_id,
                name=job_id,
                replace_existing=True,
                misfire_grace_time=seconds,
                coalesce=True,
                max_instances=1,
            )

    # --- due work ------------------------------------------------------------------------

    async def run_due(self) -> DueWork:
        """Do everything due by the clock now: release expired holds, create the slots'
        Spaces, start/cancel/end Spaces, send reminders. Idempotent; safe to call from
        tests (with a `ManualClock`) whether or not this process owns the scheduler."""
        work = DueWork()
        work.holds_released = await self.core.tickets.expire_holds()
        work.slots = await self.slots.materialise_all()
        work.lifecycle, work.reminders_sent = await self._lifecycle_and_reminders()
        work.replays_purged = await self.core.replays.purge_expired()
        return work

    async def catch_up(self) -> None:
        """The periodic net: lifecycle steps and reminders due by now and not done."""
        await self._lifecycle_and_reminders()

    async def _lifecycle_and_reminders(self) -> tuple[list[tuple[str, int, str]], int]:
        done: list[tuple[str, int, str]] = []
        for kind, space_id in await self.lifecycle.due(self.core.clock.now()):
            step = getattr(self.lifecycle, kind)
            done.append((kind, space_id, await step(space_id)))
        sent = await self.reminders.deliver_many(await self.reminders.due(self.core.clock.now()))
        return done, sent

    # --- ownership -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Own the scheduler while this process holds the lock; otherwise wait as a
        standby and take over when the owner goes. Returns after `stop` is set."""
        poll = self.settings.scheduler_standby_poll_seconds
        told = False
        try:
            while not stop.is_set():
                try:
                    if not self.is_owner:
                        if await self.lock.try_acquire():
                            await self._take_over()
                        elif not told:
                            self._tell_standby()
                            told = True
                    elif not await self.lock.alive():
                        await self._step_down()
                except Exception:  # a database outage: log it, keep trying
                    log.exception("scheduler election failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=poll)
        finally:
            await self.close()

    def _tell_standby(self) -> None:
        db = self.core.db
        where = f"SQLite database {db.url}" if db.is_sqlite else "PostgreSQL database"
        message = (
            f"stagepass: the scheduler already runs in {self.lock.holder()} on this {where}. "
            "This process will not send reminders or start and end Spaces; it takes over "
            "if that process stops."
        )
        if self.core.db.is_sqlite:
            message += " (With SQLite only one process can run the scheduler.)"
        log.warning("scheduler standby", holder=self.lock.holder())
        print(message, file=sys.stderr, flush=True)

    async def _take_over(self) -> None:
        await self.open()
        jobs.bind(self)
        self.is_owner = True
        await self._put_periodic()
        self.aps.resume()
        log.info("this process now owns the scheduler")
        try:
            work = await self.run_due()
            planned = await self.plan_unplanned()
        except Exception:  # the sweep job retries it shortly
            log.exception("scheduler catch-up failed")
            return
        log.info(
            "scheduler caught up",
            planned=planned,
            reminders=work.reminders_sent,
            lifecycle=len(work.lifecycle),
            holds=work.holds_released,
        )

    async def _step_down(self) -> None:
        log.warning("this process no longer owns the scheduler")
        self.is_owner = False
        if self.aps.running:
            self.aps.pause()
        jobs.unbind(self)

    async def close(self) -> None:
        """Finish running jobs (10 s at most), give up ownership, stop APScheduler."""
        if self.aps.running:
            self.aps.pause()
        if self.inflight:
            await asyncio.wait(list(self.inflight), timeout=10)
        if self.is_owner:
            self.is_owner = False
            await self.lock.release()
        jobs.unbind(self)
        await self.aps.aclose()


def _plan_key(space: Space | None) -> tuple[object, ...]:
    if space is None:
        return ("gone",)
    return (space.status, space.starts_at, space.started_at, space.duration_minutes)
