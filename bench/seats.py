"""What the one stage-seat rule costs: `StageService.seat` (one person, what the room's
gate and the Discord stage sync ask) and `StageService.state` (a whole stage listing,
the seat rule for everyone on it in three queries, whatever their number), on SQLite.
And the Discord adapter's periodic re-check of everyone on a live Stage: `seat_of` for
each member (as it was) against `seats_of` for all of them at once (as it is).

    .venv/bin/python bench/seats.py [--quick]

For each stage size N (people with a raised hand, a tenth of them speakers) it prints the
median and p95 milliseconds of `seat` for one listener and of `state` for the whole stage,
then the median milliseconds and SQL statements of one re-check of all N, both ways.
Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    close_cores,
    free_space,
    machine,
    new_core,
    percentile,
    person,
    scratch_dir,
    sqlite_database,
)
from bot.actors import UserRef
from bot.clock import ManualClock
from bot.core import Core


async def _stage_of(core: Core, size: int) -> tuple[int, int]:
    """A live Space with `size` ticket holders with a hand up, every tenth a speaker;
    returns (space id, one listener's identity id)."""
    space = await free_space(core, capacity=size + 1, title=f"Stage of {size}")
    assert space.id is not None
    clock = core.clock
    assert isinstance(clock, ManualClock)
    for i in range(size):
        if i % 20 == 19:
            clock.advance(timedelta(minutes=1))  # under the community's claim rate limit
        await core.tickets.reserve(person(f"p{i}"), space.id)
    await core.spaces.start(person("host"), space.id, confirm=True)
    core.settings.max_speakers = max(core.settings.max_speakers, size)
    for i in range(size):
        await core.stage.raise_hand(person(f"p{i}"), space.id)
        if i % 10 == 0:
            await core.stage.promote(person("host"), space.id, UserRef(f"p{i}", f"p{i}"))
    listener = await core.identities.ensure(person(f"p{size - 1}"))
    assert listener.id is not None
    return space.id, listener.id


async def _timed(call: Callable[[], Awaitable[object]], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        out.append((time.perf_counter() - started) * 1000)
    return sorted(out)


def _statements(core: Core, call: Callable[[], Awaitable[object]]) -> Awaitable[int]:
    """How many SQL statements one `call` runs."""
    engine = core.db.engine.sync_engine
    count = 0

    def counted(*args: object) -> None:
        nonlocal count
        count += 1

    async def run() -> int:
        sa.event.listen(engine, "before_cursor_execute", counted)
        try:
            await call()
        finally:
            sa.event.remove(engine, "before_cursor_execute", counted)
        return count

    return run()


async def measure(directory: Path, size: int, repeats: int) -> tuple[str, str]:
    """Two table rows: the seat of one listener and the listing of a stage of `size`; a
    re-check of everyone on it, member by member and at once."""
    async with sqlite_database(directory, f"seats{size}.db") as db:
        core = new_core(db, directory)
        try:
            space_id, listener_id = await _stage_of(core, size)
            space = await core.spaces.get(space_id)
            listener = await core.identities.get(listener_id)
            seat = await _timed(lambda: core.stage.seat(space, listener), repeats)
            state = await _timed(lambda: core.stage.state(space_id), repeats)
            actors = [person(f"p{i}") for i in range(size)]

            async def one_by_one() -> None:
                for actor in actors:
                    await core.stage.seat_of(actor, space)

            async def at_once() -> None:
                await core.stage.seats_of(actors, space)

            rounds = max(3, repeats // 10)
            each = await _timed(one_by_one, rounds)
            batched = await _timed(at_once, rounds)
            each_sql = await _statements(core, one_by_one)
            batched_sql = await _statements(core, at_once)
        finally:
            await close_cores()
    return (
        f"{size:>10} {statistics.median(seat):>14.2f} {percentile(seat, 95):>7.2f} "
        f"{statistics.median(state):>15.2f} {percentile(state, 95):>7.2f}",
        f"{size:>10} {statistics.median(each):>16.2f} {each_sql:>6} "
        f"{statistics.median(batched):>16.2f} {batched_sql:>6}",
    )


async def main(quick: bool) -> None:
    sizes = (10, 50) if quick else (10, 100, 1000)
    repeats = 20 if quick else 200
    print(f"stage-seat rule on SQLite — {machine()}")
    print(f"{'stage size':>10} {'seat() ms p50':>14} {'p95':>7} {'state() ms p50':>15} {'p95':>7}")
    rechecks = []
    async with scratch_dir() as directory:
        for size in sizes:
            row, recheck = await measure(directory, size, repeats)
            print(row)
            rechecks.append(recheck)
    print("seat rule: one person in 3 queries; a listing of N people in 1 + 3 queries")
    print()
    print("re-check of everyone on a live Stage (the Discord adapter, every 10 s)")
    print(f"{'stage size':>10} {'seat_of each ms':>16} {'SQL':>6} {'seats_of ms':>16} {'SQL':>6}")
    for row in rechecks:
        print(row)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small stages, few repeats")
    asyncio.run(main(parser.parse_args().quick))
