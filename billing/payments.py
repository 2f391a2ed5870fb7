"""What billing writes in the transaction that turns a paid hold into tickets.

`PaymentRecords` is billing's `PaymentRecorder` (bot/ports.py): the core's confirm batcher
hands it every payment of a batch, twice, in the batch's one transaction:
- `admit`: the triggering events are stored once (a payment whose event is already
  stored, or stored by an earlier delivery in the same batch, is a `DuplicateEvent`
  and changes nothing); a payment we already refunded as late never becomes tickets
  (`AlreadyRefunded`; its event is stored all the same);
- `settle`: the payment's ids are recorded on its checkout, and a payment that came too
  late for any seat is noted as a refund we owe (made right after the commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from billing.ledger import Ledger
from billing.models import BillingCheckout
from billing.refunds import Refunds, hold_key
from billing.stripe_api import CheckoutSession, EventRef
from bot.ports import Confirmation, Payment


class DuplicateEvent(Exception):
    """The event was already stored: a concurrent delivery got there first."""


class AlreadyRefunded(Exception):
    """This payment was refunded as a late payment; it never becomes tickets."""


@dataclass(frozen=True, slots=True)
class Paid:
    """Billing's record of one payment: the session as Stripe has it now, our checkout
    row, and the event that announced it (None when reconciliation found it)."""

    session: CheckoutSession
    checkout: BillingCheckout
    event: EventRef | None = None


def paid(payment: Payment) -> Paid:
    assert isinstance(payment.record, Paid), payment
    return payment.record


class PaymentRecords:
    def __init__(self, ledger: Ledger, refunds: Refunds) -> None:
        self.ledger = ledger
        self.refunds = refunds

    async def admit(
        self, conn: AsyncConnection, payments: Sequence[Payment]
    ) -> list[Exception | None]:
        records = [paid(p) for p in payments]
        stored = await self.ledger.record_events(
            conn, [r.event for r in records if r.event is not None]
        )
        refunded = await self.ledger.refunds_among(conn, [hold_key(p.hold_id) for p in payments])
        verdicts: list[Exception | None] = []
        for payment, record in zip(payments, records, strict=True):
            if record.event is not None:
                if record.event.id not in stored:
                    verdicts.append(DuplicateEvent(record.event.id))
                    continue
                stored.discard(record.event.id)  # a second delivery in this batch: duplicate
            if hold_key(payment.hold_id) in refunded:
                verdicts.append(AlreadyRefunded(payment.hold_id))
                continue
            verdicts.append(None)
        return verdicts

    async def settle(
        self, conn: AsyncConnection, settled: Sequence[tuple[Payment, Confirmation]]
    ) -> None:
        await self.ledger.mark_paid(conn, [paid(p).session for p, _ in settled])
        for payment, outcome in settled:
            if outcome.sold_out_late:
                record = paid(payment)
                checkout = record.checkout.model_copy(
                    update={"payment_intent_id": record.session.payment_intent}
                )
                row = self.refunds.late_payment_refund(checkout, record.session.amount_total)
                await self.ledger.owe_refund(row, conn)
