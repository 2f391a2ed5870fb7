"""Bring our state in line with a Stripe object as it is NOW.

Webhooks and reconciliation both end here, with an object freshly read from Stripe
(never the event's copy): a Checkout Session, a Charge, an Account. Acting on the
current state, not on the event type, is what makes late, repeated and reordered events
harmless: an `expired` event for a session that is in fact paid issues the tickets.

The event that triggered the work (None in reconciliation) is stored once by its id in
the transaction of the effect:
- a paid session: inside the core's `confirm` transaction (tickets, the payment's ids
  and any refund owed commit together with the event, or none of them do);
- tips and accounts: in billing's own transaction with the change;
- effects the core makes in transactions of its own (releasing a hold, closing
  tickets) are idempotent, run first, and the event is stored right after, so a crash
  in between is finished by Stripe's retry.
Every function returns what it changed, in words, or None when the object is not ours.
"""

from __future__ import annotations

import contextlib

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from billing.errors import BillingError, StripeUnavailable
from billing.ledger import Ledger
from billing.models import BillingCheckout, CheckoutKind, RefundStatus, TipStatus
from billing.payments import AlreadyRefunded, DuplicateEvent, Paid, PaymentRecords
from billing.refunds import Refunds
from billing.stripe_api import Account, Charge, CheckoutSession, Dispute, EventRef
from bot.core import Core
from bot.events import PaymentDisputed, TipReceived
from bot.models import Ticket, TicketStatus

log = structlog.get_logger(__name__)

DISPUTED_REASON = "The payment was disputed with the bank."
EXTERNAL_REFUND_REASON = "The payment was refunded."


