"""The keyless TEST MODE: a local stand-in for the Stripe calls billing makes.

Only ever built when no `STRIPE_SECRET_KEY` is set (`billing.assembly`). It keeps
Stripe-shaped records in `billing_dev_objects` (so a restart loses nothing) and answers
`StripeAPI` from them; the rest of billing cannot tell it from Stripe. Nothing here
moves money: `pay()` is what the TEST MODE page's Pay button calls, and the event it
returns is signed with the local secret and sent through the real webhook handler.

No Connect: hosts need no account in TEST MODE, and disputes cannot happen.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any

import sqlalchemy as sa
import stripe
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col
from stripe.params import AccountCreateParams, AccountLinkCreateParams, RefundCreateParams
from stripe.params.checkout import SessionCreateParams

from billing.errors import StripeNotFound, StripeRejected
from billing.models import BillingDevObject
from billing.stripe_api import (
    Account,
    Charge,
    CheckoutSession,
    Dispute,
    EventRef,
    Refund,
    charge_from,
    event_from,
    refund_from,
    session_from,
)
from bot.clock import Clock
from bot.db import Database

Obj = dict[str, Any]
DEV_CHECKOUT_PATH = "/billing/dev/checkout"
_NO_CONNECT = "TEST MODE has no Stripe Connect: set STRIPE_SECRET_KEY to onboard hosts."


def _derived_id(prefix: str, key: str) -> str:
    """The same id for the same idempotency key: a retried create finds the first one."""
    return f"{prefix}_dev_{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def _new_id(prefix: str) -> str:
    return f"{prefix}_dev_{secrets.token_hex(12)}"


class DevStripe:
    test_mode = True

    def __init__(self, db: Database, clock: Clock, *, public_url: str) -> None:
        self.db = db
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self._insert = sqlite.insert if db.is_sqlite else postgresql.insert

    @property
    def now(self) -> int:
        return int(self.clock.now().timestamp())

    # --- storage -------------------------------------------------------------------------

    async def _get(self, obj_id: str, conn: AsyncConnection | None = None) -> Obj | None:
        query = sa.select(col(BillingDevObject.data)).where(col(BillingDevObject.id) == obj_id)
        if conn is not None:
            row = (await conn.execute(query)).first()
        else:
            async with self.db.engine.connect() as own:
                row = (await own.execute(query)).first()
        return dict(row[0]) if row is not None else None

    async def _must(self, obj_id: str, name: str, conn: AsyncConnection | None = None) -> Obj:
        found = await self._get(obj_id, conn)
        if found is None:
            raise StripeNotFound(f"No such {name}: '{obj_id}'", code="resource_missing")
        return found

    async def _put(self, conn: AsyncConnection, obj: Obj) -> None:
        values = {"id": obj["id"], "object": obj["object"], "created": obj["created"], "data": obj}
        await conn.execute(
            self._insert(BillingDevObject)
            .values(**values)
            .on_conflict_do_update(index_elements=["id"], set_={"data": obj})
        )

    async def _list(self, kind: str, created_gte: int) -> list[Obj]:
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(col(BillingDevObject.data))
                .where(
                    col(BillingDevObject.object) == kind,
                    col(BillingDevObject.created) >= created_gte,
                )
                .order_by(col(BillingDevObject.created).desc())
            )
            return [dict(row[0]) for row in rows]

    def _event(self, type_: str, obj: Obj) -> Obj:
        return {
            "id": _new_id("evt"),
            "object": "event",
            "api_version": stripe.api_version,
            "created": self.now,
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        }

    # --- Checkout ------------------------------------------------------------------------

    async def create_session(
        self, params: SessionCreateParams, *, idempotency_key: str
    ) -> CheckoutSession:
        session_id = _derived_id("cs_test", idempotency_key)
        if (found := await self._get(session_id)) is not None:
            return session_from(found)
        p: Any = params  # read as plain data, as Stripe would
        items = [dict(item) for item in p.get("line_items") or []]
        if not items:
            raise StripeRejected("line_items is required", param="line_items")
        lines, total, currency = [], 0, ""
        for item in items:
            price: Any = item["price_data"]
            quantity = int(item.get("quantity") or 1)
            unit = int(price["unit_amount"])
            currency = str(price["currency"])
            total += unit * quantity
            lines.append(
                {"name": price["product_data"]["name"], "quantity": quantity, "unit_amount": unit}
            )
        intent_data: Any = p.get("payment_intent_data") or {}
        fee = intent_data.get("application_fee_amount")
        session: Obj = {
            "id": session_id,
            "object": "checkout.session",
            "amount_total": total,
            "currency": currency,
            "created": self.now,
            "expires_at": int(p.get("expires_at") or self.now + 86400),
            "livemode": False,
            "metadata": dict(p.get("metadata") or {}),
            "mode": "payment",
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": p.get("success_url"),
            "cancel_url": p.get("cancel_url"),
            "url": f"{self.public_url}{DEV_CHECKOUT_PATH}/{session_id}",
            # not Stripe fields: what the TEST MODE page shows
            "dev_lines": lines,
            "application_fee_amount": int(fee) if fee is not None else None,
        }
        async with self.db.write_conn() as conn:
            await self._put(conn, session)
        return session_from(session)

    async def session_data(self, session_id: str) -> Obj:
        """The raw record, for the TEST MODE page."""
        return await self._must(session_id, "checkout.session")

    async def retrieve_session(self, session_id: str) -> CheckoutSession:
        session = await self._must(session_id, "checkout.session")
        if session.get("payment_intent"):
            session["payment_intent"] = await self._get(session["payment_intent"])
        return session_from(session)

    async def expire_session(self, session_id: str) -> CheckoutSession:
        async with self.db.write_conn() as conn:
            session = await self._must(session_id, "checkout.session", conn)
            if session["status"] != "open":
                raise StripeRejected(
                    f"Checkout Session {session_id} is {session['status']}, not open",
                    code="checkout_session_not_open",
                )
            session.update(status="expired", url=None)
            await self._put(conn, session)
            event = self._event("checkout.session.expired", session)
            await self._put(conn, event)
        return session_from(session)

    async def pay(self, session_id: str) -> Obj:
        """The TEST MODE Pay button: the session completes with a (pretend) payment.
        Returns the `checkout.session.completed` event to send to the webhook."""
        async with self.db.write_conn() as conn:
            session = await self._must(session_id, "checkout.session", conn)
            if session["status"] != "open":
                raise StripeRejected(
                    f"This checkout is {session['status']}; nothing to pay.",
                    code="checkout_session_not_open",
                )
            if self.now >= int(session["expires_at"]):
                raise StripeRejected("This checkout has expired.", code="checkout_expired")
            charge_id, intent_id = _new_id("ch"), _new_id("pi")
            common = {
                "amount": session["amount_total"],
                "currency": session["currency"],
                "created": self.now,
                "livemode": False,
                "metadata": session["metadata"],
            }
            charge = {
                "id": charge_id,
                "object": "charge",
                **common,
                "amount_refunded": 0,
                "refunded": False,
                "disputed": False,
                "paid": True,
                "status": "succeeded",
                "payment_intent": intent_id,
                "application_fee_amount": session.get("application_fee_amount"),
            }
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                **common,
                "status": "succeeded",
                "latest_charge": charge_id,
            }
            session.update(
                status="complete", payment_status="paid", payment_intent=intent_id, url=None
            )
            event = self._event("checkout.session.completed", session)
            for obj in (charge, intent, session, event):
                await self._put(conn, obj)
        return event

    async def list_sessions(self, *, created_gte: int) -> AsyncIterator[CheckoutSession]:
        for session in await self._list("checkout.session", created_gte):
            if session.get("payment_intent"):
                session["payment_intent"] = await self._get(session["payment_intent"])
            yield session_from(session)

    # --- payments ------------------------------------------------------------------------

    async def retrieve_charge(self, charge_id: str) -> Charge:
        return charge_from(await self._must(charge_id, "charge"))

    async def retrieve_dispute(self, dispute_id: str) -> Dispute:
        raise StripeNotFound(f"No such dispute: '{dispute_id}'", code="resource_missing")

    async def create_refund(self, params: RefundCreateParams, *, idempotency_key: str) -> Refund:
        refund_id = _derived_id("re", idempotency_key)
        p: Any = params
        async with self.db.write_conn() as conn:
            if (found := await self._get(refund_id, conn)) is not None:
                return refund_from(found)
            charge_id = p.get("charge")
            if charge_id is None:
                intent = await self._must(str(p.get("payment_intent")), "payment_intent", conn)
                charge_id = intent["latest_charge"]
            charge = await self._must(str(charge_id), "charge", conn)
            remaining = int(charge["amount"]) - int(charge["amount_refunded"])
            if remaining <= 0:
                raise StripeRejected(
                    f"Charge {charge_id} has already been refunded.",
                    code="charge_already_refunded",
                )
            amount = int(p.get("amount") or remaining)
            if amount > remaining:
                raise StripeRejected(
                    "Refund amount is greater than unrefunded amount", param="amount"
                )
            charge["amount_refunded"] = int(charge["amount_refunded"]) + amount
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            refund = {
                "id": refund_id,
                "object": "refund",
                "amount": amount,
                "charge": charge_id,
                "created": self.now,
                "currency": charge["currency"],
                "metadata": dict(p.get("metadata") or {}),
                "payment_intent": charge["payment_intent"],
                "status": "succeeded",
            }
            for obj in (charge, refund, self._event("charge.refunded", charge)):
                await self._put(conn, obj)
        return refund_from(refund)

    # --- Connect (none in TEST MODE) -----------------------------------------------------

    async def create_account(self, params: AccountCreateParams, *, idempotency_key: str) -> Account:
        raise StripeRejected(_NO_CONNECT)

    async def retrieve_account(self, account_id: str) -> Account:
        raise StripeNotFound(f"No such account: '{account_id}'", code="resource_missing")

    async def create_account_link(self, params: AccountLinkCreateParams) -> str:
        raise StripeRejected(_NO_CONNECT)

    # --- events --------------------------------------------------------------------------

    async def list_events(
        self, *, types: Sequence[str], created_gte: int
    ) -> AsyncIterator[EventRef]:
        for event in await self._list("event", created_gte):
            if event["type"] in types:
                yield event_from(event)

    async def aclose(self) -> None:
        return None
