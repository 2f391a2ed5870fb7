"""APScheduler on the core's engine: jobs stored by reference, deferred removals that
never delete a job moved meanwhile, and per-host checks that hold under concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from adapters.shell.chat import Chat
from bot.actors import Actor
from bot.clock import ManualClock
from bot.core import Core
from bot.errors import Conflict
from bot.models import Platform
from bot.services.spaces import SpaceDraft
from scheduler.lifecycle import Step
from scheduler.service import Scheduling
from tests.scheduler.helpers import say_ok


async def test_a_job_moved_during_a_pass_survives_the_deferred_removal(
    scheduling: Scheduling,
) -> None:
    aps, store = scheduling.aps, scheduling.aps.store
    past = datetime(2020, 1, 1, tzinfo=UTC)
    later = datetime(2099, 1, 1, tzinfo=UTC)
    await scheduling._put("space:7:start", 7, Step("start", past))
    await scheduling._put("space:8:start", 8, Step("start", past))

    def pass_that_submitted_both() -> None:
        store.in_pass = True
        try:
            due = store.get_due_jobs(datetime.now(UTC))
            assert {job.id for job in due} == {"space:7:start", "space:8:start"}
            store.remove_job("space:7:start")
            store.remove_job("space:8:start")
        finally:
            store.in_pass = False

    await aps.call(pass_that_submitted_both)
    # meanwhile Space 8 moved: its job is stored again with a new time
    await scheduling._put("space:8:start", 8, Step("start", later))
    await aps.call(store.flush_removals)
    assert await aps.call(aps.get_job, "space:7:start") is None
    moved = await aps.call(aps.get_job, "space:8:start")
    assert moved is not None and moved.next_run_time == later


async def test_the_job_store_is_the_projects_database(scheduling: Scheduling, core: Core) -> None:
    import sqlalchemy as sa

    await scheduling._put("space:1:start", 1, Step("start", datetime(2030, 1, 1, tzinfo=UTC)))
    async with core.db.engine.connect() as conn:
        ids = (await conn.execute(sa.text("SELECT id FROM apscheduler_jobs"))).scalars().all()
    assert ids == ["space:1:start"]


async def test_concurrent_overlapping_creates_by_one_host_admit_one(
    room: Chat, core: Core, clock: ManualClock
) -> None:
    alice = Actor(Platform.SHELL, "local", "alice", "alice")
    await core.identities.ensure(alice)
    start = clock.now() + timedelta(days=1)
    drafts = [
        SpaceDraft(title=f"T{i}", starts_at=start + timedelta(minutes=10 * i), capacity=5)
        for i in range(5)
    ]
    results = await asyncio.gather(
        *(core.spaces.create(alice, d) for d in drafts), return_exceptions=True
    )
    made = [r for r in results if not isinstance(r, BaseException)]
    assert len(made) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    await say_ok(room, "alice", "/space list")