class Sync:
    def __init__(self, core: Core, ledger: Ledger, refunds: Refunds) -> None:
        self.core = core
        self.ledger = ledger
        self.refunds = refunds
        self.payments = PaymentRecords(ledger, refunds)

    async def record(self, event: EventRef | None, conn: AsyncConnection | None = None) -> None:
        """Store `event` (alone, or in `conn`); `DuplicateEvent` when it already was."""
        if event is None:
            return
        if conn is not None:
            if not await self.ledger.record_events(conn, [event]):
                raise DuplicateEvent(event.id)
            return
        async with self.core.db.write_conn() as own:
            if not await self.ledger.record_events(own, [event]):
                raise DuplicateEvent(event.id)

    async def record_after(self, event: EventRef | None) -> None:
        """Store `event` after an idempotent effect; a concurrent delivery storing it
        first did the same work, so a duplicate here is fine."""
        with contextlib.suppress(DuplicateEvent):
            await self.record(event)

    # --- Checkout Sessions ---------------------------------------------------------------

    async def session(
        self,
        session: CheckoutSession,
        event: EventRef | None = None,
        checkout: BillingCheckout | None = None,
    ) -> list[str] | None:
        """`checkout`: our record of the session, when the caller already read it."""
        checkout = checkout or await self.ledger.checkout(session.id)
        if checkout is None:
            return None
        if session.paid:
            if checkout.kind == CheckoutKind.TIP:
                return await self._tip_paid(checkout, session, event)
            return await self._tickets_paid(checkout, session, event)
        if session.status == "expired" or session.payment_failed:
            return await self._lapsed(checkout, session, event)
        await self.record(event)  # open, or a delayed payment still processing
        return []

    async def _tickets_paid(
        self, checkout: BillingCheckout, session: CheckoutSession, event: EventRef | None
    ) -> list[str]:
        hold_id = checkout.hold_id
        assert hold_id is not None
        try:
            outcome = await self.core.tickets.confirm(
                hold_id,
                fee_minor=checkout.fee_minor,
                reference=session.payment_intent or session.id,
                recorder=self.payments,
                record=Paid(session, checkout, event),
            )
        except AlreadyRefunded:
            return []
        changes = []
        if outcome.newly_issued:
            changes.append(
                f"issued {len(outcome.tickets)} ticket(s) for hold {hold_id} ({session.id})"
            )
        if outcome.sold_out_late:
            try:
                changes += await self.refunds.refund_late_payment(hold_id)
            except (StripeUnavailable, BillingError) as exc:  # stays owed: reconciled later
                log.warning(
                    "late-payment refund failed; will retry", hold_id=hold_id, error=str(exc)
                )
        return changes

    async def _tip_paid(
        self, checkout: BillingCheckout, session: CheckoutSession, event: EventRef | None
    ) -> list[str]:
        tip_id = checkout.tip_id
        assert tip_id is not None
        async with self.core.db.write_conn() as conn:
            await self.record(event, conn)
            await self.ledger.mark_paid(conn, [session])
            newly = await self.ledger.tip_to(conn, tip_id, TipStatus.PAID)
        if not newly:
            return []
        tip = await self.ledger.tip(tip_id)
        assert tip is not None
        host = await self.core.identities.get(tip.host_id)
        tipper = await self.core.identities.get(tip.tipper_id)
        self.core.bus.publish(
            TipReceived(
                community_id=host.community_id,
                host_key=host.key,
                tipper_key=tipper.key,
                amount_minor=tip.amount_minor,
                currency=tip.currency,
                message=tip.message,
                public=tip.public,
                space_id=tip.space_id,
                actor_key=tipper.key,
            )
        )
        return [f"tip {tip_id} paid ({session.id})"]

    async def _lapsed(
        self, checkout: BillingCheckout, session: CheckoutSession, event: EventRef | None
    ) -> list[str]:
        async with self.core.db.write_conn() as conn:
            await self.ledger.mark_expired(conn, session.id)
            if checkout.tip_id is not None:
                await self.ledger.tip_to(conn, checkout.tip_id, TipStatus.EXPIRED)
        released = False
        if checkout.hold_id is not None:
            released = await self.core.tickets.release(
                checkout.hold_id, expired=session.status == "expired"
            )
        await self.record_after(event)
        return [f"released hold {checkout.hold_id} ({session.id})"] if released else []

    # --- Charges: refunds and disputes ---------------------------------------------------

    async def charge(
        self, charge: Charge, event: EventRef | None = None, dispute: Dispute | None = None
    ) -> list[str] | None:
        """Close the tickets a charge no longer pays for.

        Disputed: every valid ticket of the payment is revoked. Refunded (in part or in
        full): as many tickets as the refunded amount covers are closed, first those we
        refunded ourselves (`billing_refunds`), then, for money refunded outside
        Stagepass (the Dashboard), valid tickets we have no refund of our own for. A
        partial refund smaller than a ticket's price closes nothing."""
        checkout = await self.ledger.checkout_for_charge(charge.id)
        if checkout is None and charge.payment_intent:
            checkout = await self.ledger.checkout_for_payment(charge.payment_intent)
        if checkout is None:
            return None
        changes: list[str] = []
        if checkout.hold_id is not None:
            tickets = await self._tickets_of_hold(checkout.hold_id)
            if charge.disputed:
                changes = await self._revoke_disputed(tickets, charge, dispute)
            elif charge.amount_refunded:
                changes = await self._close_refunded(tickets, charge)
        await self.record_after(event)
        return changes

    async def _tickets_of_hold(self, hold_id: str) -> list[Ticket]:
        async with self.core.db.session() as session:
            return list(
                await session.exec(
                    select(Ticket).where(Ticket.hold_id == hold_id).order_by(col(Ticket.id))
                )
            )

    async def _revoke_disputed(
        self, tickets: list[Ticket], charge: Charge, dispute: Dispute | None
    ) -> list[str]:
        revoked = [
            t.id
            for t in tickets
            if t.status == TicketStatus.VALID
            and await self.core.tickets.close(t.id, refunded=False, reason=DISPUTED_REASON)
        ]
        if not revoked:
            return []
        first = tickets[0]
        space = await self.core.spaces.get(first.space_id)
        holder = await self.core.identities.get(first.holder_id)
        self.core.bus.publish(
            PaymentDisputed(
                space_id=first.space_id,
                community_id=space.community_id,
                holder_key=holder.key,
                ticket_ids=tuple(revoked),
                amount_minor=dispute.amount if dispute else charge.amount,
                currency=charge.currency,
                reason=dispute.reason if dispute else "",
            )
        )
        return [f"revoked ticket(s) {', '.join(revoked)} (charge {charge.id} disputed)"]

    async def _close_refunded(self, tickets: list[Ticket], charge: Charge) -> list[str]:
        if not tickets:
            return []
        price = tickets[0].price_minor
        ours = {
            r.ticket_id: r
            for r in await self.ledger.refunds_for_payment(charge.payment_intent or "")
            if r.ticket_id is not None and r.status != RefundStatus.FAILED
        }
        changes: list[str] = []
        for ticket in tickets:  # refunds we made whose ticket is still open
            row = ours.get(ticket.id)
            if (
                row is not None
                and row.status == RefundStatus.SUCCEEDED
                and ticket.status == TicketStatus.VALID
                and await self.core.tickets.close(ticket.id, refunded=True, reason=row.reason)
            ):
                changes.append(f"closed refunded ticket {ticket.id}")
        ours_amount = sum(r.amount_minor for r in ours.values())
        external = max(0, charge.amount_refunded - ours_amount)
        covered = len(tickets) if charge.refunded else (external // price if price else 0)
        others = [t for t in tickets if t.id not in ours]
        already = sum(1 for t in others if t.status == TicketStatus.REFUNDED)
        for ticket in [t for t in others if t.status == TicketStatus.VALID][
            : max(0, covered - already)
        ]:
            if await self.core.tickets.close(
                ticket.id, refunded=True, reason=EXTERNAL_REFUND_REASON
            ):
                changes.append(f"closed ticket {ticket.id} (charge {charge.id} refunded)")
        return changes

    # --- Connect accounts ----------------------------------------------------------------

    async def account(self, account: Account, event: EventRef | None = None) -> list[str] | None:
        row = await self.ledger.account_by_stripe_id(account.id)
        if row is None:
            return None
        async with self.core.db.write_conn() as conn:
            await self.record(event, conn)
            await self.ledger.update_account(conn, account)
        if (row.charges_enabled, row.payouts_enabled) == (
            account.charges_enabled,
            account.payouts_enabled,
        ):
            return []
        return [
            f"account {account.id}: charges {'on' if account.charges_enabled else 'off'}, "
            f"payouts {'on' if account.payouts_enabled else 'off'}"
        ]
