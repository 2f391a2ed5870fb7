"""Payments in the fake Stripe API: Checkout Sessions, PaymentIntents, Charges, transfers
and application fees (Connect destination charges), refunds and disputes."""

from __future__ import annotations

import copy
import re
from decimal import Decimal

from .stripe_objects import (
    Obj,
    StripeStore,
    as_bool,
    as_int,
    check_currency,
    check_url,
    money,
    new_id,
)
from .stripe_params import FakeAPIError

# Stripe's minimum charge amounts, in the smallest currency unit, for the currencies we use.
MIN_CHARGE = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "jpy": 50}


class StripeState(StripeStore):
    """Everything the fake knows; the HTTP layer and the test helpers call into this."""

    # ------------------------------------------------------------------ Checkout

    def create_session(self, p: Obj, request: Obj | None = None) -> Obj:
        mode = p.get("mode")
        if not mode:
            raise FakeAPIError("Missing required param: mode.", "mode")
        if mode != "payment":
            raise FakeAPIError(f"The fake Stripe supports only mode=payment, not {mode}", "mode")
        items = p.get("line_items") or []
        if not items:
            raise FakeAPIError("`line_items` is required in `payment` mode.", "line_items")
        currency, total = None, 0
        for i, item in enumerate(items):
            at = f"line_items[{i}]"
            if "price" in item:
                raise FakeAPIError(f"No such price: '{item['price']}'", f"{at}[price]")
            data = item.get("price_data")
            if not data:
                raise FakeAPIError(f"You must specify either `price` or `price_data` in {at}.", at)
            if "quantity" not in item:
                raise FakeAPIError(f"Quantity is required. Add `quantity` to `{at}`.", at)
            quantity = as_int(item["quantity"], f"{at}[quantity]", 1)
            cur = check_currency(data["currency"], f"{at}[price_data][currency]")
            if "unit_amount" in data:
                unit = as_int(data["unit_amount"], f"{at}[price_data][unit_amount]")
            elif "unit_amount_decimal" in data:
                unit = int(Decimal(data["unit_amount_decimal"]))
            else:
                raise FakeAPIError(
                    "You must specify either `unit_amount` or `unit_amount_decimal`.",
                    f"{at}[price_data][unit_amount]",
                )
            if "product" in data:
                raise FakeAPIError(f"No such product: '{data['product']}'", f"{at}[price_data]")
            if "product_data" not in data:
                raise FakeAPIError(
                    "You must specify either `product` or `product_data`.", f"{at}[price_data]"
                )
            if currency not in (None, cur):
                raise FakeAPIError("All line items must use one currency.", f"{at}[price_data]")
            currency, total = cur, total + unit * quantity
        if "currency" in p and check_currency(p["currency"], "currency") != currency:
            raise FakeAPIError("`currency` does not match the line items' currency.", "currency")
        assert currency is not None
        if total < MIN_CHARGE.get(currency, 0):
            raise FakeAPIError(
                "The Checkout Session's total amount due must add up to at least "
                f"{money(MIN_CHARGE[currency], currency)} {currency}",
                "line_items",
            )
        expires_at = self.now + 86400
        if "expires_at" in p:
            expires_at = as_int(p["expires_at"], "expires_at", None)
            if expires_at - self.now < 1800:
                raise FakeAPIError(
                    "The `expires_at` timestamp must be at least 30 minutes from Checkout "
                    "Session creation.",
                    "expires_at",
                )
            if expires_at - self.now > 86400:
                raise FakeAPIError(
                    "The `expires_at` timestamp must be less than 24 hours from Checkout "
                    "Session creation.",
                    "expires_at",
                )
        self._check_payment_intent_data(p.get("payment_intent_data") or {}, total)
        email = p.get("customer_email")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise FakeAPIError(f"Invalid email address: {email}", "customer_email")
        for name in ("success_url", "cancel_url"):
            check_url(p.get(name), name)
        session = self._base(
            new_id("cs_test", 58),
            "checkout.session",
            amount_subtotal=total,
            amount_total=total,
            cancel_url=p.get("cancel_url"),
            client_reference_id=p.get("client_reference_id"),
            currency=currency,
            customer=p.get("customer"),
            customer_details=None,
            customer_email=email,
            expires_at=expires_at,
            locale=p.get("locale"),
            metadata=p.get("metadata") or {},
            mode=mode,
            payment_intent=None,
            payment_status="unpaid",
            status="open",
            success_url=p.get("success_url"),
            ui_mode="hosted",
        )
        session["url"] = f"{self.base_url}/pay/{session['id']}"
        self.sessions[session["id"]] = session
        self.session_params[session["id"]] = copy.deepcopy(p)
        return session

    def _check_payment_intent_data(self, pid: Obj, total: int) -> None:
        at = "payment_intent_data"
        transfer, on_behalf_of = pid.get("transfer_data"), pid.get("on_behalf_of")
        if transfer:
            self._payable_account(
                transfer["destination"],
                f"{at}[transfer_data][destination]",
                "destination",
                "transfers",
            )
            if "amount" in transfer:
                as_int(transfer["amount"], f"{at}[transfer_data][amount]", 0, total)
        if on_behalf_of:
            self._payable_account(on_behalf_of, f"{at}[on_behalf_of]", "account", "card_payments")
        if "application_fee_amount" in pid:
            param = f"{at}[application_fee_amount]"
            fee = as_int(pid["application_fee_amount"], param)
            if not transfer and not on_behalf_of:
                raise FakeAPIError(
                    "Can only apply an application_fee_amount when the PaymentIntent is "
                    "attempting a direct payment (using an OAuth key or Stripe-Account header) "
                    "or destination payment (using `transfer_data[destination]`).",
                    param,
                )
            if transfer and "amount" in transfer:
                raise FakeAPIError(
                    "You cannot specify both `application_fee_amount` and `transfer_data[amount]`.",
                    param,
                )
            if fee > total:
                raise FakeAPIError(
                    f"The application fee ({fee}) cannot exceed the amount ({total}).", param
                )

    def expire_session(self, session_id: str, request: Obj | None = None) -> Obj:
        session = self.get(self.sessions, session_id, "checkout.session")
        if session["status"] != "open":
            raise FakeAPIError(
                'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f'Checkout Session has a status of "{session["status"]}".',
                code="checkout_session_not_open",
            )
        session.update(status="expired", url=None)
        self.emit("checkout.session.expired", session, request=request)
        return session

    def complete_session(
        self, session_id: str, *, paid: bool = True, email: str | None = None
    ) -> Obj:
        """The buyer pays. paid=False models a delayed method (completed, still unpaid)."""
        session = self.get(self.sessions, session_id, "checkout.session")
        if session["status"] != "open":
            raise FakeAPIError(f"Checkout Session {session_id} is {session['status']}, not open")
        if self.now >= session["expires_at"]:
            raise FakeAPIError(f"Checkout Session {session_id} is past its expires_at")
        pid = self.session_params[session_id].get("payment_intent_data") or {}
        amount, currency = session["amount_total"], session["currency"]
        transfer_data = pid.get("transfer_data")
        fee_amount = int(pid["application_fee_amount"]) if "application_fee_amount" in pid else None
        charge_id, pi_id = new_id("ch"), new_id("pi")
        common = {
            "amount": amount,
            "currency": currency,
            "metadata": pid.get("metadata") or {},
            "application_fee_amount": fee_amount,
            "description": pid.get("description"),
            "on_behalf_of": pid.get("on_behalf_of"),
            "transfer_group": pid.get("transfer_group"),
            "transfer_data": None,
            "receipt_email": pid.get("receipt_email"),
            "payment_method": new_id("pm"),
        }
        transfer = fee = None
        if transfer_data:
            t_amount = int(transfer_data.get("amount", amount))
            common["transfer_data"] = {
                "amount": t_amount if "amount" in transfer_data else None,
                "destination": transfer_data["destination"],
            }
            transfer = self._base(
                "tr",
                "transfer",
                amount=t_amount,
                amount_reversed=0,
                currency=currency,
                destination=transfer_data["destination"],
                reversed=False,
                source_transaction=charge_id,
                reversals=[],
            )
            self.transfers[transfer["id"]] = transfer
        if fee_amount:
            fee = self._base(
                "fee",
                "application_fee",
                amount=fee_amount,
                amount_refunded=0,
                currency=currency,
                refunded=False,
                charge=charge_id,
                account=(transfer_data or {}).get("destination") or pid.get("on_behalf_of"),
            )
            self.application_fees[fee["id"]] = fee
        email = email or session["customer_email"] or "buyer@example.com"
        charge = self._base(
            charge_id,
            "charge",
            **common,
            amount_captured=amount if paid else 0,
            amount_refunded=0,
            refunded=False,
            captured=paid,
            paid=paid,
            status="succeeded" if paid else "pending",
            disputed=False,
            payment_intent=pi_id,
            application_fee=fee and fee["id"],
            transfer=transfer and transfer["id"],
            balance_transaction=new_id("txn"),
            billing_details={"email": email, "name": None},
        )
        intent = self._base(
            pi_id,
            "payment_intent",
            **common,
            amount_received=amount if paid else 0,
            status="succeeded" if paid else "processing",
            latest_charge=charge_id,
        )
        self.charges[charge_id], self.payment_intents[pi_id] = charge, intent
        session.update(
            status="complete",
            payment_status="paid" if paid else "unpaid",
            url=None,
            payment_intent=pi_id,
            customer_details={"email": email, "name": None},
        )
        if paid:
            self.emit("payment_intent.succeeded", intent)
            self.emit("charge.succeeded", charge)
        else:
            self.emit("payment_intent.processing", intent)
        self.emit("checkout.session.completed", session)
        return session

    def settle_async_payment(self, session_id: str, *, succeeded: bool = True) -> Obj:
        session = self.get(self.sessions, session_id, "checkout.session")
        if session["status"] != "complete" or session["payment_status"] != "unpaid":
            raise FakeAPIError(f"Checkout Session {session_id} has no pending payment")
        intent = self.payment_intents[session["payment_intent"]]
        charge = self.charges[intent["latest_charge"]]
        if succeeded:
            session["payment_status"] = "paid"
            intent.update(status="succeeded", amount_received=intent["amount"])
            charge.update(
                status="succeeded", paid=True, captured=True, amount_captured=charge["amount"]
            )
            self.emit("checkout.session.async_payment_succeeded", session)
        else:
            intent["status"] = "requires_payment_method"
            charge["status"] = "failed"
            self.emit("checkout.session.async_payment_failed", session)
        return session

    # ------------------------------------------------------------------ refunds, disputes

    def create_refund(self, p: Obj, request: Obj | None = None) -> Obj:
        charge_id, pi_id = p.get("charge"), p.get("payment_intent")
        if not charge_id and not pi_id:
            raise FakeAPIError(
                "One of the following params should be provided for this request: "
                "payment_intent or charge."
            )
        if pi_id:
            intent = self.get(self.payment_intents, pi_id, "payment_intent", "payment_intent")
            latest = intent["latest_charge"]
            if not latest or self.charges[latest]["status"] != "succeeded":
                raise FakeAPIError(
                    f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                    "payment_intent",
                )
            if charge_id and charge_id != latest:
                raise FakeAPIError(f"Charge {charge_id} does not belong to {pi_id}.", "charge")
            charge_id = latest
        charge = self.get(self.charges, str(charge_id), "charge", "charge")
        if charge["disputed"]:
            raise FakeAPIError(
                f"Charge {charge_id} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining <= 0:
            raise FakeAPIError(
                f"Charge {charge_id} has already been refunded.", code="charge_already_refunded"
            )
        amount = as_int(p["amount"], "amount", 1) if "amount" in p else remaining
        if amount > remaining:
            cur = charge["currency"]
            raise FakeAPIError(
                f"Refund amount ({money(amount, cur)}) is greater than unrefunded amount on "
                f"charge ({money(remaining, cur)})",
                "amount",
            )
        if as_bool(p.get("reverse_transfer")) and not charge["transfer"]:
            raise FakeAPIError(
                "reverse_transfer can only be used on charges with a transfer.",
                "reverse_transfer",
            )
        refund = self._base(
            "re",
            "refund",
            amount=amount,
            charge=charge_id,
            currency=charge["currency"],
            payment_intent=charge["payment_intent"],
            reason=p.get("reason"),
            status="succeeded",
            metadata=p.get("metadata") or {},
            transfer_reversal=None,
            balance_transaction=new_id("txn"),
        )
        if as_bool(p.get("reverse_transfer")):
            transfer = self.transfers[charge["transfer"]]
            part = min(
                amount * transfer["amount"] // charge["amount"],
                transfer["amount"] - transfer["amount_reversed"],
            )
            reversal = {"id": new_id("trr"), "object": "transfer_reversal", "amount": part}
            transfer["reversals"].append(reversal)
            transfer["amount_reversed"] += part
            transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
            refund["transfer_reversal"] = reversal["id"]
        if as_bool(p.get("refund_application_fee")) and charge["application_fee"]:
            fee = self.application_fees[charge["application_fee"]]
            part = min(
                amount * fee["amount"] // charge["amount"], fee["amount"] - fee["amount_refunded"]
            )
            fee["amount_refunded"] += part
            fee["refunded"] = fee["amount_refunded"] >= fee["amount"]
        self.refunds[refund["id"]] = refund
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self.emit("charge.refunded", charge, previous=previous, request=request)
        self.emit("refund.created", refund, request=request)
        return refund

    def dispute_charge(
        self, charge_id: str, *, amount: int | None = None, reason: str = "fraudulent"
    ) -> Obj:
        charge = self.get(self.charges, charge_id, "charge")
        dispute = self._base(
            "dp",
            "dispute",
            amount=amount or charge["amount"] - charge["amount_refunded"],
            charge=charge_id,
            currency=charge["currency"],
            reason=reason,
            payment_intent=charge["payment_intent"],
            status="needs_response",
            is_charge_refundable=False,
            evidence_details={"due_by": self.now + 7 * 86400, "has_evidence": False},
        )
        self.disputes[dispute["id"]] = dispute
        charge["disputed"] = True
        self.emit("charge.dispute.created", dispute)
        return dispute

    def close_dispute(self, dispute_id: str, *, status: str = "lost") -> Obj:
        dispute = self.get(self.disputes, dispute_id, "dispute")
        dispute["status"] = status
        self.emit("charge.dispute.closed", dispute)
        return dispute
