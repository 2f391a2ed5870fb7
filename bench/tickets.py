"""Claims per second and latency of `TicketService.reserve`, on SQLite and PostgreSQL,
against the naive read-then-write claim measured in the same run.

    .venv/bin/python bench/tickets.py [--quick] [--no-postgres] [--profile]

Table 1 (speed): closed loop, every claim succeeds (capacity >= claims), distinct buyers,
at concurrency 1, 16 and 64; `paid` is `reserve` on a paid Space (a hold per buyer, its
checkout opened at once by a stub gateway), where the open-holds cap is counted and, on
PostgreSQL, each buyer's row locked. Table 2 (sell-out burst): many more claims than seats, all
fired at once with asyncio.gather, as a popular Space sees it: throughput, tickets issued
and how many seats were oversold. The baseline `naive` is the textbook claim: read
`sold`, check it in Python, then `UPDATE spaces SET sold = <read> + n` and insert the hold
and tickets in one write transaction — the same round trips as `reserve` (its SELECT
stands where `reserve` has the per-buyer upsert). `--profile` adds a per-phase breakdown
of one claim, the SQL statements it sends, and a cProfile of the claim loop.

SQLite runs on a temporary file; PostgreSQL on a temporary database that is dropped
afterwards (skipped with the reason when the server is not reachable). Prints figures;
never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench.common import (
    Run,
    Unavailable,
    all_at_once,
    close_cores,
    closed_loop,
    cpu_seconds,
    free_space,
    machine,
    new_core,
    person,
    postgres_database,
    scratch_dir,
    sqlite_database,
)
from bot.actors import Actor
from bot.core import Core
from bot.db import Database
from bot.errors import SoldOut
from bot.models import Hold, HoldStatus, Identity, Space, Ticket
from bot.models import Hold as _Hold
from bot.models import Ticket as _Ticket
from bot.ports import Checkout, TipTotals
from bot.services.claims import new_id, new_tickets

_INSERT_HOLD = sa.insert(_Hold)
_INSERT_TICKET = sa.insert(_Ticket)

TARGET_RATE = 1_500  # claims/s
TARGET_P99_MS = 50.0

_READ_SOLD = sa.text("SELECT sold, capacity FROM spaces WHERE id = :space_id")
_READ_TAKEN = sa.text("SELECT sold + held, capacity FROM spaces WHERE id = :space_id")
_WRITE_SOLD = sa.text("UPDATE spaces SET sold = :sold WHERE id = :space_id")


async def naive_reserve(core: Core, actor: Actor, space_id: int, quantity: int = 1) -> int:
    """The baseline: read-then-write. Correct alone, oversells under concurrency."""
    buyer = await core.identities.ensure(actor)
    space = await core.spaces.get_in(space_id, actor.community_id)
    assert buyer.id is not None and space.id is not None
    async with core.db.engine.connect() as conn:
        sold, capacity = (await conn.execute(_READ_SOLD, {"space_id": space_id})).one()
    if sold + quantity > capacity:
        raise SoldOut(f"Space #{space_id} is sold out.")
    now = core.clock.now()
    hold = Hold(
        id=new_id(),
        space_id=space.id,
        buyer_id=buyer.id,
        quantity=quantity,
        amount_minor=0,
        currency=space.currency,
        status=HoldStatus.CONFIRMED,
        expires_at=now + timedelta(minutes=30),
        created_at=now,
        resolved_at=now,
    )
    tickets = new_tickets(hold, now)
    async with core.db.write_conn() as conn:
        await conn.execute(_WRITE_SOLD, {"space_id": space_id, "sold": sold + quantity})
        await conn.execute(_INSERT_HOLD, [hold.model_dump()])
        await conn.execute(_INSERT_TICKET, [t.model_dump() for t in tickets])
    return quantity


async def _claim(impl: Callable[[Actor, int], Awaitable[Any]], space_id: int, actor: Actor) -> Any:
    return await impl(actor, space_id)


class InstantCheckout:
    """A payment gateway stub: every paid hold gets its checkout link at once."""

    test_mode = True

    async def ensure_can_sell(self, host: Identity, space_price_minor: int) -> None:
        return None

    async def start_checkout(
        self, *, hold: Hold, space: Space, buyer: Identity, email: str | None
    ) -> Checkout:
        return Checkout(url=f"https://pay.bench/{hold.id}", test_mode=True)

    async def refund(self, ticket: Ticket, *, reason: str) -> None:
        return None

    async def tips(self, space_id: int) -> TipTotals:
        return TipTotals()

    async def pay_link(self, hold: Hold) -> str | None:
        return f"https://pay.bench/{hold.id}"


def claimers(core: Core) -> dict[str, Callable[[Actor, int], Awaitable[Any]]]:
    return {
        "reserve": lambda actor, space_id: core.tickets.reserve(actor, space_id),
        "naive": lambda actor, space_id: naive_reserve(core, actor, space_id),
    }


async def counts(db: Database, space_id: int) -> tuple[int, int, int]:
    """(valid tickets, seats taken: sold + held, capacity) of a Space."""
    async with db.engine.connect() as conn:
        tickets = (
            await conn.execute(
                sa.text("SELECT count(*) FROM tickets WHERE space_id = :s AND status = 'valid'"),
                {"s": space_id},
            )
        ).scalar_one()
        taken, capacity = (await conn.execute(_READ_TAKEN, {"space_id": space_id})).one()
    return int(tickets), int(taken), int(capacity)


Backend = Callable[[Path], AbstractAsyncContextManager[Database]]


def backends(with_postgres: bool) -> list[tuple[str, Backend]]:
    out: list[tuple[str, Backend]] = [("sqlite", lambda d: sqlite_database(d))]
    if with_postgres:
        out.append(("postgres", lambda d: postgres_database(pool_size=20)))
    return out


async def speed_table(
    name: str, db: Database, data_dir: Path, claims: int, levels: list[int]
) -> None:
    core = new_core(db, data_dir)
    core.use_payments(InstantCheckout())
    impls = claimers(core)
    paid = impls["reserve"]
    # warm up: the statement caches, the pool, the prepared statements
    warm = await free_space(core, capacity=50, title="warm-up")
    assert warm.id is not None
    for impl in impls.values():
        for i in range(20):
            await impl(person(f"warm-{id(impl)}-{i}"), warm.id)
    for level in levels:
        for impl_name, impl in [*impls.items(), ("paid", paid)]:
            title = f"{impl_name}-{level}"
            price = 500 if impl_name == "paid" else 0
            space = await free_space(core, capacity=claims, title=title, price_minor=price)
            space_id = space.id
            assert space_id is not None
            buyers = [person(f"{impl_name}-{level}-{i}") for i in range(claims)]
            cpu0 = cpu_seconds()
            run = await closed_loop(functools.partial(_claim, impl, space_id), buyers, level)
            cpu = cpu_seconds() - cpu0
            tickets, sold, _ = await counts(db, space_id)
            print(_speed_row(name, impl_name, level, run, cpu, tickets, sold))
    await core.bus.close()


def _speed_row(
    backend: str, impl: str, level: int, run: Run, cpu: float, tickets: int, sold: int
) -> str:
    errors = ",".join(f"{k}:{v}" for k, v in sorted(run.errors.items())) or "-"
    return (
        f"{backend:9} {impl:8} {level:>5} {run.calls:>7} {run.rate:>9,.0f} "
        f"{run.pct_ms(50):>8.1f} {run.pct_ms(99):>8.1f} {cpu / run.calls * 1e3:>9.2f} "
        f"{tickets:>8} {sold:>6}  {errors}"
    )


SPEED_HEADER = (
    f"{'backend':9} {'claim':8} {'conc':>5} {'claims':>7} {'claims/s':>9} "
    f"{'p50 ms':>8} {'p99 ms':>8} {'cpu ms/c':>9} {'tickets':>8} {'taken':>6}  errors"
)


async def burst_table(name: str, db: Database, data_dir: Path, capacity: int, claims: int) -> None:
    core = new_core(db, data_dir)
    for impl_name, impl in claimers(core).items():
        space = await free_space(core, capacity=capacity, title=f"burst-{impl_name}")
        space_id = space.id
        assert space_id is not None
        buyers = [person(f"burst-{impl_name}-{i}") for i in range(claims)]
        run = await all_at_once(functools.partial(_claim, impl, space_id), buyers)
        tickets, sold, cap = await counts(db, space_id)
        errs = ",".join(f"{k}:{v}" for k, v in sorted(run.errors.items())) or "-"
        print(
            f"{name:9} {impl_name:8} {claims:>7} {cap:>6} {run.rate:>9,.0f} "
            f"{run.pct_ms(50):>8.0f} {run.pct_ms(99):>8.0f} {tickets:>8} {sold:>6} "
            f"{max(0, tickets - cap):>9}  {errs}"
        )
    await core.bus.close()


BURST_HEADER = (
    f"{'backend':9} {'claim':8} {'claims':>7} {'seats':>6} {'claims/s':>9} "
    f"{'p50 ms':>8} {'p99 ms':>8} {'tickets':>8} {'taken':>6} {'OVERSOLD':>9}  errors"
)


IDLE = "idle: waiting in epoll (for the database, or aiosqlite's threads)"


_BUILTINS = {
    "socket": "socket send/recv (PostgreSQL wire; aiosqlite's wake-up pipe)",
    "SimpleQueue": "hand-off to aiosqlite's thread (GIL switch)",
    "greenlet": "greenlet switches (SQLAlchemy's async bridge)",
}


def by_package(stats: pstats.Stats) -> dict[str, float]:
    """Own time summed per package (site-packages name, stagepass file, stdlib, builtins)."""
    groups: dict[str, float] = {}
    for (path, _line, func), row in stats.stats.items():  # type: ignore[attr-defined]  # typeshed leaves pstats.Stats.stats out
        own = row[2]
        if "site-packages/" in path:
            key = path.split("site-packages/")[1].split("/")[0]
        elif path == "~":
            key = (
                IDLE
                if "epoll" in func
                else _BUILTINS.get(next((k for k in _BUILTINS if k in func), ""), "other builtins")
            )
        elif "/bench/" in path:
            key = "bench harness"
        elif "/bot/" in path:
            key = "stagepass bot/"
        else:
            key = "python stdlib (asyncio, ...)"
        groups[key] = groups.get(key, 0.0) + own
    return groups


async def profile_claims(name: str, db: Database, data_dir: Path, claims: int) -> None:
    """Where one claim's time goes: phases, SQL statements, then cProfile."""
    core = new_core(db, data_dir)
    space = await free_space(core, capacity=claims * 3, title="profile")
    assert space.id is not None
    for i in range(20):  # warm-up
        await core.tickets.reserve(person(f"pw-{i}"), space.id)

    phases: dict[str, float] = {}

    def timed(label: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                phases[label] = phases.get(label, 0.0) + time.perf_counter() - started

        return wrapper

    statements: dict[str, int] = {}
    checkouts = [0]

    def count_sql(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        key = " ".join(statement.split())[:64]
        statements[key] = statements.get(key, 0) + 1

    def count_checkout(*_: Any) -> None:
        checkouts[0] += 1

    tickets = core.tickets
    tickets.claims.claim = timed(  # type: ignore[method-assign,assignment]  # timed for this run only
        "claims.claim (queued, batched write tx)", tickets.claims.claim
    )
    engine = db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", count_sql)
    sa.event.listen(engine, "checkout", count_checkout)
    started = time.perf_counter()
    for i in range(claims):
        await tickets.reserve(person(f"p-{i}"), space.id)
    total = time.perf_counter() - started
    sa.event.remove(engine, "before_cursor_execute", count_sql)
    sa.event.remove(engine, "checkout", count_checkout)
    print(f"\n{name}: one claim at concurrency 1, mean of {claims}: {total / claims * 1e3:.2f} ms")
    for label, spent in phases.items():
        print(f"  {spent / claims * 1e3:6.2f} ms  {spent / total:4.0%}  {label}")
    rest = total - sum(phases.values())
    print(f"  {rest / claims * 1e3:6.2f} ms  {rest / total:4.0%}  rest (token signing, events)")
    print(
        f"  per claim: {checkouts[0] / claims:.1f} pool checkouts, "
        f"{sum(statements.values()) / claims:.1f} SQL statements (besides the BEGIN/COMMIT/"
        "ROLLBACK the driver sends, and on PostgreSQL a pre-ping per checkout):"
    )
    for stmt, n in sorted(statements.items(), key=lambda kv: -kv[1]):
        print(f"    {n / claims:4.1f}  {stmt}")

    level = 16
    profiler = cProfile.Profile()
    cpu0 = cpu_seconds()
    profiler.enable()
    space_id = space.id
    assert space_id is not None
    run = await closed_loop(
        lambda a: tickets.reserve(a, space_id), [person(f"q-{i}") for i in range(claims)], level
    )
    profiler.disable()
    cpu = cpu_seconds() - cpu0
    print(
        f"  cProfile, {claims} claims at concurrency {level} ({run.rate:,.0f}/s under the "
        f"profiler; {cpu / claims * 1e3:.1f} ms CPU per claim, all threads): own time of the "
        "event-loop thread by package"
    )
    groups = by_package(pstats.Stats(profiler))
    busy = sum(v for k, v in groups.items() if k != IDLE)
    for label, spent in sorted(groups.items(), key=lambda kv: -kv[1])[:10]:
        share = "" if label == IDLE else f"{spent / busy:4.0%}"
        print(f"    {spent / claims * 1e3:6.3f} ms {share:>4}  {label}")
    await core.bus.close()


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer claims, for a smoke run")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--profile", action="store_true", help="add a breakdown and cProfile")
    args = parser.parse_args(argv)
    claims = 200 if args.quick else 1_000
    burst_seats, burst_claims = (50, 500) if args.quick else (200, 2_000)
    levels = [1, 16, 64]

    print(f"bench/tickets.py — {machine()}")
    print(
        f"targets: >= {TARGET_RATE:,} claims/s and p99 < {TARGET_P99_MS:.0f} ms "
        "(figures only; nothing passes or fails)"
    )
    results: list[tuple[str, Backend]] = backends(not args.no_postgres)
    async with scratch_dir() as root:
        print(
            f"\n1. speed: {claims} claims per row, all succeed, closed loop "
            "(cpu = this process, all threads)"
        )
        print(SPEED_HEADER)
        usable: list[tuple[str, Backend]] = []
        for name, backend in results:
            data = root / name
            try:
                async with backend(data) as db:
                    await speed_table(name, db, data, claims, levels)
                    await close_cores()
                usable.append((name, backend))
            except Unavailable as why:
                print(f"{name:9} SKIPPED: {why}")
        print(
            f"\n2. sell-out burst: {burst_claims} claims for {burst_seats} seats, "
            "all at once (asyncio.gather), distinct buyers"
        )
        print(BURST_HEADER)
        for name, backend in usable:
            data = root / f"{name}-burst"
            async with backend(data) as db:
                await burst_table(name, db, data, burst_seats, burst_claims)
                await close_cores()
        if args.profile:
            for name, backend in usable:
                data = root / f"{name}-profile"
                async with backend(data) as db:
                    await profile_claims(name, db, data, 100 if args.quick else 300)
                    await close_cores()


if __name__ == "__main__":
    asyncio.run(main())
