"""APScheduler 3 on the project's own async engine, without blocking the event loop.

APScheduler 3's job stores are synchronous, and `AsyncIOScheduler` calls them on the
event loop. Instead of a second, synchronous engine (a blocking driver on the loop, and
no sync PostgreSQL driver installed here) the job store uses the *sync facade of the
core's async engine*: SQLAlchemy runs it from inside a greenlet, where every query
switches back to the loop and goes through aiosqlite/asyncpg. So every call that touches
the store — the scheduler's own passes (`_process_jobs`) and our add/move/remove — runs
through `GreenletScheduler.call()` (`greenlet_spawn`). The store's table is created by
our Alembic migrations (`apscheduler_jobs` in scheduler/models.py).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.util import datetime_to_utc_timestamp
from sqlalchemy.exc import IntegrityError
from sqlalchemy.util import await_only, greenlet_spawn

from bot.coalescing import Coalescer
from bot.db import Database
from bot.tasks import TaskGroup

T = TypeVar("T")

JOB_TABLE = "apscheduler_jobs"


class ProjectJobStore(SQLAlchemyJobStore):  # type: ignore[misc]  # untyped base
    """`SQLAlchemyJobStore` on the core's engine. Reads go straight through; writes go
    through `Database.write_conn()`, so on SQLite they queue on the same lock as every
    other write in the process instead of sleeping in SQLite's busy handler.

    During a scheduler pass, removing a finished one-off job is deferred to the end of
    the pass and done in one statement per 500 jobs — only where the row still holds
    the run that was submitted, so a job moved meanwhile survives. 10,000 jobs due at
    once then cost a few statements instead of 10,000 transactions, and a process
    killed mid-pass leaves its jobs stored (the delivery rows make the rerun harmless).
    """

    def __init__(self, db: Database) -> None:
        super().__init__(engine=db.engine.sync_engine, tablename=JOB_TABLE)
        self.db = db
        self.in_pass = False
        self._due: dict[str, float | None] = {}
        self._doomed: list[tuple[str, float]] = []

    def get_due_jobs(self, now: datetime) -> list[Job]:
        jobs: list[Job] = super().get_due_jobs(now)
        self._due = {job.id: datetime_to_utc_timestamp(job.next_run_time) for job in jobs}
        return jobs

    def get_next_run_time(self) -> datetime | None:
        self.flush_removals()
        found: datetime | None = super().get_next_run_time()
        return found

    def flush_removals(self) -> None:
        doomed, self._doomed = self._doomed, []
        by_time: dict[float, list[str]] = {}
        for job_id, run_time in doomed:
            by_time.setdefault(run_time, []).append(job_id)
        c = self.jobs_t.c
        for run_time, ids in by_time.items():  # by primary key, guarded by the run time
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                self._write(
                    self.jobs_t.delete().where(c.id.in_(chunk), c.next_run_time == run_time)
                )

    def _write(self, statement: Any) -> int:
        async def write() -> int:
            async with self.db.write_conn() as conn:
                return (await conn.execute(statement)).rowcount

        rowcount: int = await_only(write())
        return rowcount

    def _state(self, job: Job) -> dict[str, Any]:
        return {
            "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
            "job_state": pickle.dumps(job.__getstate__(), self.pickle_protocol),
        }

    def add_job(self, job: Job) -> None:
        try:
            self._write(self.jobs_t.insert().values(id=job.id, **self._state(job)))
        except IntegrityError:
            raise ConflictingIdError(job.id) from None

    def update_job(self, job: Job) -> None:
        update = self.jobs_t.update().values(**self._state(job)).where(self.jobs_t.c.id == job.id)
        if self._write(update) == 0:
            raise JobLookupError(job.id)

    def remove_job(self, job_id: str) -> None:
        run_time = self._due.pop(job_id, None)
        if self.in_pass and run_time is not None:
            self._doomed.append((job_id, run_time))
            return
        if self._write(self.jobs_t.delete().where(self.jobs_t.c.id == job_id)) == 0:
            raise JobLookupError(job_id)

    def remove_all_jobs(self) -> None:
        self._write(self.jobs_t.delete())

    def shutdown(self) -> None:
        """The core disposes the engine."""


class GreenletScheduler(AsyncIOScheduler):  # type: ignore[misc]  # untyped base
    """An `AsyncIOScheduler` whose passes over the job store run in a greenlet task.

    A wakeup while a pass is running asks for one more pass instead of starting a
    second one (`bot.coalescing`), so passes never overlap."""

    def __init__(self, db: Database, **options: Any) -> None:
        super().__init__(timezone=UTC, **options)
        self.store = ProjectJobStore(db)
        self.add_jobstore(self.store, "default")
        self._passes = TaskGroup("scheduler")
        self._coalescer = Coalescer("scheduler", failed="scheduler pass failed")
        self._wait: float | None = None  # until the next job, as the last pass found it

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a scheduler method that touches the job store (add, get, remove, start)."""
        result: T = await greenlet_spawn(fn, *args, _require_await=False, **kwargs)
        return result

    def wakeup(self) -> None:
        loop = self._eventloop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._stop_timer()
        self._passes.spawn(self._run_passes(), name="pass")

    async def _run_passes(self) -> None:
        await self._coalescer.run("pass", self._one_pass)
        # the caller that ran the last pass sets the timer; the others only asked for it
        if not self._coalescer.busy and self.state == STATE_RUNNING and self._eventloop is not None:
            self._start_timer(self._wait)

    async def _one_pass(self) -> None:
        self._wait = None
        self._wait = await self.call(self._pass_once)

    def _pass_once(self) -> float | None:
        self.store.in_pass = True
        try:
            wait: float | None = self._process_jobs()
        finally:
            self.store.in_pass = False
            self.store.flush_removals()  # also when the pass failed half-way
        return wait

    async def aclose(self) -> None:
        """Stop processing, let the current pass finish, and shut down (jobs stay stored)."""
        if not self.running:
            return
        self.pause()
        self._stop_timer()
        await self._passes.idle()
        # BaseScheduler.shutdown: executors and stores only; AsyncIOScheduler's override
        # would defer it through call_soon_threadsafe.
        super(AsyncIOScheduler, self).shutdown(wait=False)
        self._eventloop = None
