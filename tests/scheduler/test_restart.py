"""Restart: a runner killed with SIGKILL while reminders are pending, some due while it
is down; after the restart every reminder still within its grace is delivered exactly
once, and the ones past it never. Real processes running `Stagepass.run` (HTTP app,
background jobs, signals; see runner.py), real time (about 60 s;
each runner loads its modules before the timeline starts, and the grace is 30 s with the
restart 8 s after b is due, so a take-over slowed by a loaded machine by up to 22 s still
decides every reminder the same way)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.clock import SystemClock
from bot.core import Core
from bot.models import Identity
from scheduler.models import ReminderDelivery
from tests.scheduler.processes import (
    ROOT,
    Runner,
    book,
    make_settings,
    now,
    read_dms,
    runner_env,
    wait_for_dms,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

GRACE = 30  # seconds a reminder may be late (STAGEPASS_REMINDER_GRACE_SECONDS)


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
    core = Core.build(make_settings(data), clock=SystemClock())
    await core.db.migrate()
    env = runner_env(data, dms, STAGEPASS_REMINDER_GRACE_SECONDS=str(GRACE))
    # Both runners load their modules before the timeline starts (see Runner.prepare).
    first = Runner.prepare(env, ROOT)
    second: Runner | None = None
    try:
        t0 = now() + timedelta(seconds=3)
        # a: before the kill; d: during the downtime, 32 s or more late at the restart (past
        # its 30 s grace); b, c: during the downtime, 8 and 4 s late at the restart (within
        # grace, with 22 s of room for a slow take-over); e: after the restart
        ids = await book(core, t0, {"a": 4, "d": 16, "b": 40, "c": 44, "e": 60})
        first.go()
        first.wait_for("OWNER")
        before_d = (t0 + timedelta(seconds=15) - now()).total_seconds()
        delivered = await wait_for_dms(dms, 1, within=before_d)
        assert [m["key"] for m in delivered] == ["shell:local:l-a"]
        first.kill()
        assert now() < t0 + timedelta(seconds=16), "the runner outlived d's due time"

        second = Runner.prepare(env, ROOT)
        await wait_until(t0 + timedelta(seconds=48))
        second.go()
        second.wait_for("OWNER")
        until_e_is_late = (t0 + timedelta(seconds=60 + GRACE) - now()).total_seconds()
        await wait_for_dms(dms, 4, within=until_e_is_late)
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
    core = Core.build(make_settings(data), clock=SystemClock())
    await core.db.migrate()
    await core.close()
    env = runner_env(data, dms)
    first = Runner.start(env, ROOT)
    second = None
    try:
        first.wait_for("OWNER")
        second = Runner.start(env, ROOT)
        second.wait_for("READY")
        await asyncio.sleep(1.0)
        assert "OWNER" not in second.lines
        first.kill()
        second.wait_for("OWNER")
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert second is not None
    err = second.stderr()
    assert "the scheduler already runs in process" in err, err
    assert "With SQLite only one process can run the scheduler" in err
