"""Restart: a runner killed with SIGKILL while reminders are pending, some due while it
is down; after the restart every reminder still within its grace is delivered exactly
once, and the ones past it never. Real processes running `Stagepass.run` (HTTP app,
background jobs, signals; see runner.py) on a clock the test moves (`FileClock`): what is
due, late or past its grace is decided by that clock alone, and the test waits for the
DMs it expects with a generous deadline, so a loaded machine only makes it slower."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.core import Core
from bot.models import Identity
from scheduler.models import ReminderDelivery
from tests.scheduler.processes import (
    ROOT,
    T0,
    FileClock,
    Runner,
    book,
    make_settings,
    read_dms,
    runner_env,
    wait_for_dms,
)
from tests.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

GRACE = 15  # seconds a reminder may be late (STAGEPASS_REMINDER_GRACE_SECONDS)


async def delivered_to(core: Core) -> Counter[str]:
    async with core.db.session() as session:
        rows = await session.exec(
            select(Identity.user_id).join(
                ReminderDelivery,
                col(ReminderDelivery.identity_id) == col(Identity.id),
            )
        )
        return Counter(rows)


async def test_sigkill_and_restart_deliver_each_reminder_within_grace_once(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    dms = tmp_path / "dms.jsonl"
    clock = FileClock(tmp_path / "clock")
    clock.set(T0)
    core = Core.build(make_settings(data), clock=clock)
    await core.db.migrate()
    env = runner_env(data, dms, clock, STAGEPASS_REMINDER_GRACE_SECONDS=str(GRACE))
    # a: before the kill; d: during the downtime, 20 s late at the restart (past its 15 s
    # grace); b, c: during the downtime, 10 and 5 s late at the restart (within grace);
    # e: after the restart. Seconds after T0 on the shared clock:
    ids = await book(core, T0, {"a": 10, "d": 30, "b": 40, "c": 45, "e": 60})
    restart = T0 + timedelta(seconds=50)
    first = Runner.start(env, ROOT)
    second: Runner | None = None
    try:
        first.wait_for("OWNER")
        clock.set(T0 + timedelta(seconds=10))
        delivered = await wait_for_dms(dms, 1)
        assert [m["key"] for m in delivered] == ["shell:local:l-a"]
        first.kill()

        clock.set(restart)
        second = Runner.start(env, ROOT)
        second.wait_for("OWNER")
        delivered = await wait_for_dms(dms, 3)
        assert sorted(str(m["key"]) for m in delivered) == [
            "shell:local:l-a",
            "shell:local:l-b",
            "shell:local:l-c",
        ]
        clock.set(T0 + timedelta(seconds=60))
        await wait_for_dms(dms, 4)
    finally:
        first.stop()
        if second is not None:
            second.stop()

    messages = read_dms(dms)
    keys = Counter(str(m["key"]).rpartition(":")[2] for m in messages)
    assert keys == Counter({"l-a": 1, "l-b": 1, "l-c": 1, "l-e": 1}), messages
    by_pid = {str(m["key"]).rpartition(":")[2]: m["pid"] for m in messages}
    assert by_pid["l-a"] == first.proc.pid
    assert {by_pid["l-b"], by_pid["l-c"], by_pid["l-e"]} == {second.proc.pid}
    assert await delivered_to(core) == Counter({"l-a": 1, "l-b": 1, "l-c": 1, "l-e": 1})
    assert all("starts in" in str(m["text"]) for m in messages)
    assert set(ids) == {"a", "b", "c", "d", "e"}
    await core.close()


async def test_a_second_process_on_sqlite_says_so_and_takes_over(tmp_path: Path) -> None:
    data = tmp_path / "data"
    dms = tmp_path / "dms.jsonl"
    clock = FileClock(tmp_path / "clock")
    clock.set(T0)
    core = Core.build(make_settings(data), clock=clock)
    await core.db.migrate()
    await core.close()
    env = runner_env(data, dms, clock)
    first = Runner.start(env, ROOT)
    runners = [first]
    try:
        first.wait_for("OWNER")
        second = Runner.start(env, ROOT)
        runners.append(second)
        second.wait_for("READY")
        # the standby says so once its try for the lock has failed, and stays a standby
        await eventually(
            lambda: "the scheduler already runs in process" in second.stderr(),
            what="the second runner to say it stands by",
        )
        assert not second.said("OWNER")
        first.kill()
        second.wait_for("OWNER")
    finally:
        for runner in runners:
            runner.stop()
    err = second.stderr()
    assert "the scheduler already runs in process" in err, err
    assert "With SQLite only one process can run the scheduler" in err
