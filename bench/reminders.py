"""How late are reminders when 10,000 fall due within the same minute?

Builds a fresh database (SQLite in a temporary directory, or --database-url), N Spaces
with one subscribed listener each, one APScheduler reminder job per Space due at a
random second of one minute, then runs the real scheduler (owner election, bridged
APScheduler, delivery transactions, the catch-up sweep) on the system clock and records,
for every `ReminderDue` event, how long after its due time it was published.

    .venv/bin/python bench/reminders.py [--reminders 10000] [--same-second]

Prints lateness p50/p99/max, how many were delivered (and that none was delivered
twice), and memory: the process's resident set before and at its peak. Target: p99 < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import SystemClock
from bot.core import Core
from bot.events import ReminderDue
from bot.models import Community, Identity, Reminder, Space
from bot.settings import load_settings
from scheduler.lifecycle import Step
from scheduler.models import ReminderDelivery
from scheduler.service import Scheduling

OFFSET = 30


def rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def populate(core: Core, count: int, starts: list[datetime]) -> None:
    now = core.clock.now()
    async with core.db.write_conn() as conn:
        await conn.execute(
            sa.insert(Community),
            [
                {
                    "id": "shell:bench",
                    "platform": "shell",
                    "external_id": "bench",
                    "name": "Bench",
                    "created_at": now,
                }
            ],
        )
        await conn.execute(
            sa.insert(Identity),
            [
                {
                    "id": i + 1,
                    "platform": "shell",
                    "community_id": "shell:bench",
                    "user_id": f"u{i}",
                    "display_name": f"u{i}",
                    "tz": "Europe/Berlin",
                    "created_at": now,
                }
                for i in range(count + 1)
            ],
        )
        await conn.execute(
            sa.insert(Space),
            [
                {
                    "id": i + 1,
                    "community_id": "shell:bench",
                    "host_id": count + 1,
                    "title": f"Space {i}",
                    "description": "",
                    "starts_at": starts[i],
                    "duration_minutes": 30,
                    "status": "scheduled",
                    "price_minor": 0,
                    "currency": "usd",
                    "capacity": 10,
                    "sold": 0,
                    "per_buyer_limit": 1,
                    "manual_start": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(count)
            ],
        )
        await conn.execute(
            sa.insert(Reminder),
            [{"space_id": i + 1, "identity_id": i + 1, "created_at": now} for i in range(count)],
        )


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="stagepass-bench-"))
    settings = load_settings(
        data_dir=tmp,
        database_url=args.database_url,
        reminder_offsets=str(OFFSET),
        host_reminder_offsets="",
        public_url="http://bench.test",
        scheduler_sweep_seconds=args.sweep,
        _env_file=None,
    )
    core = Core.build(settings, clock=SystemClock())
    await core.db.migrate()
    count = args.reminders
    scheduling = Scheduling(core)
    await scheduling.open()

    # schedule a sample to learn how long adding 10,000 jobs takes, then place the minute
    t0 = time.perf_counter()
    probes = 200
    for i in range(probes):
        await scheduling._put(f"probe:{i}", 0, Step("remind:0", datetime(2099, 1, 1, tzinfo=UTC)))
    per_job = (time.perf_counter() - t0) / probes
    for i in range(probes):
        await scheduling.aps.call(scheduling.aps.remove_job, f"probe:{i}")
    lead = per_job * count * 2 + 10
    base = datetime.now(UTC) + timedelta(seconds=lead)
    base = base.replace(microsecond=0)
    rng = random.Random(7)
    dues = [
        base if args.same_second else base + timedelta(seconds=rng.uniform(0, 60))
        for _ in range(count)
    ]
    starts = [d + timedelta(minutes=OFFSET) for d in dues]
    await populate(core, count, starts)
    t0 = time.perf_counter()
    for i, due in enumerate(dues):
        await scheduling._put(
            scheduling.job_id(i + 1, f"remind:{OFFSET}"), i + 1, Step(f"remind:{OFFSET}", due)
        )
    setup = time.perf_counter() - t0
    slack = (base - datetime.now(UTC)).total_seconds()
    print(
        f"{count:,} reminder jobs stored in {setup:.1f} s ({setup / count * 1e3:.2f} ms each); "
        f"the minute starts in {slack:.1f} s"
    )
    if slack < 0:
        print("setup overran the due minute: lateness below includes it")

    lateness: list[float] = []
    done = asyncio.Event()

    async def on_due(event: ReminderDue) -> None:
        due = starts[event.space_id - 1] - timedelta(minutes=event.minutes_before)
        lateness.append((datetime.now(UTC) - due).total_seconds())
        if len(lateness) >= count:
            done.set()

    core.bus.subscribe(ReminderDue, on_due)
    rss_before = rss_kib()
    stop = asyncio.Event()
    runner = asyncio.create_task(scheduling.run(stop), name="scheduler")
    deadline = (base - datetime.now(UTC)).total_seconds() + 60 + args.wait
    try:
        await asyncio.wait_for(done.wait(), timeout=deadline)
    except TimeoutError:
        print(f"timed out: {len(lateness):,} of {count:,} delivered")
    stop.set()
    await runner
    await core.bus.drain()
    async with core.db.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(ReminderDelivery)
        rows = (await conn.execute(query)).scalar_one()
    await core.close()

    lateness.sort()

    def p(q: float) -> float:
        return lateness[min(len(lateness) - 1, int(q * len(lateness)))]

    print(
        f"delivered {len(lateness):,} reminder events, {rows:,} delivery rows "
        f"(duplicates: {len(lateness) - rows})"
    )
    if lateness:
        print(
            f"lateness p50 {p(0.50) * 1e3:.0f} ms  p99 {p(0.99) * 1e3:.0f} ms  "
            f"max {lateness[-1] * 1e3:.0f} ms  (mean {statistics.fmean(lateness) * 1e3:.0f} ms)"
        )
    print(
        f"memory: RSS {rss_before / 1024:.0f} MiB before running, "
        f"peak {rss_kib('VmHWM') / 1024:.0f} MiB "
        f"(+{(rss_kib('VmHWM') - rss_before) / 1024:.0f} MiB)"
    )
    print(f"target p99 < 1 s: {'met' if lateness and p(0.99) < 1 else 'NOT met'}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument(
        "--same-second",
        action="store_true",
        help="all due at the same second instead of spread over the minute",
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--sweep", type=int, default=30, help="catch-up sweep interval, s")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait after the minute")
    asyncio.run(main(parser.parse_args()))
