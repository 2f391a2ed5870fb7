"""Billing's records: which Stripe object is which of ours, and what we did about it.

Writes that must commit with something else take the caller's connection (`conn`);
the rest open their own short transaction. Every insert that may race is
`INSERT .. ON CONFLICT DO NOTHING` on a unique key, and every state change is a
conditional UPDATE, so concurrent and repeated calls leave one row in one state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from billing.models import (
    BillingAccount,
    BillingCheckout,
    BillingEvent,
    BillingRefund,
    BillingTip,
    CheckoutStatus,
    RefundStatus,
    TipStatus,
)
from billing.stripe_api import Account, CheckoutSession, EventRef
from bot.batching import GroupCommit
from bot.clock import Clock
from bot.db import Database, table_of
from bot.ports import TipTotals

_CHECKOUTS = table_of(BillingCheckout)
_EVENTS = table_of(BillingEvent)


class Ledger:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._insert = sqlite.insert if db.is_sqlite else postgresql.insert
        self._lookups: GroupCommit[tuple[str, str], tuple[bool, BillingCheckout | None]] = (
            GroupCommit("webhook-lookups", self._look_up)
        )

    def _insert_once(self, table: Any, values: dict[str, Any], key: Sequence[str]) -> Any:
        return self._insert(table).values(**values).on_conflict_do_nothing(index_elements=key)

    # --- events --------------------------------------------------------------------------

    async def seen(self, event_id: str) -> bool:
        """Whether the event is stored (the webhook's hot path: a bare connection)."""
        async with self.db.engine.connect() as conn:
            found = await conn.execute(
                sa.select(sa.literal(1)).where(col(BillingEvent.id) == event_id)
            )
            return found.first() is not None

    async def seen_and_checkout(
        self, event_id: str, session_id: str
    ) -> tuple[bool, BillingCheckout | None]:
        """Whether the event is stored, and the checkout of `session_id`: the webhook's
        hot path, so concurrent deliveries are looked up together (two statements per
        batch, `bot.batching`)."""
        return await self._lookups.submit((event_id, session_id))

    async def _look_up(
        self, keys: list[tuple[str, str]]
    ) -> list[tuple[bool, BillingCheckout | None]]:
        # One statement: an event we stored names its checkout (`object_id`), so a seen
        # event is found joined to the checkout it is about.
        query = (
            sa.select(_CHECKOUTS, _EVENTS.c.id.label("seen_event"))
            .outerjoin(
                _EVENTS,
                sa.and_(
                    _EVENTS.c.object_id == _CHECKOUTS.c.session_id,
                    _EVENTS.c.id.in_(sorted({e for e, _ in keys})),
                ),
            )
            .where(_CHECKOUTS.c.session_id.in_(sorted({s for _, s in keys})))
        )
        seen: set[str] = set()
        checkouts: dict[str, BillingCheckout] = {}
        async with self.db.engine.connect() as conn:
            for row in await conn.execute(query):
                fields = dict(row._mapping)
                if (event_id := fields.pop("seen_event")) is not None:
                    seen.add(event_id)
                checkouts[row.session_id] = BillingCheckout.model_validate(fields)
        return [(event in seen, checkouts.get(session)) for event, session in keys]

    async def close(self) -> None:
        await self._lookups.close()

    async def record_events(self, conn: AsyncConnection, refs: Sequence[EventRef]) -> set[str]:
        """Store events in the caller's transaction, in one statement; the ids of those
        that were not stored before (each id once, however often it is given)."""
        unique = {ref.id: ref for ref in refs}
        if not unique:
            return set()
        now = self.clock.now()
        stmt = (
            self._insert(BillingEvent)
            .values(
                [
                    {
                        "id": ref.id,
                        "type": ref.type[:100],
                        "object_id": ref.object_id[:255],
                        "received_at": now,
                    }
                    for ref in unique.values()
                ]
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(col(BillingEvent.id))
        )
        return set((await conn.execute(stmt)).scalars())

    # --- checkouts -----------------------------------------------------------------------

    async def add_checkout(self, row: BillingCheckout) -> BillingCheckout:
        """Insert (once: a retried checkout for the same hold finds the first row)."""
        async with self.db.write_conn() as conn:
            await conn.execute(self._insert_once(BillingCheckout, row.model_dump(), ["session_id"]))
        found = await self.checkout(row.session_id)
        assert found is not None
        return found

    async def checkout(self, session_id: str) -> BillingCheckout | None:
        return await self._checkout_where(col(BillingCheckout.session_id) == session_id)

    async def checkout_for_hold(self, hold_id: str) -> BillingCheckout | None:
        return await self._checkout_where(col(BillingCheckout.hold_id) == hold_id)

    async def checkout_for_charge(self, charge_id: str) -> BillingCheckout | None:
        return await self._checkout_where(col(BillingCheckout.charge_id) == charge_id)

    async def checkout_for_payment(self, payment_intent_id: str) -> BillingCheckout | None:
        return await self._checkout_where(
            col(BillingCheckout.payment_intent_id) == payment_intent_id
        )

    async def _checkout_where(self, condition: Any) -> BillingCheckout | None:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(sa.select(_CHECKOUTS).where(condition))).first()
        return BillingCheckout.model_validate(row._mapping) if row is not None else None

    async def open_checkouts(self, *, created_before: datetime) -> list[BillingCheckout]:
        async with self.db.session() as session:
            return list(
                await session.exec(
                    select(BillingCheckout).where(
                        BillingCheckout.status == CheckoutStatus.OPEN.value,
                        col(BillingCheckout.created_at) < created_before,
                    )
                )
            )

    async def mark_paid(self, conn: AsyncConnection, sessions: Sequence[CheckoutSession]) -> None:
        """Record the payments sessions became (again: it is idempotent), in one
        statement."""
        if not sessions:
            return
        await conn.execute(
            sa.update(BillingCheckout)
            .where(col(BillingCheckout.session_id) == sa.bindparam("b_session"))
            .values(
                status=CheckoutStatus.PAID.value,
                payment_intent_id=sa.bindparam("b_payment"),
                charge_id=sa.bindparam("b_charge"),
                paid_at=sa.func.coalesce(
                    col(BillingCheckout.paid_at),
                    sa.bindparam("b_now", type_=_CHECKOUTS.c.paid_at.type),
                ),
            ),
            [
                {
                    "b_session": s.id,
                    "b_payment": s.payment_intent,
                    "b_charge": s.charge,
                    "b_now": self.clock.now(),
                }
                for s in sessions
            ],
        )

    async def mark_expired(self, conn: AsyncConnection, session_id: str) -> bool:
        row = (
            await conn.execute(
                sa.update(BillingCheckout)
                .where(
                    col(BillingCheckout.session_id) == session_id,
                    col(BillingCheckout.status) == CheckoutStatus.OPEN.value,
                )
                .values(status=CheckoutStatus.EXPIRED.value)
                .returning(col(BillingCheckout.session_id))
            )
        ).first()
        return row is not None

    # --- refunds -------------------------------------------------------------------------

    async def owe_refund(
        self, row: BillingRefund, conn: AsyncConnection | None = None
    ) -> BillingRefund:
        """Note a refund we owe (once per key); returns the row as stored."""
        stmt = self._insert_once(BillingRefund, row.model_dump(), ["key"])
        if conn is not None:
            await conn.execute(stmt)
            return row
        async with self.db.write_conn() as own:
            await own.execute(stmt)
        found = await self.refund(row.key)
        assert found is not None
        return found

    async def refunds_among(self, conn: AsyncConnection, keys: Sequence[str]) -> set[str]:
        """Which of `keys` name a refund, read in the caller's transaction."""
        if not keys:
            return set()
        rows = await conn.execute(
            sa.select(col(BillingRefund.key)).where(col(BillingRefund.key).in_(sorted(set(keys))))
        )
        return set(rows.scalars())

    async def refund(self, key: str) -> BillingRefund | None:
        async with self.db.session() as session:
            return await session.get(BillingRefund, key)

    async def refunds_for_payment(self, payment_intent_id: str) -> list[BillingRefund]:
        async with self.db.session() as session:
            return list(
                await session.exec(
                    select(BillingRefund).where(
                        BillingRefund.payment_intent_id == payment_intent_id
                    )
                )
            )

    async def refunds_in(
        self, status: RefundStatus, *, updated_since: datetime | None = None
    ) -> list[BillingRefund]:
        query = (
            select(BillingRefund)
            .where(BillingRefund.status == status.value)
            .order_by(col(BillingRefund.created_at))
        )
        if updated_since is not None:
            query = query.where(col(BillingRefund.updated_at) >= updated_since)
        async with self.db.session() as session:
            return list(await session.exec(query))

    async def refund_attempted(self, key: str) -> None:
        async with self.db.write_conn() as conn:
            await conn.execute(
                sa.update(BillingRefund)
                .where(col(BillingRefund.key) == key)
                .values(attempts=col(BillingRefund.attempts) + 1, updated_at=self.clock.now())
            )

    async def refund_done(self, key: str, refund_id: str | None) -> bool:
        """Pending -> succeeded; False when another call got there first."""
        return await self._refund_to(key, RefundStatus.SUCCEEDED, refund_id=refund_id)

    async def refund_failed(self, key: str, error: str) -> bool:
        return await self._refund_to(key, RefundStatus.FAILED, last_error=error[:500])

    async def refund_error(self, key: str, error: str) -> None:
        """A failure a retry may fix: stays pending, the error is kept for the operator."""
        async with self.db.write_conn() as conn:
            await conn.execute(
                sa.update(BillingRefund)
                .where(col(BillingRefund.key) == key)
                .values(last_error=error[:500], updated_at=self.clock.now())
            )

    async def _refund_to(self, key: str, status: RefundStatus, **values: Any) -> bool:
        async with self.db.write_conn() as conn:
            row = (
                await conn.execute(
                    sa.update(BillingRefund)
                    .where(
                        col(BillingRefund.key) == key,
                        col(BillingRefund.status) == RefundStatus.PENDING.value,
                    )
                    .values(status=status.value, updated_at=self.clock.now(), **values)
                    .returning(col(BillingRefund.key))
                )
            ).first()
        return row is not None

    # --- connected accounts --------------------------------------------------------------

    async def account(self, identity_id: int) -> BillingAccount | None:
        async with self.db.session() as session:
            return await session.get(BillingAccount, identity_id)

    async def account_by_stripe_id(self, account_id: str) -> BillingAccount | None:
        async with self.db.session() as session:
            return (
                await session.exec(
                    select(BillingAccount).where(BillingAccount.account_id == account_id)
                )
            ).first()

    async def add_account(self, identity_id: int, account: Account) -> BillingAccount:
        """The host's account, once: a concurrent second call finds the first row."""
        now = self.clock.now()
        row = BillingAccount(
            identity_id=identity_id, account_id=account.id, created_at=now, updated_at=now
        )
        async with self.db.write_conn() as conn:
            await conn.execute(self._insert_once(BillingAccount, row.model_dump(), ["identity_id"]))
            await self.update_account(conn, account)
        found = await self.account(identity_id)
        assert found is not None
        return found

    async def update_account(self, conn: AsyncConnection, account: Account) -> bool:
        """What Stripe says about an account now; False when it is not one of ours."""
        row = (
            await conn.execute(
                sa.update(BillingAccount)
                .where(col(BillingAccount.account_id) == account.id)
                .values(
                    charges_enabled=account.charges_enabled,
                    payouts_enabled=account.payouts_enabled,
                    details_submitted=account.details_submitted,
                    currently_due=list(account.currently_due),
                    disabled_reason=account.disabled_reason,
                    updated_at=self.clock.now(),
                )
                .returning(col(BillingAccount.identity_id))
            )
        ).first()
        return row is not None

    # --- tips ----------------------------------------------------------------------------

    async def add_tip(self, tip: BillingTip) -> None:
        async with self.db.write_conn() as conn:
            await conn.execute(sa.insert(BillingTip).values(**tip.model_dump()))

    async def tip(self, tip_id: str) -> BillingTip | None:
        async with self.db.session() as session:
            return await session.get(BillingTip, tip_id)

    async def paid_tips(self, space_id: int) -> TipTotals:
        """How many tips to `space_id` were paid, their sum and the platform's cut."""
        async with self.db.engine.connect() as conn:
            count, amount, fee = (
                await conn.execute(
                    sa.select(
                        sa.func.count(),
                        sa.func.coalesce(sa.func.sum(col(BillingTip.amount_minor)), 0),
                        sa.func.coalesce(sa.func.sum(col(BillingTip.fee_minor)), 0),
                    ).where(
                        col(BillingTip.space_id) == space_id,
                        col(BillingTip.status) == TipStatus.PAID.value,
                    )
                )
            ).one()
        return TipTotals(int(count), int(amount), int(fee))

    async def tip_to(self, conn: AsyncConnection, tip_id: str, status: TipStatus) -> bool:
        """Pending -> paid or expired; False when it was no longer pending."""
        values: dict[str, Any] = {"status": status.value}
        if status == TipStatus.PAID:
            values["paid_at"] = self.clock.now()
        row = (
            await conn.execute(
                sa.update(BillingTip)
                .where(
                    col(BillingTip.id) == tip_id,
                    col(BillingTip.status) == TipStatus.PENDING.value,
                )
                .values(**values)
                .returning(col(BillingTip.id))
            )
        ).first()
        return row is not None
