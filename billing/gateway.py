"""The core's `PaymentGateway`, with Stripe Checkout and Connect destination charges.

Checkout Session parameters are built in one place (`ticket_session_params`): the
buyer pays the platform, Stripe moves the price minus the application fee to the host's
connected account (`transfer_data.destination`), and the fee stays with the platform.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

import structlog
from stripe.params.checkout import SessionCreateParams

from billing.accounts import Accounts
from billing.errors import PaymentUnavailable, StripeRejected, StripeUnavailable
from billing.fees import ticket_fee
from billing.ledger import Ledger
from billing.models import BillingCheckout, CheckoutKind, CheckoutStatus
from billing.refunds import Refunds
from billing.stripe_api import CheckoutSession, StripeAPI
from bot.core import Core
from bot.models import Hold, Identity, Space, Ticket
from bot.ports import Checkout, TipTotals

log = structlog.get_logger(__name__)

CHECKOUT_DONE_PATH = "/billing/checkout/done"
CHECKOUT_CANCELLED_PATH = "/billing/checkout/cancelled"
#: Stripe takes `expires_at` from 30 minutes to 24 hours after the session's creation;
#: the margin covers the time until Stripe sees the request and clock skew.
STRIPE_MIN_EXPIRY, STRIPE_MAX_EXPIRY, EXPIRY_MARGIN = 30 * 60, 24 * 3600, 60
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def session_expiry(hold_expires_at: datetime, now: datetime) -> int:
    """The session ends with its hold: `expires_at` is the hold's expiry, moved into
    Stripe's window when it falls outside. (A 30-minute hold is shorter than Stripe's
    minimum plus the margin, so its session ends up to a minute after the hold; a payment
    in that minute takes its seats again if they are free, or is refunded in full.)"""
    start = math.ceil(now.timestamp())
    wanted = math.ceil(hold_expires_at.timestamp())
    return min(
        max(wanted, start + STRIPE_MIN_EXPIRY + EXPIRY_MARGIN),
        start + STRIPE_MAX_EXPIRY - EXPIRY_MARGIN,
    )


def usable_email(email: str | None) -> str | None:
    """The buyer's email for Stripe's receipt, if it looks like one (Stripe refuses the
    whole checkout over a malformed one)."""
    return email if email and _EMAIL.match(email) else None


def checkout_urls(public_url: str) -> tuple[str, str]:
    return (
        f"{public_url}{CHECKOUT_DONE_PATH}?session_id={{CHECKOUT_SESSION_ID}}",
        f"{public_url}{CHECKOUT_CANCELLED_PATH}",
    )


def ticket_session_params(
    *,
    hold: Hold,
    space: Space,
    buyer: Identity,
    email: str | None,
    fee_minor: int,
    destination: str | None,
    expires_at: int,
    public_url: str,
) -> SessionCreateParams:
    """What Stripe is asked for when `buyer` pays for `hold`."""
    metadata = {
        "stagepass_kind": CheckoutKind.TICKET.value,
        "stagepass_hold": hold.id,
        "stagepass_space": str(space.id),
        "stagepass_buyer": buyer.key[:500],
    }
    success_url, cancel_url = checkout_urls(public_url)
    params: SessionCreateParams = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": hold.currency,
                    "unit_amount": hold.amount_minor // hold.quantity,
                    "product_data": {
                        "name": f"Ticket: {space.title}"[:250],
                        "description": f"Space #{space.id}, starts "
                        f"{space.starts_at:%Y-%m-%d %H:%M} UTC",
                    },
                },
                "quantity": hold.quantity,
            }
        ],
        "payment_intent_data": {
            "description": f"Stagepass Space #{space.id}: {space.title}"[:1000],
            "metadata": metadata,
        },
        "metadata": metadata,
        "client_reference_id": hold.id,
        "expires_at": expires_at,
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    if destination is not None:
        params["payment_intent_data"]["transfer_data"] = {"destination": destination}
        if fee_minor > 0:
            params["payment_intent_data"]["application_fee_amount"] = fee_minor
    if (usable := usable_email(email)) is not None:
        params["customer_email"] = usable
    return params


async def open_session(
    api: StripeAPI, params: SessionCreateParams, *, idempotency_key: str
) -> CheckoutSession:
    """Create a Checkout Session; Stripe's failures become a message for the chat."""
    try:
        session = await api.create_session(params, idempotency_key=idempotency_key)
    except StripeUnavailable as exc:
        raise PaymentUnavailable(
            "Stripe can't be reached right now; nothing was charged. Please try again in a minute."
        ) from exc
    except StripeRejected as exc:
        log.error("stripe refused a checkout", error=exc.message, code=exc.code, param=exc.param)
        raise PaymentUnavailable(
            "Stripe refused to open this checkout; nothing was charged. The operator has "
            "the details."
        ) from exc
    if not session.url:
        raise PaymentUnavailable("Stripe opened a checkout without a payment page.")
    return session


class StripeGateway:
    """`bot.ports.PaymentGateway` for the core."""

    def __init__(
        self, core: Core, api: StripeAPI, ledger: Ledger, accounts: Accounts, refunds: Refunds
    ) -> None:
        self.core = core
        self.api = api
        self.ledger = ledger
        self.accounts = accounts
        self.refunds = refunds

    @property
    def test_mode(self) -> bool:
        return self.api.test_mode

    async def ensure_can_sell(self, host: Identity, space_price_minor: int) -> None:
        if space_price_minor > 0 and not self.api.test_mode:
            await self.accounts.require_charges(host)

    async def start_checkout(
        self, *, hold: Hold, space: Space, buyer: Identity, email: str | None
    ) -> Checkout:
        destination = None
        if not self.api.test_mode:
            host = await self.core.identities.get(space.host_id)
            destination = (await self.accounts.require_charges(host, you=False)).account_id
        settings = self.core.settings
        now = self.core.clock.now()
        fee = ticket_fee(hold.amount_minor, settings)
        params = ticket_session_params(
            hold=hold,
            space=space,
            buyer=buyer,
            email=email,
            fee_minor=fee,
            destination=destination,
            expires_at=session_expiry(hold.expires_at, now),
            public_url=settings.resolved_public_url,
        )
        session = await open_session(
            self.api, params, idempotency_key=f"stagepass-checkout-{hold.id}"
        )
        await self.ledger.add_checkout(
            BillingCheckout(
                session_id=session.id,
                kind=CheckoutKind.TICKET,
                hold_id=hold.id,
                amount_minor=hold.amount_minor,
                currency=hold.currency,
                fee_minor=fee,
                destination=destination,
                status=CheckoutStatus.OPEN,
                test_mode=self.api.test_mode,
                created_at=now,
            )
        )
        assert session.url is not None
        return Checkout(url=session.url, test_mode=self.api.test_mode)

    async def refund(self, ticket: Ticket, *, reason: str) -> None:
        await self.refunds.refund_ticket(ticket, reason=reason)

    async def tips(self, space_id: int) -> TipTotals:
        return await self.ledger.paid_tips(space_id)

    async def pay_link(self, hold: Hold) -> str | None:
        """The open Checkout Session's URL, read back from Stripe (we keep no URL)."""
        checkout = await self.ledger.checkout_for_hold(hold.id)
        if checkout is None or checkout.status != CheckoutStatus.OPEN:
            return None
        try:
            session = await self.api.retrieve_session(checkout.session_id)
        except (StripeUnavailable, StripeRejected):
            return None
        return session.url if session.status == "open" else None
