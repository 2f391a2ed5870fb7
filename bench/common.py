"""Shared helpers for the benchmarks: throw-away databases, a core on a manual clock,
buyers, a closed-loop load driver and percentile formatting.

Benchmarks print figures; they never pass or fail on time.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.actors import Actor
from bot.clock import ManualClock
from bot.core import Core
from bot.db import Database
from bot.models import Platform, Space
from bot.services.spaces import SpaceDraft
from bot.settings import Settings, load_settings

PG_ADMIN_URL = os.environ.get("STAGEPASS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
COMMUNITY = "bench"


class Unavailable(Exception):
    """A backend the benchmark cannot use here; `str()` says why."""


def machine() -> str:
    return (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} {platform.release()}; "
        f"load average {os.getloadavg()[0]:.2f} at start (other work on the machine skews figures)"
    )


#: Claim rate limits high enough never to refuse a benchmark's burst of buyers (the clock
#: is manual, so buckets never refill), low enough that their buckets still do the work.
BENCH_CLAIMS_PER_MINUTE = 1_000_000_000


def bench_settings(data_dir: Path) -> Settings:
    return load_settings(
        data_dir=data_dir,
        api_token="bench",
        http_port=0,
        public_url="http://stagepass.bench",
        claims_per_minute_person=BENCH_CLAIMS_PER_MINUTE,
        claims_per_minute_community=BENCH_CLAIMS_PER_MINUTE,
        max_scheduled_per_host=1_000,  # one bench host announces a Space per row
    )


@asynccontextmanager
async def scratch_dir() -> AsyncIterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="stagepass-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def sqlite_database(directory: Path, name: str = "bench.db") -> AsyncIterator[Database]:
    """A migrated SQLite file in `directory` (removed with it)."""
    db = Database(f"sqlite+aiosqlite:///{directory / name}")
    try:
        await db.migrate()
        yield db
    finally:
        await db.dispose()


def _pg_host_port(url: str) -> tuple[str, int]:
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 5432


@asynccontextmanager
async def postgres_database(pool_size: int = 20) -> AsyncIterator[Database]:
    """A migrated, temporary PostgreSQL database, dropped afterwards.

    Raises `Unavailable` (with the reason) when the server cannot be reached."""
    import asyncpg

    host, port = _pg_host_port(PG_ADMIN_URL)
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError as exc:
        raise Unavailable(
            f"PostgreSQL is not listening on {host}:{port} ({exc}); "
            "start it (pg_ctlcluster 15 main start) or set STAGEPASS_BENCH_PG"
        ) from None
    admin_dsn = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        raise Unavailable(f"cannot connect to {admin_dsn}: {exc}") from None
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.PostgresError as exc:
        await admin.close()
        raise Unavailable(f"cannot create a database: {exc}") from None
    url = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    db = Database(url, pool_size=pool_size)
    try:
        await db.migrate()
        yield db
    finally:
        await db.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


_OPEN: list[Core] = []


def new_core(db: Database, data_dir: Path) -> Core:
    """A core on `db` with a manual clock (no notices, no payments: free Spaces)."""
    core = Core.build(bench_settings(data_dir), db=db, clock=ManualClock())
    _OPEN.append(core)
    return core


async def close_cores() -> None:
    """Stop the cores' owned tasks (the claim batcher); the caller disposes the database."""
    while _OPEN:
        core = _OPEN.pop()
        await core.tickets.claims.close()
        await core.bus.close()


def person(user_id: str) -> Actor:
    return Actor(Platform.SHELL, COMMUNITY, user_id, user_id, community_name="Bench")


async def free_space(
    core: Core,
    *,
    capacity: int,
    per_buyer_limit: int = 1,
    title: str = "Bench",
    price_minor: int = 0,
) -> Space:
    """A scheduled Space starting tomorrow (by the core's clock); free unless priced (a
    paid one needs a payment gateway on the core)."""
    return await core.spaces.create(
        person("host"),
        SpaceDraft(
            title=title,
            starts_at=core.clock.now() + timedelta(days=1),
            capacity=capacity,
            per_buyer_limit=per_buyer_limit,
            price_minor=price_minor,
            currency="usd",
        ),
    )


@dataclass
class Run:
    """What a closed-loop run measured."""

    calls: int
    seconds: float
    latencies: list[float]  # seconds, one per call, sorted
    errors: dict[str, int] = field(default_factory=dict)  # exception class name -> count
    results: list[Any] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else float("inf")

    def pct_ms(self, p: float) -> float:
        return percentile(self.latencies, p) * 1e3


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (p in 0..100)."""
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def closed_loop(
    call: Callable[[Any], Awaitable[Any]], items: Sequence[Any], concurrency: int
) -> Run:
    """Run `call(item)` for every item with `concurrency` workers, each issuing its next
    call as soon as the previous one returns; time every call."""
    queue = iter(items)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    results: list[Any] = []

    async def worker() -> None:
        for item in queue:
            started = time.perf_counter()
            try:
                results.append(await call(item))
            except Exception as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Run(len(items), elapsed, latencies, errors, results)


async def all_at_once(call: Callable[[Any], Awaitable[Any]], items: Sequence[Any]) -> Run:
    """Start `call(item)` for every item at the same moment (asyncio.gather); time each."""
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def one(item: Any) -> None:
        started = time.perf_counter()
        try:
            await call(item)
        except Exception as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(item) for item in items))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Run(len(items), elapsed, latencies, errors)


def cpu_seconds() -> float:
    """CPU time of this process so far (all threads)."""
    t = os.times()
    return t.user + t.system


ROOT = Path(__file__).resolve().parents[1]


class JsonLinesChild:
    """A child Python process (`python -m MODULE ARGS`) driven over JSON lines: one
    message per line on its stdin, one answer per line on its stdout."""

    name = "child"

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @staticmethod
    async def spawn(module: str, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, *args,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=1 << 22,
        )  # fmt: skip

    async def read(self) -> Any:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} process ended early")
        return json.loads(line)

    async def send(self, message: object) -> None:
        assert self.proc.stdin is not None
        text = message if isinstance(message, str) else json.dumps(message)
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def ask(self, message: object) -> Any:
        await self.send(message)
        return await self.read()
