"""Runner subprocesses for the restart and failover tests, and the shared setup.

The runners and the test share one clock, a file the test writes (`FileClock`): time moves
only when the test moves it, so whether a reminder is due, late or past its grace never
depends on how fast a loaded machine runs the processes. The test then waits for what it
expects (a DM, a line on stdout) with a generous deadline.
"""

from __future__ import annotations

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
from bot.core import Core
from bot.models import Platform
from bot.services.spaces import SpaceDraft
from bot.settings import Settings, load_settings
from scheduler.service import Scheduling
from tests.waiting import PATIENCE, eventually

ROOT = Path(__file__).resolve().parents[2]


#: The shared clock starts here: a Monday years after the wall clock, so APScheduler's own
#: date triggers (which run on wall time) never fire during a test and every reminder goes
#: out through the owner's take-over and its catch-up sweep, both on the shared clock.
T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


class FileClock:
    """A `Clock` kept in a file: the test `set`s it, every runner process reads it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        return datetime.fromisoformat(self.path.read_text())

    def set(self, when: datetime) -> None:
        """Move every process's time to `when` at once (an atomic replace of the file)."""
        if when.tzinfo is None:
            raise ValueError("FileClock needs an aware datetime")
        draft = self.path.with_name(self.path.name + ".new")
        draft.write_text(when.astimezone(UTC).isoformat())
        os.replace(draft, self.path)


def runner_env(
    data_dir: Path, dms: Path, clock: FileClock, database_url: str | None = None, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STAGEPASS_", "DATABASE_"))}
    env.update(
        STAGEPASS_DATA_DIR=str(data_dir),
        STAGEPASS_HTTP_PORT="0",
        STAGEPASS_PUBLIC_URL="http://stagepass.test",
        STAGEPASS_REMINDER_OFFSETS="1",
        STAGEPASS_HOST_REMINDER_OFFSETS="",
        STAGEPASS_REMINDER_GRACE_SECONDS="15",
        STAGEPASS_SCHEDULER_SWEEP_SECONDS="1",
        STAGEPASS_SCHEDULER_STANDBY_POLL_SECONDS="0.3",
        RUNNER_DMS=str(dms),
        RUNNER_CLOCK=str(clock.path),
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
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        return cls(proc, [], log)

    def wait_for(self, word: str, timeout: float = 4 * PATIENCE) -> None:
        """Wait until the runner prints a line `word` (reading the pipe unbuffered, so
        several lines arriving at once are all seen)."""
        deadline = time.monotonic() + timeout
        while word not in self.lines:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise AssertionError(f"runner never said {word}: {self.lines} {self.stderr()}")
            self._read(left)

    def said(self, word: str) -> bool:
        """Whether the runner has printed a line `word` so far (reads what is there now)."""
        while self._read(0):
            pass
        return word in self.lines

    def _read(self, timeout: float) -> bool:
        """Read what the pipe holds, waiting up to `timeout` for something; False if none."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return False
        chunk = os.read(fd, 65536).decode()
        self._partial += chunk
        *complete, self._partial = self._partial.split("\n")
        self.lines += [line.strip() for line in complete]
        return bool(chunk)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
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


async def wait_for_dms(
    path: Path, count: int, *, within: float = 2 * PATIENCE
) -> list[dict[str, object]]:
    """The DMs recorded so far, once there are at least `count` (or after `within` seconds:
    the caller's assertion then says what is missing)."""
    with contextlib.suppress(AssertionError):
        await eventually(lambda: len(read_dms(path)) >= count, what=f"{count} DMs", within=within)
    return read_dms(path)
