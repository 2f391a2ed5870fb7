"""On PostgreSQL: the same scheduler in process, and failover between two processes."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.shell.chat import Chat
from bot.clock import ManualClock
from bot.commands.handlers import Dispatcher
from bot.commands.types import SlotCommand
from bot.core import Core
from bot.db import Database
from bot.notices import EventMessenger
from bot.settings import Settings
from scheduler.commands import SlotCommands
from scheduler.ownership import PostgresLock
from scheduler.service import Scheduling
from tests.scheduler.helpers import at, deliveries, reminders_of, say_ok
from tests.scheduler.processes import (
    ROOT,
    T0,
    FileClock,
    Runner,
    book,
    expect_dms,
    make_settings,
    read_dms,
    runner_env,
)
from tests.services import drop_postgres_database, fresh_postgres_database
from tests.waiting import eventually

pytestmark = pytest.mark.postgres

NOON = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)


async def test_reminders_slots_and_lifecycle_on_postgres(
    settings: Settings, pg_db: Database
) -> None:
    clock = ManualClock(datetime(2030, 1, 7, 9, 0, tzinfo=UTC))
    core = Core.build(settings, db=pg_db, clock=clock)
    EventMessenger(core)
    dispatcher = Dispatcher(core)
    chat = Chat(core, dispatcher)
    scheduling = Scheduling(core)
    await scheduling.open()
    scheduling.attach()
    dispatcher.register(SlotCommand, SlotCommands(scheduling.slots, dispatcher).handle)
    try:
        await say_ok(
            chat, "alice", '/space create title:"Talk" starts:"2030-01-07 12:00" tickets:5'
        )
        await say_ok(chat, "bob", "/ticket buy 1")
        assert (await scheduling.jobs_of(1))["remind:30"] == NOON - timedelta(minutes=30)
        await at(clock, scheduling, NOON - timedelta(minutes=30))
        await asyncio.gather(*(scheduling.reminders.deliver(1, 30) for _ in range(5)))
        await at(clock, scheduling, NOON)
        assert len(reminders_of(chat, "bob")) == 2
        assert len(await deliveries(core)) == 4
        reply = await chat.say(
            "alice", '/slot add title:"Weekly" starts:"2030-01-07 12:30" tickets:5 every:week'
        )
        assert reply.error and "overlaps your Space #1 Talk" in reply.text
        await say_ok(
            chat, "alice", '/slot add title:"Weekly" starts:"2030-01-08 12:30" tickets:5 every:week'
        )
        assert set(await scheduling.jobs_of(2)) >= {"remind:30", "start"}
    finally:
        await core.bus.drain()
        await scheduling.close()
        await core.bus.close()


async def test_advisory_lock_elects_one_owner(pg_db: Database) -> None:
    first, second = PostgresLock(pg_db.engine), PostgresLock(pg_db.engine)
    assert await first.try_acquire()
    assert not await second.try_acquire()
    assert await first.alive()
    await first.release()
    assert await second.try_acquire()
    await second.release()


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_failover_between_two_processes(tmp_path: Path) -> None:
    """The owner is killed with reminders pending: the standby takes over and sends each
    one exactly once. Both runners and the test share a clock the test moves (see
    processes.py), so nothing here depends on how fast the processes run."""
    url, name = fresh_postgres_database()
    dms = tmp_path / "dms.jsonl"
    clock = FileClock(tmp_path / "clock")
    clock.set(T0)
    core = Core.build(make_settings(tmp_path / "data", url), clock=clock)
    runners: list[Runner] = []
    try:
        await core.db.migrate()
        env = runner_env(tmp_path / "data", dms, clock, url)
        # seconds after T0 on the shared clock; the grace is 15 s (runner_env)
        await book(core, T0, {"a": 3, "b": 10, "c": 13, "d": 16})
        owner = Runner.start(env, ROOT)
        runners.append(owner)
        owner.wait_for("OWNER")
        standby = Runner.start(env, ROOT)
        runners.append(standby)
        standby.wait_for("READY")
        await eventually(
            lambda: "the scheduler already runs in" in standby.stderr(),
            what="the second runner to say it stands by",
        )
        clock.set(T0 + timedelta(seconds=3))
        await expect_dms(dms, "a")
        assert not standby.said("OWNER")
        owner.kill()
        clock.set(T0 + timedelta(seconds=14))  # b and c due while the owner is gone
        standby.wait_for("OWNER")
        await expect_dms(dms, "a", "b", "c")
        clock.set(T0 + timedelta(seconds=16))
        await expect_dms(dms, "a", "b", "c", "d")
    finally:
        for runner in runners:
            runner.stop()
        await core.close()
        drop_postgres_database(name)
    messages = read_dms(dms)
    keys = Counter(str(m["key"]).rpartition(":")[2] for m in messages)
    assert keys == Counter({"l-a": 1, "l-b": 1, "l-c": 1, "l-d": 1}), messages
    pids = {str(m["key"]).rpartition(":")[2]: m["pid"] for m in messages}
    assert pids["l-a"] == runners[0].proc.pid
    assert {pids["l-b"], pids["l-c"], pids["l-d"]} == {runners[1].proc.pid}


async def test_concurrent_overlapping_creates_admit_one_on_postgres(
    settings: Settings, pg_db: Database
) -> None:
    """The host's row lock serialises the checks: no two overlapping Spaces get in."""
    from bot.actors import Actor
    from bot.errors import Conflict
    from bot.models import Platform
    from bot.services.spaces import SpaceDraft

    clock = ManualClock(datetime(2030, 1, 7, 9, 0, tzinfo=UTC))
    core = Core.build(settings, db=pg_db, clock=clock)
    scheduling = Scheduling(core)
    await scheduling.open()
    scheduling.attach()
    try:
        alice = Actor(Platform.SHELL, "local", "alice", "alice")
        await core.identities.ensure(alice)
        start = clock.now() + timedelta(days=1)
        results = await asyncio.gather(
            *(
                core.spaces.create(
                    alice,
                    SpaceDraft(
                        title=f"T{i}", starts_at=start + timedelta(minutes=5 * i), capacity=5
                    ),
                )
                for i in range(8)
            ),
            return_exceptions=True,
        )
        assert sum(not isinstance(r, BaseException) for r in results) == 1
        assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    finally:
        await core.bus.drain()
        await scheduling.close()
        await core.bus.close()
