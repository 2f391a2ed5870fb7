"""Group commit (`bot.batching.GroupCommit`) and the confirm batcher built on it.

A group commit must batch what arrives together, answer every request with its own outcome,
retry a batch that lost a lock to another process, and let one bad request fail alone.
The confirm batcher must issue exactly one set of tickets per hold however its payments
are batched, and keep a gateway's records in the same transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.actors import Actor
from bot.batching import GroupCommit
from bot.clock import ManualClock
from bot.core import Core
from bot.errors import Conflict, NotFound, SoldOut
from bot.events import TicketIssued
from bot.models import HoldStatus, Platform, TicketStatus
from bot.ports import Confirmation, Payment
from bot.services.spaces import SpaceDraft
from tests.fakes.payments import StubPayments
from tests.waiting import eventually

# --- group commit ------------------------------------------------------------------


async def test_requests_that_arrive_together_are_decided_together() -> None:
    seen: list[list[int]] = []

    async def decide(batch: list[int]) -> Sequence[int | Exception]:
        seen.append(batch)
        await asyncio.sleep(0)  # give the others time to queue up
        return [n * 10 for n in batch]

    commits: GroupCommit[int, int] = GroupCommit("test", decide)
    results = await asyncio.gather(*(commits.submit(n) for n in range(100)))
    assert results == [n * 10 for n in range(100)]
    assert sorted(n for batch in seen for n in batch) == list(range(100))
    assert len(seen) < 10, [len(b) for b in seen]  # batched, not one by one
    assert commits.requests == 100
    await commits.close()


async def test_each_request_gets_its_own_exception() -> None:
    async def decide(batch: list[int]) -> Sequence[int | Exception]:
        return [NotFound(f"no {n}") if n % 2 else n for n in batch]

    commits: GroupCommit[int, int] = GroupCommit("test", decide)
    results = await asyncio.gather(*(commits.submit(n) for n in range(6)), return_exceptions=True)
    assert [r if isinstance(r, int) else str(r) for r in results] == [
        0, "no 1", 2, "no 3", 4, "no 5"
    ]  # fmt: skip
    await commits.close()


async def test_a_failing_batch_is_decided_again_one_by_one() -> None:
    calls: list[list[int]] = []

    async def decide(batch: list[int]) -> Sequence[int | Exception]:
        calls.append(batch)
        if 13 in batch:
            raise RuntimeError("13 breaks whatever batch it is in")
        return batch

    commits: GroupCommit[int, int] = GroupCommit("test", decide)
    results = await asyncio.gather(
        *(commits.submit(n) for n in (11, 12, 13, 14)), return_exceptions=True
    )
    assert results[:2] == [11, 12] and results[3] == 14
    assert isinstance(results[2], RuntimeError)
    assert [11, 12, 13, 14] in calls and [13] in calls and [14] in calls
    await commits.close()


async def test_a_batch_that_lost_a_lock_is_retried_whole() -> None:
    class Deadlock(Exception):
        pgcode = "40P01"

    attempts: list[list[int]] = []

    async def decide(batch: list[int]) -> Sequence[int | Exception]:
        attempts.append(batch)
        if len(attempts) == 1:
            raise sa.exc.DBAPIError("UPDATE ...", {}, Deadlock("deadlock detected"))
        return batch

    commits: GroupCommit[int, int] = GroupCommit("test", decide)
    assert list(await asyncio.gather(commits.submit(1), commits.submit(2))) == [1, 2]
    assert attempts == [[1, 2], [1, 2]]
    await commits.close()


async def test_closing_fails_what_still_waits_and_drops_cancelled_callers() -> None:
    release = asyncio.Event()
    decided: list[list[int]] = []

    async def decide(batch: list[int]) -> Sequence[int | Exception]:
        decided.append(batch)
        await release.wait()
        return batch

    commits: GroupCommit[int, int] = GroupCommit("test", decide)
    first = asyncio.create_task(commits.submit(1))
    await eventually(lambda: decided == [[1]], what="1 being decided")
    gone = asyncio.create_task(commits.submit(2))
    waiting = asyncio.create_task(commits.submit(3))
    await eventually(lambda: commits._queue.qsize() == 2, what="2 and 3 queued behind 1")
    gone.cancel()
    release.set()
    assert await first == 1 and await waiting == 3
    assert decided == [[1], [3]]  # the cancelled caller's request was never decided

    release.clear()
    stuck = asyncio.create_task(commits.submit(4))
    behind = asyncio.create_task(commits.submit(5))
    await eventually(lambda: len(decided) == 3, what="4 being decided")
    await commits.close()
    for task in (stuck, behind):  # the one being decided, and the one behind it
        with pytest.raises(Conflict, match="shutting down"):
            await task


# --- the confirm batcher ------------------------------------------------------------------


class Records:
    """A recorder that stores each payment's `record` once, like billing's event table."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.stored: list[object] = []
        self.settled: list[tuple[str, bool, bool]] = []
        self.refuse = refuse
        self.batches: list[int] = []

    async def admit(
        self, conn: AsyncConnection, payments: Sequence[Payment]
    ) -> list[Exception | None]:
        self.batches.append(len(payments))
        verdicts: list[Exception | None] = []
        for p in payments:
            if p.record in self.stored or p.record in self.refuse:
                verdicts.append(KeyError(p.record))
            else:
                self.stored.append(p.record)
                verdicts.append(None)
        return verdicts

    async def settle(
        self, conn: AsyncConnection, settled: Sequence[tuple[Payment, Confirmation]]
    ) -> None:
        for p, outcome in settled:
            self.settled.append((p.hold_id, outcome.newly_issued, outcome.sold_out_late))


