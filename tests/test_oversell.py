"""No oversell: 10,000 concurrent claims for a free Space of 1,000 seats.

Every claim goes through `TicketService.reserve` (asyncio.gather, all at once): mostly
distinct buyers, plus buyers who claim several times and with quantity > 1 against a
per-buyer limit of 4 (tests/oversell_worker.py `plan`). On SQLite, on PostgreSQL with a
pool of connections, and on PostgreSQL from two OS processes at the same moment.

After the burst the database must show exactly 1,000 valid tickets, no buyer above the
limit, `spaces.sold == valid tickets` (a free Space holds nothing), a quota row per buyer
that matches their tickets, and exactly the tickets the callers were told about; every
failed claim must have raised SoldOut or LimitExceeded.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.clock import ManualClock
from bot.core import Core
from bot.db import Database
from bot.services.spaces import SpaceDraft
from bot.services.tickets import Reservation
from bot.settings import Settings
from tests.oversell_worker import (
    COMMUNITY,
    PAIRS,
    PER_BUYER_LIMIT,
    SHARED,
    TWO_PROCESS_BATCH,
    Outcome,
    buyer,
    fire,
    plan,
    rule_breaks,
    summarise,
)

CAPACITY = 1_000
CLAIMS = 10_000
NO_RATE_LIMITS = {"claims_per_minute_person": 0, "claims_per_minute_community": 0}
ROOT = Path(__file__).resolve().parents[1]


async def open_space(settings: Settings, db: Database) -> tuple[Core, int]:
    # capacity is the subject here, not claim rates (tests/test_hoarding.py has those)
    settings = settings.model_copy(update=NO_RATE_LIMITS)
    core = Core.build(settings, db=db, clock=ManualClock())
    space = await core.spaces.create(
        buyer("host"),
        SpaceDraft(
            title="Sell-out",
            starts_at=core.clock.now() + timedelta(days=2),
            capacity=CAPACITY,
            per_buyer_limit=PER_BUYER_LIMIT,
        ),
    )
    assert space.id is not None and space.per_buyer_limit == PER_BUYER_LIMIT
    return core, space.id


@dataclass
class Ledger:
    """What the database says about one Space after the burst."""

    capacity: int
    sold: int
    valid_tickets: int
    active_hold_seats: int
    confirmed_holds: int
    holds_not_matching_tickets: int
    tickets_per_buyer: dict[str, int]
    quota_per_buyer: dict[str, int]


async def ledger(db: Database, space_id: int) -> Ledger:
    params = {"s": space_id}
    async with db.engine.connect() as conn:

        async def rows(sql: str) -> list[Any]:
            return list(await conn.execute(sa.text(sql), params))

        [(capacity, sold)] = await rows("SELECT capacity, sold FROM spaces WHERE id = :s")
        per_buyer = dict(
            await rows(
                "SELECT i.user_id, count(*) FROM tickets t JOIN identities i ON i.id = t.holder_id"
                " WHERE t.space_id = :s AND t.status = 'valid' GROUP BY i.user_id"
            )
        )
        quota = dict(
            await rows(
                "SELECT i.user_id, q.taken FROM buyer_quotas q"
                " JOIN identities i ON i.id = q.buyer_id WHERE q.space_id = :s AND q.taken > 0"
            )
        )
        holds = {
            status: (int(n), int(seats or 0))
            for status, n, seats in await rows(
                "SELECT status, count(*), sum(quantity) FROM holds WHERE space_id = :s"
                " GROUP BY status"
            )
        }
        [(mismatched,)] = await rows(
            "SELECT count(*) FROM holds h WHERE h.space_id = :s AND h.status = 'confirmed'"
            " AND h.quantity <> (SELECT count(*) FROM tickets t WHERE t.hold_id = h.id)"
        )
    return Ledger(
        capacity=capacity,
        sold=sold,
        valid_tickets=sum(per_buyer.values()),
        active_hold_seats=holds.get("active", (0, 0))[1],
        confirmed_holds=holds.get("confirmed", (0, 0))[0],
        holds_not_matching_tickets=mismatched,
        tickets_per_buyer={k: int(v) for k, v in per_buyer.items()},
        quota_per_buyer={k: int(v) for k, v in quota.items()},
    )


def assert_no_oversell(book: Ledger, summaries: list[dict[str, Any]]) -> None:
    outcomes: Counter[str] = Counter()
    told: Counter[str] = Counter()
    for summary in summaries:
        outcomes.update(summary["outcomes"])
        told.update(summary["per_buyer"])
        assert not summary["unexpected"], (
            f"claims failed with something other than SoldOut/LimitExceeded: "
            f"{summary['unexpected']} (outcomes {summary['outcomes']})"
        )
    # BuyerLimitReached: the per-buyer LimitExceeded (it names the tickets already held)
    assert set(outcomes) <= {"ok", "SoldOut", "LimitExceeded", "BuyerLimitReached"}, outcomes
    limited = outcomes["LimitExceeded"] + outcomes["BuyerLimitReached"]
    assert outcomes["SoldOut"] > 0 and limited > 0, outcomes

    assert book.valid_tickets == CAPACITY, f"{book.valid_tickets} tickets for {CAPACITY} seats"
    assert book.sold == book.valid_tickets + book.active_hold_seats == book.capacity, book.sold
    over = {user: n for user, n in book.tickets_per_buyer.items() if n > PER_BUYER_LIMIT}
    assert not over, f"buyers above the limit of {PER_BUYER_LIMIT}: {over}"
    # the quota rows agree with the tickets (free Space: no active holds)
    assert book.quota_per_buyer == book.tickets_per_buyer
    # every ticket was reported to the caller who won it, and nothing else was
    assert dict(told) == book.tickets_per_buyer
    assert book.confirmed_holds == outcomes["ok"]
    assert book.holds_not_matching_tickets == 0


async def check_tokens(core: Core, space_id: int, results: list[Outcome]) -> None:
    """The tokens handed out admit their holders (a sample)."""
    won = [r for r in results if isinstance(r, Reservation)]
    for reservation in won[:: max(1, len(won) // 20)]:
        for token in reservation.tokens:
            admission = await core.tickets.verify_token(token, space_id=space_id)
            assert admission.ticket is not None and admission.ticket.hold_id == reservation.hold.id


async def burst_in_one_process(settings: Settings, db: Database) -> None:
    core, space_id = await open_space(settings, db)
    try:
        claims = plan("p", CLAIMS, pairs=100, shared=100)
        results = await fire(core, space_id, claims)
        assert not rule_breaks(claims, results), rule_breaks(claims, results)[:5]
        assert_no_oversell(await ledger(db, space_id), [summarise(claims, results)])
        await check_tokens(core, space_id, results)
    finally:
        await core.bus.close()


@pytest.mark.slow
async def test_no_oversell_sqlite(settings: Settings, sqlite_db: Database) -> None:
    await burst_in_one_process(settings, sqlite_db)


@pytest.mark.slow
@pytest.mark.postgres
async def test_no_oversell_postgres_pool(settings: Settings, pg_db: Database) -> None:
    await burst_in_one_process(settings, pg_db)


@pytest.mark.slow
@pytest.mark.postgres
async def test_no_oversell_postgres_two_processes(
    settings: Settings, pg_db: Database, tmp_path: Path
) -> None:
    core, space_id = await open_space(settings, pg_db)
    core.tickets.claims.commits.max_batch = TWO_PROCESS_BATCH
    half = CLAIMS // 2
    with (tmp_path / "worker.stderr").open("wb") as stderr:
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.oversell_worker",
            pg_db.url,
            str(space_id),
            str(half),
            "w",
            COMMUNITY,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    assert worker.stdin is not None and worker.stdout is not None
    try:
        ready = await asyncio.wait_for(worker.stdout.readline(), timeout=60)
        assert ready.strip() == b"ready", (ready, (tmp_path / "worker.stderr").read_text())
        claims = plan("m", half, pairs=PAIRS, shared=SHARED)
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()
        started = time.time()
        results = await fire(core, space_id, claims)
        finished = time.time()
        out, _ = await asyncio.wait_for(worker.communicate(), timeout=150)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        await core.bus.close()
    assert worker.returncode == 0, (tmp_path / "worker.stderr").read_text()[-3000:]
    theirs = json.loads(out.decode().strip().splitlines()[-1])
    ours = summarise(claims, results)
    assert not rule_breaks(claims, results), rule_breaks(claims, results)[:5]
    assert not theirs["rule_breaks"], theirs["rule_breaks"]
    # both processes really claimed at the same time, and both won seats
    assert theirs["started"] < finished and started < theirs["finished"], (started, theirs)
    assert ours["tickets"] > 0 and theirs["tickets"] > 0, (ours["tickets"], theirs["tickets"])
    assert_no_oversell(await ledger(pg_db, space_id), [ours, theirs])
    await check_tokens(core, space_id, results)
