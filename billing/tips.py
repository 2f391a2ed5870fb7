"""Tips: a listener pays a host directly, through Connect, with the platform's own cut
for tips (`STAGEPASS_TIP_FEE_PERCENT`, 0 by default). The host is thanked (publicly in
the channel, or privately) once the webhook says the tip was paid."""

from __future__ import annotations

import secrets

from stripe.params.checkout import SessionCreateParams

from billing.accounts import Accounts
from billing.fees import tip_fee
from billing.gateway import checkout_urls, open_session, session_expiry, usable_email
from billing.ledger import Ledger
from billing.models import BillingCheckout, BillingTip, CheckoutKind, CheckoutStatus, TipStatus
from billing.stripe_api import StripeAPI
from bot.actors import Actor
from bot.commands.types import Tip
from bot.core import Core
from bot.errors import InvalidInput, LimitExceeded
from bot.money import currency as lookup_currency
from bot.money import format_minor, parse_amount
from bot.ports import Checkout


class Tips:
    def __init__(self, core: Core, api: StripeAPI, ledger: Ledger, accounts: Accounts) -> None:
        self.core = core
        self.api = api
        self.ledger = ledger
        self.accounts = accounts

    async def start(self, actor: Actor, cmd: Tip) -> tuple[BillingTip, Checkout]:
        """Validate the tip and open its checkout."""
        core, settings = self.core, self.core.settings
        tipper = await core.identities.ensure(actor)
        if cmd.user is not None:
            host = await core.identities.ensure(actor.peer(cmd.user))
        elif cmd.space_id is not None:  # its host, in whichever community they host from
            space = await core.spaces.get_in(cmd.space_id, actor.community_id)
            host = await core.identities.get(space.host_id)
        else:
            raise InvalidInput("Say whom to tip, e.g. /tip @host 5.")
        if host.id == tipper.id:
            raise InvalidInput("You can't tip yourself.")
        cur = lookup_currency(cmd.currency or settings.default_currency)
        amount = parse_amount(cmd.amount, cur.code)
        if amount < cur.minimum_charge:
            raise InvalidInput(
                f"The smallest tip is {format_minor(cur.minimum_charge, cur.code)}.",
                field="amount",
            )
        highest = settings.max_price * 10**cur.exponent
        if amount > highest:
            raise LimitExceeded(
                f"The largest tip is {format_minor(highest, cur.code)}.", field="amount"
            )
        if cmd.space_id is not None:
            await core.spaces.get_in(cmd.space_id, actor.community_id)
        destination = None
        if not self.api.test_mode:
            destination = (await self.accounts.require_charges(host, you=False)).account_id
        now = core.clock.now()
        tip = BillingTip(
            id=secrets.token_hex(8),
            tipper_id=tipper.id or 0,
            host_id=host.id or 0,
            space_id=cmd.space_id,
            amount_minor=amount,
            currency=cur.code,
            fee_minor=tip_fee(amount, settings),
            message=cmd.message[:300],
            public=cmd.public,
            status=TipStatus.PENDING,
            created_at=now,
        )
        await self.ledger.add_tip(tip)
        metadata = {
            "stagepass_kind": CheckoutKind.TIP.value,
            "stagepass_tip": tip.id,
            "stagepass_host": host.key[:500],
            "stagepass_tipper": tipper.key[:500],
        }
        success_url, cancel_url = checkout_urls(settings.resolved_public_url)
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": cur.code,
                        "unit_amount": amount,
                        "product_data": {"name": f"Tip for {host.display_name}"[:250]},
                    },
                    "quantity": 1,
                }
            ],
            "payment_intent_data": {
                "description": f"Stagepass tip for {host.display_name}"[:1000],
                "metadata": metadata,
            },
            "metadata": metadata,
            "client_reference_id": tip.id,
            "expires_at": session_expiry(
                now.replace(microsecond=0), now
            ),  # Stripe's shortest window: a tip holds no seat
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        if destination is not None:
            params["payment_intent_data"]["transfer_data"] = {"destination": destination}
            if tip.fee_minor > 0:
                params["payment_intent_data"]["application_fee_amount"] = tip.fee_minor
        if (email := usable_email(actor.email)) is not None:
            params["customer_email"] = email
        session = await open_session(self.api, params, idempotency_key=f"stagepass-tip-{tip.id}")
        await self.ledger.add_checkout(
            BillingCheckout(
                session_id=session.id,
                kind=CheckoutKind.TIP,
                tip_id=tip.id,
                amount_minor=amount,
                currency=cur.code,
                fee_minor=tip.fee_minor,
                destination=destination,
                status=CheckoutStatus.OPEN,
                test_mode=self.api.test_mode,
                created_at=now,
            )
        )
        assert session.url is not None
        return tip, Checkout(url=session.url, test_mode=self.api.test_mode)
