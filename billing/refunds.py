"""Refunds, each made exactly once.

A refund is first written down as owed (`billing_refunds`, keyed `ticket:ID` or
`hold:ID`), then made with that key as Stripe's Idempotency-Key, then marked done. A
crash or a Stripe outage in between leaves it pending; `retry_pending` (reconciliation)
makes the same call again, which Stripe answers with the refund it already made.

Who bears a refund: for a destination charge the transfer to the host is reversed and
the platform's fee refunded in proportion, so the buyer gets everything back and
neither the host nor the platform keeps a cut of a sale that did not happen.

The refund policy for `/ticket refund` and the host's desk is the core's
(`bot.refund_policy`); cancelling a Space always refunds.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlmodel import col, select
from stripe.params import RefundCreateParams

from billing.errors import BillingError, StripeRejected, StripeUnavailable
from billing.ledger import Ledger
from billing.models import BillingCheckout, BillingRefund, CheckoutStatus, RefundStatus
from billing.stripe_api import StripeAPI
from bot.core import Core
from bot.events import LatePaymentRefunded
from bot.models import Space, SpaceStatus, Ticket, TicketStatus

log = structlog.get_logger(__name__)


def ticket_key(ticket_id: str) -> str:
    return f"ticket:{ticket_id}"


def hold_key(hold_id: str) -> str:
    return f"hold:{hold_id}"


class Refunds:
    def __init__(self, core: Core, api: StripeAPI, ledger: Ledger) -> None:
        self.core = core
        self.api = api
        self.ledger = ledger

    # --- what the gateway and the webhooks call ------------------------------------------

    async def refund_ticket(self, ticket: Ticket, *, reason: str) -> None:
        """Refund one paid ticket (once); raises when it cannot be done now."""
        checkout = await self.ledger.checkout_for_hold(ticket.hold_id)
        if (
            checkout is None
            or checkout.status != CheckoutStatus.PAID
            or checkout.payment_intent_id is None
        ):
            raise BillingError(f"no recorded payment for ticket {ticket.id}")
        now = self.core.clock.now()
        row = await self.ledger.owe_refund(
            BillingRefund(
                key=ticket_key(ticket.id),
                ticket_id=ticket.id,
                hold_id=ticket.hold_id,
                payment_intent_id=checkout.payment_intent_id,
                amount_minor=ticket.price_minor,
                currency=ticket.currency,
                reason=reason[:500],
                status=RefundStatus.PENDING,
                created_at=now,
                updated_at=now,
            )
        )
        await self.make(row, checkout)

    def late_payment_refund(self, checkout: BillingCheckout, amount_minor: int) -> BillingRefund:
        """The whole payment for a hold that could not become tickets (written by the
        webhook in the transaction that found it so; made by `refund_late_payment`)."""
        assert checkout.hold_id is not None and checkout.payment_intent_id is not None
        now = self.core.clock.now()
        return BillingRefund(
            key=hold_key(checkout.hold_id),
            hold_id=checkout.hold_id,
            payment_intent_id=checkout.payment_intent_id,
            amount_minor=amount_minor,
            currency=checkout.currency,
            reason="Paid after the hold expired and no seat was left.",
            status=RefundStatus.PENDING,
            created_at=now,
            updated_at=now,
        )

    async def refund_late_payment(self, hold_id: str) -> list[str]:
        row = await self.ledger.refund(hold_key(hold_id))
        if row is None:
            return []
        return await self._finish(row)

    # --- making one ----------------------------------------------------------------------

    async def make(self, row: BillingRefund, checkout: BillingCheckout | None = None) -> bool:
        """Make the refund `row` stands for; True when this call completed it. Raises
        `StripeUnavailable` (still pending) or `BillingError` (failed for good)."""
        if row.status == RefundStatus.SUCCEEDED:
            return False
        if row.status == RefundStatus.FAILED:
            raise BillingError(f"refund {row.key} failed: {row.last_error}")
        if checkout is None:
            checkout = await self.ledger.checkout_for_hold(row.hold_id)
        params: RefundCreateParams = {
            "payment_intent": row.payment_intent_id,
            "amount": row.amount_minor,
            "reason": "requested_by_customer",
            "metadata": {
                "stagepass_refund": row.key,
                **({"stagepass_ticket": row.ticket_id} if row.ticket_id else {}),
                "stagepass_hold": row.hold_id,
            },
        }
        if checkout is not None and checkout.destination:
            params["reverse_transfer"] = True
            params["refund_application_fee"] = True
        await self.ledger.refund_attempted(row.key)
        try:
            refund = await self.api.create_refund(
                params, idempotency_key=f"stagepass-refund-{row.key}"
            )
        except StripeUnavailable as exc:
            await self.ledger.refund_error(row.key, str(exc))
            raise
        except StripeRejected as exc:
            if exc.code == "charge_already_refunded":  # refunded outside Stagepass: done
                log.warning("charge already refunded", refund=row.key)
                return await self.ledger.refund_done(row.key, None)
            await self.ledger.refund_failed(row.key, exc.message)
            log.error("refund refused by Stripe", refund=row.key, error=exc.message, code=exc.code)
            raise BillingError(f"Stripe refused refund {row.key}: {exc.message}") from exc
        done = await self.ledger.refund_done(row.key, refund.id)
        log.info("refund made", refund=row.key, stripe_refund=refund.id, amount=row.amount_minor)
        return done

    async def _finish(self, row: BillingRefund) -> list[str]:
        """Make a pending refund and apply what follows from it (ticket closed, buyer
        told); what changed, in words."""
        made = await self.make(row)
        changes: list[str] = []
        if row.ticket_id is not None:
            if await self.core.tickets.close(row.ticket_id, refunded=True, reason=row.reason):
                changes.append(f"refunded ticket {row.ticket_id} ({row.key})")
        elif made:
            changes.append(f"refunded late payment for hold {row.hold_id}")
            await self._tell_late_buyer(row)
        return changes

    async def _tell_late_buyer(self, row: BillingRefund) -> None:
        hold = await self.core.tickets.get_hold(row.hold_id)
        space = await self.core.spaces.get(hold.space_id)
        buyer = await self.core.identities.get(hold.buyer_id)
        self.core.bus.publish(
            LatePaymentRefunded(
                space_id=hold.space_id,
                community_id=space.community_id,
                buyer_key=buyer.key,
                amount_minor=row.amount_minor,
                currency=row.currency,
                space_cancelled=space.status == SpaceStatus.CANCELLED,
            )
        )

    # --- reconciliation ------------------------------------------------------------------

    async def retry_pending(self) -> tuple[list[str], list[str]]:
        """Make every refund still owed; returns (changes, errors)."""
        changes: list[str] = []
        errors: list[str] = []
        for row in await self.ledger.refunds_in(RefundStatus.PENDING):
            try:
                changes += await self._finish(row)
            except (StripeUnavailable, BillingError) as exc:
                errors.append(f"refund {row.key}: {exc}")
        return changes, errors

    async def refund_cancelled_spaces(self) -> tuple[list[str], list[str]]:
        """Paid tickets still valid in a cancelled Space (a cancellation cut short before
        their refund was even owed): refund them now. Returns (changes, errors)."""
        async with self.core.db.session() as session:
            tickets = list(
                await session.exec(
                    select(Ticket)
                    .join(Space, col(Space.id) == col(Ticket.space_id))
                    .where(
                        Space.status == SpaceStatus.CANCELLED.value,
                        Ticket.status == TicketStatus.VALID.value,
                        col(Ticket.price_minor) > 0,
                    )
                )
            )
        changes: list[str] = []
        errors: list[str] = []
        for ticket in tickets:
            space = await self.core.spaces.get(ticket.space_id)
            reason = f"The Space was cancelled. {space.cancel_reason or ''}".strip()
            try:
                if await self.core.tickets.refund(ticket, reason=reason):
                    changes.append(f"refunded ticket {ticket.id} (Space #{space.id} cancelled)")
            except (StripeUnavailable, BillingError) as exc:
                errors.append(f"ticket {ticket.id}: {exc}")
        return changes, errors

    async def close_refunded_tickets(self, since: datetime) -> list[str]:
        """Tickets whose refund went through (since `since`) but which are still valid (a
        crash between the refund and closing the ticket): close them now."""
        changes: list[str] = []
        for row in await self.ledger.refunds_in(RefundStatus.SUCCEEDED, updated_since=since):
            if row.ticket_id is None:
                continue
            ticket = await self.core.tickets.get(row.ticket_id)
            if ticket.status == TicketStatus.VALID and await self.core.tickets.close(
                row.ticket_id, refunded=True, reason=row.reason
            ):
                changes.append(f"closed refunded ticket {row.ticket_id}")
        return changes
