"""Runner subprocesses for the restart and failover tests, and the shared setup."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.actors import Actor
from bot.clock import SystemClock
from bot.core import Core
from bot.models import Platform
from bot.services.spaces import SpaceDraft
from bot.settings import Settings, load_settings
from scheduler.service import Scheduling
from tests.waiting import PATIENCE, eventually

ROOT = Path(__file__).resolve().parents[2]


def runner_env(
    data_dir: Path, dms: Path, database_url: str | None = None, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STAGEPASS_", "DATABASE_"))}
    env.update(
        STAGEPASS_DATA_DIR=str(data_dir),
        STAGEPASS_HTTP_PORT="0",
        STAGEPASS_PUBLIC_URL="http://stagepass.test",
        STAGEPASS_REMINDER_OFFSETS="1",
        STAGEPASS_HOST_REMINDER_OFFSETS="",
        STAGEPASS_REMINDER_GRACE_SECONDS="15",
        STAGEPASS_SCHEDULER_SWEEP_SECONDS="3600",
        STAGEPASS_SCHEDULER_STANDBY_POLL_SECONDS="0.3",
        RUNNER_DMS=str(dms),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


@dataclass
class Runner:
    proc: subprocess.Popen[str]
    lines: list[str]
    log: Path
    _partial: str = ""

    @classmethod
    def start(cls, env: dict[str, str], cwd: Path) -> Runner:
        """Start one; its logs go to a file next to RUNNER_DMS (a pipe could fill up)."""
        dms = Path(env["RUNNER_DMS"])
        log = dms.with_name(f"runner-{time.monotonic_ns()}.log")
        with log.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.scheduler.runner"],
                env=env,
                cwd=cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        return cls(proc, [], log)

    @classmethod
    def prepare(cls, env: dict[str, str], cwd: Path) -> Runner:
        """Start one that loads its modules and then waits for `go()`: what a test times
        begins at `go()`, not at the (load-dependent) imports."""
        runner = cls.start({**env, "RUNNER_WAIT_GO": "1"}, cwd)
        runner.wait_for("IMPORTED", timeout=60)
        return runner

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("GO\n")
        self.proc.stdin.flush()

    def wait_for(self, word: str, timeout: float = 2 * PATIENCE) -> None:
        """Wait until the runner prints a line `word` (reading the pipe unbuffered, so
        several lines arriving at once are all seen)."""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while word not in self.lines:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise AssertionError(f"runner never said {word}: {self.lines} {self.stderr()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536).decode()
                self._partial += chunk
                *complete, self._partial = self._partial.split("\n")
                self.lines += [line.strip() for line in complete]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()  # else the pipe is left to the garbage collector

    def stderr(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""


def make_settings(data_dir: Path, database_url: str | None = None) -> Settings:
    return load_settings(
        data_dir=data_dir,
        database_url=database_url,
        public_url="http://stagepass.test",
        reminder_offsets="1",
        host_reminder_offsets="",
        reminder_grace_seconds=15,
        _env_file=None,
    )


async def book(core: Core, t0: datetime, due_after: dict[str, float]) -> dict[str, int]:
    """One Space per name, its 1-minute reminder due `due_after[name]` seconds after t0,
    with one subscriber `l-<name>`; the jobs go to the shared store through a
    non-owning `Scheduling`, as they would from any process. Returns name -> Space id."""
    scheduling = Scheduling(core)
    await scheduling.open()
    scheduling.attach()
    ids = {}
    for name, seconds in due_after.items():
        host = Actor(Platform.SHELL, "local", f"h-{name}", f"h-{name}")
        space = await core.spaces.create(
            host,
            SpaceDraft(
                title=f"Space {name}",
                starts_at=t0 + timedelta(seconds=seconds, minutes=1),
                capacity=5,
            ),
        )
        assert space.id is not None
        listener = Actor(Platform.SHELL, "local", f"l-{name}", f"l-{name}")
        await core.reminders.set(listener, space.id, True)
        ids[name] = space.id
    await core.bus.drain()
    for space_id in ids.values():
        assert "remind:1" in await scheduling.jobs_of(space_id)
    await scheduling.close()
    return ids


def read_dms(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def now() -> datetime:
    return SystemClock().now().astimezone(UTC)


async def wait_until(moment: datetime) -> None:
    delay = (moment - now()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)


async def wait_for_dms(path: Path, count: int, *, within: float = 30) -> list[dict[str, object]]:
    """The DMs recorded so far, once there are at least `count` (or after `within` seconds:
    the caller's assertion then says what is missing)."""
    with contextlib.suppress(AssertionError):
        await eventually(lambda: len(read_dms(path)) >= count, what=f"{count} DMs", within=within)
    return read_dms(path)
