"""The confirm batcher: paid holds become tickets in batches, one transaction per batch.

Payments that arrive together (a burst of webhooks) are confirmed together
(`bot.batching`): the holds are read, and locked (`BEGIN IMMEDIATE` on SQLite,
`SELECT ... FOR UPDATE` on PostgreSQL, in id order), in ONE statement; each payment's
recorder admits its payments in bulk (`PaymentRecorder.admit`: the events stored once);
the holds move to confirmed, the tickets and the audit entries are written in one
statement each; the recorder settles in bulk; then one commit. Per payment that is a
share of about ten statements, whatever the batch size, instead of ten each.

Per hold, in arrival order within the batch:
- active: confirmed, its tickets issued, its seats moved from `held` to `sold`
  (`claims.SELL_HELD`, one statement per batch);
- already confirmed (a repeated payment): the same tickets, `newly_issued=False`;
- expired or released (paid late): its seats are taken again if still there
  (`claims.TAKE_SEATS`, the capacity rule) and it is confirmed; otherwise
  `sold_out_late` tells the caller to refund.
`TicketIssued` is published once the batch has committed, whether or not the caller
still waits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.batching import GroupCommit
from bot.clock import Clock
from bot.db import Database, table_of
from bot.errors import NotFound
from bot.events import EventBus, TicketIssued
from bot.models import AuditEntry, Hold, HoldStatus, Identity, Space, Ticket
from bot.ports import Confirmation, Payment, PaymentRecorder
from bot.services import audit
from bot.services.claims import ADD_QUOTA, SELL_HELD, TAKE_SEATS, new_tickets

_HOLDS = table_of(Hold)
_SPACES = table_of(Space)
_IDENTITIES = table_of(Identity)
_TICKETS = table_of(Ticket)


@dataclass(slots=True)
class _Hold:
    """A hold as read under the lock, and what this batch has made of it so far."""

    row: Any
    status: HoldStatus
    community_id: str
    holder_key: str
    outcome: Confirmation | None = None  # set by the first payment decided for it


class ConfirmBatcher:
    """Batches payment confirmations into group commits: every payment waiting becomes
    tickets in one write transaction (see the module docstring)."""

    def __init__(self, db: Database, bus: EventBus, clock: Clock, max_batch: int = 500) -> None:
        self.db = db
        self.bus = bus
        self.clock = clock
        self.commits: GroupCommit[Payment, Confirmation] = GroupCommit(
            "confirm-batcher", self._decide, max_batch=max_batch
        )

    async def confirm(self, payment: Payment) -> Confirmation:
        return await self.commits.submit(payment)

    async def close(self) -> None:
        await self.commits.close()

    async def _decide(self, payments: list[Payment]) -> list[Confirmation | Exception]:
        outcomes: list[Confirmation | Exception] = [
            NotFound(f"No hold {p.hold_id}.") for p in payments
        ]
        issued: list[tuple[_Hold, Confirmation]] = []
        async with self.db.write_conn() as conn:
            holds = await self._lock(conn, {p.hold_id for p in payments})
            found = [i for i, p in enumerate(payments) if p.hold_id in holds]
            admitted = await self._admit(conn, payments, found, outcomes)
            tickets: list[dict[str, Any]] = []
            entries: list[AuditEntry] = []
            confirmed: list[str] = []
            sold: defaultdict[int, int] = defaultdict(int)  # held seats paid for, by Space
            for i in admitted:
                payment = payments[i]
                hold = holds[payment.hold_id]
                if hold.outcome is None:
                    hold.outcome = await self._first(conn, hold, payment, tickets, entries, sold)
                    if hold.outcome.newly_issued:
                        confirmed.append(payment.hold_id)
                        issued.append((hold, hold.outcome))
                    outcomes[i] = hold.outcome
                else:  # the same hold paid twice in one batch: the same tickets
                    outcomes[i] = Confirmation(hold.outcome.tickets, newly_issued=False)
            await self._existing(conn, holds, payments, admitted, outcomes)
            if confirmed:
                await conn.execute(
                    sa.update(_HOLDS)
                    .where(_HOLDS.c.id.in_(confirmed))
                    .values(status=HoldStatus.CONFIRMED.value, resolved_at=self.clock.now())
                )
            if sold:
                await conn.execute(
                    SELL_HELD, [{"space_id": k, "n": n} for k, n in sorted(sold.items())]
                )
            if tickets:
                await conn.execute(sa.insert(_TICKETS), tickets)
            await audit.record_many(conn, entries)
            await self._settle(conn, payments, admitted, outcomes)
        for hold, outcome in issued:
            self.bus.publish(
                TicketIssued(
                    space_id=hold.row.space_id,
                    community_id=hold.community_id,
                    ticket_ids=tuple(t.id for t in outcome.tickets),
                    holder_key=hold.holder_key,
                    hold_id=hold.row.id,
                )
            )
        return outcomes

    async def _lock(self, conn: AsyncConnection, hold_ids: set[str]) -> dict[str, _Hold]:
        query = (
            sa.select(
                _HOLDS,
                _SPACES.c.community_id,
                _IDENTITIES.c.community_id.label("holder_community"),
                _IDENTITIES.c.user_id.label("holder_user"),
            )
            .join(_SPACES, _SPACES.c.id == _HOLDS.c.space_id)
            .join(_IDENTITIES, _IDENTITIES.c.id == _HOLDS.c.buyer_id)
            .where(_HOLDS.c.id.in_(sorted(hold_ids)))
            .order_by(_HOLDS.c.id)  # one lock order for every process
        )
        if not self.db.is_sqlite:
            query = query.with_for_update(of=_HOLDS)
        return {
            row.id: _Hold(
                row=row,
                status=HoldStatus(row.status),
                community_id=row.community_id,
                holder_key=f"{row.holder_community}:{row.holder_user}",
            )
            for row in await conn.execute(query)
        }

    async def _admit(
        self,
        conn: AsyncConnection,
        payments: list[Payment],
        found: list[int],
        outcomes: list[Confirmation | Exception],
    ) -> list[int]:
        """The indexes of the payments their recorders let through, in arrival order."""
        refused: set[int] = set()
        for recorder, indexes in _by_recorder(payments, found):
            verdicts = await recorder.admit(conn, [payments[i] for i in indexes])
            for i, verdict in zip(indexes, verdicts, strict=True):
                if verdict is not None:
                    outcomes[i] = verdict
                    refused.add(i)
        return [i for i in found if i not in refused]

    async def _settle(
        self,
        conn: AsyncConnection,
        payments: list[Payment],
        admitted: list[int],
        outcomes: list[Confirmation | Exception],
    ) -> None:
        for recorder, indexes in _by_recorder(payments, admitted):
            settled = []
            for i in indexes:
                outcome = outcomes[i]
                assert isinstance(outcome, Confirmation)
                settled.append((payments[i], outcome))
            await recorder.settle(conn, settled)

    async def _first(
        self,
        conn: AsyncConnection,
        hold: _Hold,
        payment: Payment,
        tickets: list[dict[str, Any]],
        entries: list[AuditEntry],
        sold: defaultdict[int, int],
    ) -> Confirmation:
        """What the first payment of a hold in this batch makes of it."""
        row = hold.row
        if hold.status == HoldStatus.CONFIRMED:
            return Confirmation([], newly_issued=False)  # filled in by `_existing`
        if hold.status == HoldStatus.ACTIVE:
            sold[row.space_id] += row.quantity
        else:
            # the seats went back when the hold lapsed: take them again, if still there
            params = {"space_id": row.space_id, "buyer_id": row.buyer_id, "n": row.quantity}
            take = {"space_id": row.space_id, "sold": row.quantity, "held": 0}
            if (await conn.execute(TAKE_SEATS, take)).first() is None:
                entries.append(
                    audit.entry(
                        self.clock,
                        "hold.paid_after_sellout",
                        space_id=row.space_id,
                        subject=row.id,
                        reference=payment.reference,
                    )
                )
                return Confirmation([], newly_issued=False, sold_out_late=True)
            await conn.execute(ADD_QUOTA, params)
        now = self.clock.now()
        made = new_tickets(Hold.model_validate(row._mapping), now, fee_minor=payment.fee_minor)
        tickets.extend(t.model_dump() for t in made)
        entries.append(
            audit.entry(
                self.clock,
                "hold.confirmed",
                actor_id=row.buyer_id,
                space_id=row.space_id,
                subject=row.id,
                reference=payment.reference,
                amount=row.amount_minor,
                fee=payment.fee_minor,
            )
        )
        return Confirmation(made, newly_issued=True)

    async def _existing(
        self,
        conn: AsyncConnection,
        holds: dict[str, _Hold],
        payments: list[Payment],
        admitted: list[int],
        outcomes: list[Confirmation | Exception],
    ) -> None:
        """Fill in the tickets of holds that were already confirmed before this batch."""
        repeated = {
            payments[i].hold_id
            for i in admitted
            if holds[payments[i].hold_id].status == HoldStatus.CONFIRMED
        }
        if not repeated:
            return
        by_hold: dict[str, list[Ticket]] = defaultdict(list)
        rows = await conn.execute(
            sa.select(_TICKETS)
            .where(_TICKETS.c.hold_id.in_(sorted(repeated)))
            .order_by(_TICKETS.c.id)
        )
        for row in rows:
            by_hold[row.hold_id].append(Ticket.model_validate(row._mapping))
        for i in admitted:
            hold_id = payments[i].hold_id
            if hold_id in repeated:
                outcomes[i] = Confirmation(by_hold[hold_id], newly_issued=False)


def _by_recorder(
    payments: Sequence[Payment], indexes: Sequence[int]
) -> list[tuple[PaymentRecorder, list[int]]]:
    groups: dict[int, tuple[PaymentRecorder, list[int]]] = {}
    for i in indexes:
        recorder = payments[i].recorder
        if recorder is not None:
            groups.setdefault(id(recorder), (recorder, []))[1].append(i)
    return list(groups.values())
