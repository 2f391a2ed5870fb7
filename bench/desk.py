"""What the host's desk costs: the host of a Space with N tickets opens
`/spaces/{id}/manage` (token check, rights re-read, every row and total, the SVG chart,
the HTML), through the real HTTP app in process, on SQLite and PostgreSQL.

    .venv/bin/python bench/desk.py [--quick] [--no-postgres]

The Space's holders, holds and tips are written straight into the database (the bench
measures reading them, not selling them): 10% refunded, 2% pending holds, 5% tipped.
Prints the median and p95 milliseconds per size; target < 300 ms for 1,000 tickets.
Never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from prometheus_client import CollectorRegistry

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    Unavailable,
    close_cores,
    free_space,
    machine,
    new_core,
    percentile,
    person,
    postgres_database,
    scratch_dir,
    sqlite_database,
)
from billing.models import BillingTip, TipStatus
from bot.core import Core
from bot.db import Database
from bot.http import create_app
from bot.models import Hold, HoldStatus, Identity, Platform, Ticket, TicketStatus
from bot.wording import desk_link


async def _space_with(core: Core, tickets: int) -> int:
    """A paid-looking Space with `tickets` holders (written directly) and its host."""
    space = await free_space(core, capacity=tickets + 10, title=f"Desk of {tickets}")
    assert space.id is not None
    host = await core.identities.ensure(person("host"))
    now = core.clock.now()
    async with core.db.session() as session:
        people = [
            Identity(
                platform=Platform.SHELL,
                community_id=host.community_id,
                user_id=f"p{i}",
                display_name=f"Listener {i}",
                created_at=now,
            )
            for i in range(tickets)
        ]
        session.add_all(people)
        await session.flush()
        for i, who in enumerate(people):
            assert who.id is not None
            at = now - timedelta(minutes=tickets - i)
            pending = i % 50 == 0
            session.add(
                Hold(
                    id=f"h{i}",
                    space_id=space.id,
                    buyer_id=who.id,
                    quantity=1,
                    amount_minor=500,
                    currency="usd",
                    status=HoldStatus.ACTIVE if pending else HoldStatus.CONFIRMED,
                    expires_at=now + timedelta(minutes=30),
                    created_at=at,
                )
            )
            if pending:
                continue
            refunded = i % 10 == 0
            session.add(
                Ticket(
                    id=f"t{i}",
                    space_id=space.id,
                    holder_id=who.id,
                    hold_id=f"h{i}",
                    status=TicketStatus.REFUNDED if refunded else TicketStatus.VALID,
                    price_minor=500,
                    fee_minor=50,
                    currency="usd",
                    issued_at=at,
                    closed_at=at + timedelta(minutes=5) if refunded else None,
                )
            )
            if i % 20 == 1:
                session.add(
                    BillingTip(
                        id=f"tip{i}",
                        tipper_id=who.id,
                        host_id=host.id or 0,
                        space_id=space.id,
                        amount_minor=300,
                        currency="usd",
                        fee_minor=30,
                        status=TipStatus.PAID,
                        created_at=at,
                        paid_at=at,
                    )
                )
        await session.commit()
    return space.id


async def measure(db: Database, directory: Path, size: int, repeats: int) -> tuple[float, float]:
    core = new_core(db, directory)
    try:
        space_id = await _space_with(core, size)
        token = await core.host_desk.link_token(person("host"), space_id)
        url = urlsplit(desk_link("http://bench", space_id, token))
        app = create_app(core, api_token="bench", metrics_route=False, registry=CollectorRegistry())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        ) as client:
            times = []
            for _ in range(repeats + 2):
                started = time.perf_counter()
                page = await client.get(f"{url.path}?{url.query}")
                times.append((time.perf_counter() - started) * 1000)
                if page.status_code != 200 or f'id="row-t{size - 1}"' not in page.text:
                    raise RuntimeError(f"the desk did not open: {page.status_code}")
        times = sorted(times[2:])  # the first two warm the caches
    finally:
        await close_cores()
    return statistics.median(times), percentile(times, 95)


async def main(quick: bool, postgres: bool) -> None:
    sizes = (50,) if quick else (100, 1000)
    repeats = 5 if quick else 30
    print(f"host's desk, GET /spaces/ID/manage in process — {machine()}")
    print(f"{'database':>10} {'tickets':>8} {'p50 ms':>8} {'p95 ms':>8}")
    async with scratch_dir() as directory:
        backends: list[tuple[str, Callable[[int], AbstractAsyncContextManager[Database]]]] = [
            ("sqlite", lambda size: sqlite_database(directory, f"desk{size}.db"))
        ]
        if postgres:
            backends.append(("postgres", lambda size: postgres_database()))
        for name, open_db in backends:
            for size in sizes:
                try:
                    async with open_db(size) as db:
                        p50, p95 = await measure(db, directory, size, repeats)
                except Unavailable as exc:
                    print(f"{name:>10} skipped: {exc}")
                    break
                print(f"{name:>10} {size:>8} {p50:>8.1f} {p95:>8.1f}")
    print("target: under 300 ms for 1,000 tickets")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small Space, few repeats")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    asyncio.run(main(args.quick, not args.no_postgres))
