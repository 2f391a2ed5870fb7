"""State and business rules of the fake Stripe API; no HTTP here (see stripe_api.py).

Every mutation that Stripe would announce appends an Event to `events` and to `outbox`;
the HTTP layer drains `outbox` into webhook deliveries.
"""

from __future__ import annotations

import copy
import re
import secrets
import string
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import stripe

from .stripe_params import FakeAPIError

Obj = dict[str, Any]
API_VERSION = stripe.api_version
# Stripe's minimum charge amounts, in the smallest currency unit, for the currencies we use.
MIN_CHARGE = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "jpy": 50}
DEFAULT_DUE = [
    "business_profile.url", "business_type", "external_account",
    "representative.first_name", "tos_acceptance.date", "tos_acceptance.ip",
]
_ALNUM = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALNUM) for _ in range(length))


def _int(value: Any, param: str, minimum: int | None = 0, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value)):
        raise FakeAPIError(f"Invalid integer: {value}", param)
    number = int(value)
    if minimum is not None and number < minimum:
        raise FakeAPIError(f"This value must be greater than or equal to {minimum}.", param)
    if maximum is not None and number > maximum:
        raise FakeAPIError(f"This value must be less than or equal to {maximum}.", param)
    return number


def _bool(value: Any) -> bool:
    return value in (True, "true")


def _currency(value: Any, param: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z]{3}", value):
        raise FakeAPIError(f"Invalid currency: {value}. Use a lowercase ISO code.", param)
    return value


def _url(value: Any, param: str) -> None:
    if value is not None and not re.fullmatch(r"https?://[^\s/]+\S*", str(value)):
        raise FakeAPIError("Not a valid URL", param, code="url_invalid")


def _money(amount: int, currency: str) -> str:
    return f"${amount / 100:.2f}" if currency == "usd" else f"{amount / 100:.2f} {currency}"


def _created_matches(created: int, cond: Any) -> bool:
    if cond is None:
        return True
    if not isinstance(cond, dict):
        return created == _int(cond, "created")
    ops = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
    return all(ops[op](created, _int(v, f"created[{op}]")) for op, v in cond.items())


