"""Restart: a runner killed with SIGKILL while reminders are pending, some due while it
is down; after the restart every reminder still within its grace is delivered exactly
once, and the ones past it never. Real processes running `Stagepass.run` (HTTP app,
background jobs, signals; see runner.py), real time (about 40 s)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.clock import SystemClock
from bot.core import Core
from bot.models import Identity, ReminderDelivery
from tests.scheduler.processes import (
    ROOT,
    Runner,
    book,
    make_settings,
    now,
    read_dms,
    runner_env,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


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
    t0 = now() + timedelta(seconds=4)
    # a: before the kill; d: during the downtime, past its 15 s grace at the restart;
    # b, c: during the downtime, within grace; e: after the restart
    ids = await book(core, t0, {"a": 4, "d": 9, "b": 20, "c": 26, "e": 38})
    env = runner_env(data, dms)

    first = Runner.start(env, ROOT)
    try:
        first.wait_for("OWNER")
        await wait_until(t0 + timedelta(seconds=7))
        assert [m["key"] for m in read_dms(dms)] == ["shell:local:l-a"]
        first.kill()  # nothing is due within 2 s of this moment
        killed_at = time.monotonic()
    finally:
        first.stop()

    await wait_until(t0 + timedelta(seconds=30))
    assert time.monotonic() - killed_at > 20
    second = Runner.start(env, ROOT)
    try:
        second.wait_for("OWNER")
        await wait_until(t0 + timedelta(seconds=42))
        for _ in range(50):  # e's job fires at +38 s; allow for a slow machine
            if len(read_dms(dms)) >= 4:
                break
            await asyncio.sleep(0.2)
    finally:
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
        second.wait_for("OWNER", timeout=10)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert second is not None
    err = second.stderr()
    assert "the scheduler already runs in process" in err, err
    assert "With SQLite only one process can run the scheduler" in err