def buyer(n: int) -> Actor:
    return Actor(Platform.SHELL, "batch", f"buyer{n}", f"Buyer {n}")


async def paid_holds(core: Core, count: int, *, capacity: int | None = None) -> list[str]:
    core.use_payments(StubPayments())  # anyone may sell: the batcher does not care how they pay
    space = await core.spaces.create(
        Actor(Platform.SHELL, "batch", "host", "Host"),
        SpaceDraft(
            title="Batched",
            starts_at=core.clock.now() + timedelta(days=1),
            capacity=capacity or count,
            price_minor=1000,
        ),
    )
    assert space.id is not None
    return [(await core.tickets.reserve(buyer(i), space.id)).hold.id for i in range(count)]


async def tickets_by_hold(core: Core) -> dict[str, int]:
    async with core.db.engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT hold_id, COUNT(*) FROM tickets WHERE status = 'valid' GROUP BY hold_id")
        )
        return {hold_id: n for hold_id, n in rows}


async def test_one_set_of_tickets_per_hold_however_payments_are_batched(core: Core) -> None:
    holds = await paid_holds(core, 20)
    issued: list[TicketIssued] = []

    async def on_issued(event: TicketIssued) -> None:
        issued.append(event)

    core.bus.subscribe(TicketIssued, on_issued)
    records = Records()
    # every hold paid three times at once: twice with the same record (a replayed
    # event), once with another (a second event for the same payment)
    payments = [
        core.tickets.confirm(h, fee_minor=100, recorder=records, record=f"{h}/{r}")
        for h in holds
        for r in ("a", "a", "b")
    ]
    outcomes = await asyncio.gather(*payments, return_exceptions=True)
    await core.bus.drain()
    assert sum(isinstance(o, KeyError) for o in outcomes) == 20  # each replay refused
    confirmations = [o for o in outcomes if isinstance(o, Confirmation)]
    assert sum(c.newly_issued for c in confirmations) == 20
    by_hold: dict[str, set[str]] = {}
    for c in confirmations:
        assert len(c.tickets) == 1
        by_hold.setdefault(c.tickets[0].hold_id, set()).add(c.tickets[0].id)
    assert all(len(ids) == 1 for ids in by_hold.values())  # the repeat saw the same ticket
    assert await tickets_by_hold(core) == {h: 1 for h in holds}
    assert sorted(e.hold_id for e in issued) == sorted(holds)  # told once per hold
    assert len(records.stored) == 40 and len(records.settled) == 40
    assert max(records.batches) > 1  # they really were batched
    ticket = confirmations[0].tickets[0]
    assert (ticket.price_minor, ticket.fee_minor, ticket.status) == (1000, 100, TicketStatus.VALID)


async def test_a_refused_payment_changes_nothing_and_its_neighbours_go_through(
    core: Core,
) -> None:
    holds = await paid_holds(core, 3)
    records = Records(refuse=frozenset({"refunded"}))
    outcomes = await asyncio.gather(
        core.tickets.confirm(holds[0], recorder=records, record="ok-0"),
        core.tickets.confirm(holds[1], recorder=records, record="refunded"),
        core.tickets.confirm(holds[2], recorder=records, record="ok-2"),
        core.tickets.confirm("no-such-hold", recorder=records, record="ok-3"),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], KeyError) and isinstance(outcomes[3], NotFound)
    assert await tickets_by_hold(core) == {holds[0]: 1, holds[2]: 1}
    assert (await core.tickets.get_hold(holds[1])).status == HoldStatus.ACTIVE


async def test_a_hold_paid_after_it_lapsed_takes_a_seat_if_one_is_left(
    core: Core, clock: ManualClock
) -> None:
    first, second = await paid_holds(core, 2)
    clock.advance(timedelta(hours=2))
    assert await core.tickets.expire_holds() == 2
    # someone else takes one of the two seats that went back
    space_id = (await core.tickets.get_hold(first)).space_id
    await core.tickets.reserve(buyer(99), space_id)
    records = Records()
    late = await asyncio.gather(
        core.tickets.confirm(first, recorder=records, record="1"),
        core.tickets.confirm(second, recorder=records, record="2"),
    )
    assert [(c.newly_issued, c.sold_out_late) for c in late] == [(True, False), (False, True)]
    assert records.settled == [(first, True, False), (second, False, True)]
    with pytest.raises(SoldOut):
        await core.tickets.reserve(buyer(100), space_id)
    assert (await core.tickets.get_hold(second)).status == HoldStatus.EXPIRED