class StripeState:
    """All objects, keyed by id, plus the event log. `now` is the injectable clock."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock: Callable[[], float] = clock or time.time
        self.frozen_now: int | None = None
        self.offset = 0
        self.base_url = ""
        self.accounts: dict[str, Obj] = {}
        self.account_links: list[Obj] = []
        self.sessions: dict[str, Obj] = {}
        self.session_params: dict[str, Obj] = {}  # create params, as parsed
        self.payment_intents: dict[str, Obj] = {}
        self.charges: dict[str, Obj] = {}
        self.refunds: dict[str, Obj] = {}
        self.disputes: dict[str, Obj] = {}
        self.transfers: dict[str, Obj] = {}
        self.application_fees: dict[str, Obj] = {}
        self.events: list[Obj] = []
        self.outbox: list[Obj] = []
        self.by_prefix = {
            "cs": self.sessions, "pi": self.payment_intents, "ch": self.charges,
            "re": self.refunds, "acct": self.accounts, "dp": self.disputes,
            "tr": self.transfers, "fee": self.application_fees,
        }

    @property
    def now(self) -> int:
        """Stripe's idea of the current time: `clock()` moved by `advance()`, or frozen by
        assigning an int (assign None to unfreeze)."""
        if self.frozen_now is not None:
            return self.frozen_now
        return int(self.clock()) + self.offset

    @now.setter
    def now(self, value: float | None) -> None:
        self.frozen_now = None if value is None else int(value)

    def advance(self, seconds: float) -> int:
        if self.frozen_now is not None:
            self.frozen_now += int(seconds)
        else:
            self.offset += int(seconds)
        return self.now

    # ------------------------------------------------------------------ helpers

    def _base(self, obj_id: str, obj_type: str, **fields: Any) -> Obj:
        """`obj_id` is a full id, or just a prefix ("ch") for a fresh one."""
        return {
            "id": obj_id if "_" in obj_id else new_id(obj_id), "object": obj_type, "created": self.now, "livemode": False,
            "metadata": {}, **fields,
        }

    def get(self, table: dict[str, Obj], obj_id: str, name: str, param: str = "id") -> Obj:
        if obj_id not in table:
            status = 404 if param == "id" else 400
            raise FakeAPIError(
                f"No such {name}: '{obj_id}'", param, code="resource_missing", status=status
            )
        return table[obj_id]

    def find(self, obj_id: str) -> Obj | None:
        if obj_id.startswith("evt_"):
            return next((e for e in self.events if e["id"] == obj_id), None)
        table = self.by_prefix.get(obj_id.split("_", 1)[0])
        return table.get(obj_id) if table is not None else None

    def emit(
        self, type_: str, obj: Obj, *, previous: Obj | None = None,
        request: Obj | None = None, account: str | None = None,
    ) -> Obj:
        data: Obj = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = copy.deepcopy(previous)
        event = {
            "id": new_id("evt"), "object": "event", "api_version": API_VERSION,
            "created": self.now, "data": data, "livemode": False, "pending_webhooks": 1,
            "request": request or {"id": None, "idempotency_key": None}, "type": type_,
        }
        if account:
            event["account"] = account
        self.events.append(event)
        self.outbox.append(event)
        return event

    def expand(self, obj: Obj, paths: Iterable[str]) -> Obj:
        out = copy.deepcopy(obj)
        for path in paths:
            self._expand(out, path.split("."), path)
        return out

    def _expand(self, obj: Obj, parts: list[str], path: str) -> None:
        key, rest = parts[0], parts[1:]
        if key == "data" and obj.get("object") == "list" and rest:
            for item in obj["data"]:
                self._expand(item, rest, path)
            return
        value = obj.get(key)
        if isinstance(value, str) and (found := self.find(value)) is not None:
            obj[key] = value = copy.deepcopy(found)
        elif key not in obj or not (value is None or isinstance(value, dict)):
            raise FakeAPIError(f"This property cannot be expanded ({key}).", "expand")
        if rest and isinstance(value, dict):
            self._expand(value, rest, path)

    def list_objects(
        self, items: Iterable[Obj], params: Obj, url: str,
        keep: Callable[[Obj], bool] = lambda _: True,
    ) -> Obj:
        limit = _int(params.get("limit", 10), "limit", 1, 100)
        rows = sorted(reversed(list(items)), key=lambda o: o["created"], reverse=True)
        ids = [o["id"] for o in rows]
        after, before = params.get("starting_after"), params.get("ending_before")
        for cursor, name in ((after, "starting_after"), (before, "ending_before")):
            if cursor is not None and cursor not in ids:
                raise FakeAPIError(f"No such object: '{cursor}'", name, code="resource_missing")
        if after is not None:
            rows = rows[ids.index(after) + 1 :]
        elif before is not None:
            rows = rows[: ids.index(before)]
        rows = [o for o in rows if _created_matches(o["created"], params.get("created"))]
        rows = [o for o in rows if keep(o)]
        page = rows[-limit:] if before is not None and after is None else rows[:limit]
        return {
            "object": "list", "data": copy.deepcopy(page),
            "has_more": len(rows) > limit, "url": url,
        }

    # ------------------------------------------------------------------ Connect

    def create_account(self, p: Obj) -> Obj:
        type_, controller = p.get("type"), p.get("controller")
        if type_ and controller:
            raise FakeAPIError("You cannot specify both `type` and `controller`.", "type")
        if type_ and type_ not in ("custom", "express", "standard"):
            raise FakeAPIError("Invalid type: must be one of custom, express, or standard", "type")
        if controller:
            dashboard = (controller.get("stripe_dashboard") or {}).get("type", "full")
            type_ = {"express": "express", "none": "custom"}.get(dashboard, "standard")
        country = p.get("country", "US")
        if not re.fullmatch(r"[A-Za-z]{2}", country):
            raise FakeAPIError(f"Country '{country}' is unknown.", "country")
        caps = {
            name: "inactive" for name, cap in (p.get("capabilities") or {}).items()
            if _bool(cap.get("requested"))
        }
        account = self._base(
            new_id("acct", 16), "account", type=type_ or "standard", country=country.upper(),
            email=p.get("email"), business_type=p.get("business_type"),
            default_currency=p.get("default_currency", "usd"), capabilities=caps,
            charges_enabled=False, payouts_enabled=False, details_submitted=False,
            controller={"type": "application", "is_controller": True, **(controller or {})},
            requirements={
                "currently_due": list(DEFAULT_DUE), "eventually_due": list(DEFAULT_DUE),
                "past_due": [], "disabled_reason": "requirements.past_due",
                "current_deadline": None,
            },
            metadata=p.get("metadata") or {},
        )
        self.accounts[account["id"]] = account
        return account

    def update_account(
        self, account_id: str, *, charges_enabled: bool | None = None,
        payouts_enabled: bool | None = None, details_submitted: bool | None = None,
        requirements: list[str] | None = None, capabilities: dict[str, str] | None = None,
    ) -> Obj:
        account = self.get(self.accounts, account_id, "account")
        before = copy.deepcopy(account)
        if charges_enabled is not None:
            account["charges_enabled"] = charges_enabled
            account["capabilities"] = {
                name: "active" if charges_enabled else "inactive"
                for name in account["capabilities"]
            }
            if details_submitted is None and charges_enabled:
                details_submitted = True
            if requirements is None:
                requirements = [] if charges_enabled else list(DEFAULT_DUE)
        if payouts_enabled is not None:
            account["payouts_enabled"] = payouts_enabled
        if details_submitted is not None:
            account["details_submitted"] = details_submitted
        if requirements is not None:
            reqs = account["requirements"]
            reqs["currently_due"] = list(requirements)
            reqs["eventually_due"] = list(requirements)
            reqs["disabled_reason"] = "requirements.past_due" if requirements else None
        account["capabilities"].update(capabilities or {})
        previous = {k: v for k, v in before.items() if account[k] != v}
        self.emit("account.updated", account, previous=previous, account=account_id)
        return account

    def create_account_link(self, p: Obj) -> Obj:
        account = self.get(self.accounts, p["account"], "account", "account")
        if p["type"] not in ("account_onboarding", "account_update"):
            raise FakeAPIError(
                "Invalid type: must be one of account_onboarding or account_update", "type"
            )
        for name in ("refresh_url", "return_url"):
            if not p.get(name):
                raise FakeAPIError(f"Missing required param: {name}.", name)
            _url(p[name], name)
        token = secrets.token_urlsafe(12)
        link = {
            "object": "account_link", "created": self.now, "expires_at": self.now + 300,
            "url": f"{self.base_url}/connect/onboard/{account['id']}?link={token}",
        }
        self.account_links.append({**link, **p, "token": token})
        return link

    def _payable_account(self, account_id: str, param: str, name: str, cap: str) -> None:
        account = self.get(self.accounts, account_id, name, param)
        if account["capabilities"].get(cap) != "active":
            raise FakeAPIError(
                f"The account {account_id} needs the `{cap}` capability to be active for "
                f"this request (its status is {account['capabilities'].get(cap)}).",
                param, code="insufficient_capabilities_for_transfer",
            )

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
            quantity = _int(item["quantity"], f"{at}[quantity]", 1)
            cur = _currency(data["currency"], f"{at}[price_data][currency]")
            if "unit_amount" in data:
                unit = _int(data["unit_amount"], f"{at}[price_data][unit_amount]")
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
                raise FakeAPIError("All line items must use the same currency.", f"{at}[price_data]")
            currency, total = cur, total + unit * quantity
        if "currency" in p and _currency(p["currency"], "currency") != currency:
            raise FakeAPIError("`currency` does not match the line items' currency.", "currency")
        assert currency is not None
        if total < MIN_CHARGE.get(currency, 0):
            raise FakeAPIError(
                "The Checkout Session's total amount due must add up to at least "
                f"{_money(MIN_CHARGE[currency], currency)} {currency}", "line_items"
            )
        expires_at = self.now + 86400
        if "expires_at" in p:
            expires_at = _int(p["expires_at"], "expires_at", None)
            if expires_at - self.now < 1800:
                raise FakeAPIError(
                    "The `expires_at` timestamp must be at least 30 minutes from Checkout "
                    "Session creation.", "expires_at",
                )
            if expires_at - self.now > 86400:
                raise FakeAPIError(
                    "The `expires_at` timestamp must be less than 24 hours from Checkout "
                    "Session creation.", "expires_at",
                )
        self._check_payment_intent_data(p.get("payment_intent_data") or {}, total)
        email = p.get("customer_email")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise FakeAPIError(f"Invalid email address: {email}", "customer_email")
        for name in ("success_url", "cancel_url"):
            _url(p.get(name), name)
        session = self._base(
            new_id("cs_test", 58), "checkout.session", amount_subtotal=total, amount_total=total,
            cancel_url=p.get("cancel_url"), client_reference_id=p.get("client_reference_id"),
            currency=currency, customer=p.get("customer"), customer_details=None,
            customer_email=email, expires_at=expires_at, locale=p.get("locale"),
            metadata=p.get("metadata") or {}, mode=mode, payment_intent=None,
            payment_status="unpaid", status="open", success_url=p.get("success_url"),
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
                transfer["destination"], f"{at}[transfer_data][destination]", "destination",
                "transfers",
            )
            if "amount" in transfer:
                _int(transfer["amount"], f"{at}[transfer_data][amount]", 0, total)
        if on_behalf_of:
            self._payable_account(on_behalf_of, f"{at}[on_behalf_of]", "account", "card_payments")
        if "application_fee_amount" in pid:
            param = f"{at}[application_fee_amount]"
            fee = _int(pid["application_fee_amount"], param)
            if not transfer and not on_behalf_of:
                raise FakeAPIError(
                    "Can only apply an application_fee_amount when the PaymentIntent is "
                    "attempting a direct payment (using an OAuth key or Stripe-Account header) "
                    "or destination payment (using `transfer_data[destination]`).", param,
                )
            if transfer and "amount" in transfer:
                raise FakeAPIError(
                    "You cannot specify both `application_fee_amount` and "
                    "`transfer_data[amount]`.", param,
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
                f"Checkout Session has a status of \"{session['status']}\".",
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
            "amount": amount, "currency": currency, "metadata": pid.get("metadata") or {},
            "application_fee_amount": fee_amount, "description": pid.get("description"),
            "on_behalf_of": pid.get("on_behalf_of"), "transfer_group": pid.get("transfer_group"),
            "transfer_data": None, "receipt_email": pid.get("receipt_email"),
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
                "tr", "transfer", amount=t_amount, amount_reversed=0, currency=currency,
                destination=transfer_data["destination"], reversed=False,
                source_transaction=charge_id, reversals=[],
            )
            self.transfers[transfer["id"]] = transfer
        if fee_amount:
            fee = self._base(
                "fee", "application_fee", amount=fee_amount, amount_refunded=0,
                currency=currency, refunded=False, charge=charge_id,
                account=(transfer_data or {}).get("destination") or pid.get("on_behalf_of"),
            )
            self.application_fees[fee["id"]] = fee
        email = email or session["customer_email"] or "buyer@example.com"
        charge = self._base(
            charge_id, "charge", **common, amount_captured=amount if paid else 0,
            amount_refunded=0, refunded=False, captured=paid, paid=paid,
            status="succeeded" if paid else "pending", disputed=False, payment_intent=pi_id,
            application_fee=fee and fee["id"], transfer=transfer and transfer["id"],
            balance_transaction=new_id("txn"), billing_details={"email": email, "name": None},
        )
        intent = self._base(
            pi_id, "payment_intent", **common, amount_received=amount if paid else 0,
            status="succeeded" if paid else "processing", latest_charge=charge_id,
        )
        self.charges[charge_id], self.payment_intents[pi_id] = charge, intent
        session.update(
            status="complete", payment_status="paid" if paid else "unpaid", url=None,
            payment_intent=pi_id, customer_details={"email": email, "name": None},
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
            charge.update(status="succeeded", paid=True, captured=True,
                          amount_captured=charge["amount"])
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
        charge = self.get(self.charges, charge_id, "charge", "charge")
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
        amount = _int(p["amount"], "amount", 1) if "amount" in p else remaining
        if amount > remaining:
            cur = charge["currency"]
            raise FakeAPIError(
                f"Refund amount ({_money(amount, cur)}) is greater than unrefunded amount on "
                f"charge ({_money(remaining, cur)})", "amount",
            )
        if _bool(p.get("reverse_transfer")) and not charge["transfer"]:
            raise FakeAPIError(
                "reverse_transfer can only be used on charges with a transfer.",
                "reverse_transfer",
            )
        refund = self._base(
            "re", "refund", amount=amount, charge=charge_id, currency=charge["currency"],
            payment_intent=charge["payment_intent"], reason=p.get("reason"),
            status="succeeded", metadata=p.get("metadata") or {}, transfer_reversal=None,
            balance_transaction=new_id("txn"),
        )
        if _bool(p.get("reverse_transfer")):
            transfer = self.transfers[charge["transfer"]]
            part = min(amount * transfer["amount"] // charge["amount"],
                       transfer["amount"] - transfer["amount_reversed"])
            reversal = {"id": new_id("trr"), "object": "transfer_reversal", "amount": part}
            transfer["reversals"].append(reversal)
            transfer["amount_reversed"] += part
            transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
            refund["transfer_reversal"] = reversal["id"]
        if _bool(p.get("refund_application_fee")) and charge["application_fee"]:
            fee = self.application_fees[charge["application_fee"]]
            part = min(amount * fee["amount"] // charge["amount"],
                       fee["amount"] - fee["amount_refunded"])
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
            "dp", "dispute", amount=amount or charge["amount"] - charge["amount_refunded"],
            charge=charge_id, currency=charge["currency"], reason=reason,
            payment_intent=charge["payment_intent"], status="needs_response",
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
