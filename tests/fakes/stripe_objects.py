"""The fake Stripe API's object store: tables, clock, events, expand, lists, and Connect
accounts. No HTTP here (see stripe_api.py); payments live in stripe_payments.py.

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
from typing import Any

import stripe

from .stripe_params import FakeAPIError

Obj = dict[str, Any]
API_VERSION = stripe.api_version
DEFAULT_DUE = [
    "business_profile.url",
    "business_type",
    "external_account",
    "representative.first_name",
    "tos_acceptance.date",
    "tos_acceptance.ip",
]
_ALNUM = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALNUM) for _ in range(length))


def as_int(value: Any, param: str, minimum: int | None = 0, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value)):
        raise FakeAPIError(f"Invalid integer: {value}", param)
    number = int(value)
    if minimum is not None and number < minimum:
        raise FakeAPIError(f"This value must be greater than or equal to {minimum}.", param)
    if maximum is not None and number > maximum:
        raise FakeAPIError(f"This value must be less than or equal to {maximum}.", param)
    return number


def as_bool(value: Any) -> bool:
    return value in (True, "true")


def check_currency(value: Any, param: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z]{3}", value):
        raise FakeAPIError(f"Invalid currency: {value}. Use a lowercase ISO code.", param)
    return value


def check_url(value: Any, param: str) -> None:
    if value is not None and not re.fullmatch(r"https?://[^\s/]+\S*", str(value)):
        raise FakeAPIError("Not a valid URL", param, code="url_invalid")


def money(amount: int, currency: str) -> str:
    return f"${amount / 100:.2f}" if currency == "usd" else f"{amount / 100:.2f} {currency}"


def created_matches(created: int, cond: Any) -> bool:
    if cond is None:
        return True
    if not isinstance(cond, dict):
        return created == as_int(cond, "created")
    ops = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
    return all(ops[op](created, as_int(v, f"created[{op}]")) for op, v in cond.items())


class StripeStore:
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
            "cs": self.sessions,
            "pi": self.payment_intents,
            "ch": self.charges,
            "re": self.refunds,
            "acct": self.accounts,
            "dp": self.disputes,
            "tr": self.transfers,
            "fee": self.application_fees,
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
            "id": obj_id if "_" in obj_id else new_id(obj_id),
            "object": obj_type,
            "created": self.now,
            "livemode": False,
            "metadata": {},
            **fields,
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
        self,
        type_: str,
        obj: Obj,
        *,
        previous: Obj | None = None,
        request: Obj | None = None,
        account: str | None = None,
    ) -> Obj:
        data: Obj = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = copy.deepcopy(previous)
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now,
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": request or {"id": None, "idempotency_key": None},
            "type": type_,
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
        self,
        items: Iterable[Obj],
        params: Obj,
        url: str,
        keep: Callable[[Obj], bool] = lambda _: True,
    ) -> Obj:
        limit = as_int(params.get("limit", 10), "limit", 1, 100)
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
        rows = [o for o in rows if created_matches(o["created"], params.get("created"))]
        rows = [o for o in rows if keep(o)]
        page = rows[-limit:] if before is not None and after is None else rows[:limit]
        return {
            "object": "list",
            "data": copy.deepcopy(page),
            "has_more": len(rows) > limit,
            "url": url,
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
            name: "inactive"
            for name, cap in (p.get("capabilities") or {}).items()
            if as_bool(cap.get("requested"))
        }
        account = self._base(
            new_id("acct", 16),
            "account",
            type=type_ or "standard",
            country=country.upper(),
            email=p.get("email"),
            business_type=p.get("business_type"),
            default_currency=p.get("default_currency", "usd"),
            capabilities=caps,
            charges_enabled=False,
            payouts_enabled=False,
            details_submitted=False,
            controller={"type": "application", "is_controller": True, **(controller or {})},
            requirements={
                "currently_due": list(DEFAULT_DUE),
                "eventually_due": list(DEFAULT_DUE),
                "past_due": [],
                "disabled_reason": "requirements.past_due",
                "current_deadline": None,
            },
            metadata=p.get("metadata") or {},
        )
        self.accounts[account["id"]] = account
        return account

    def update_account(
        self,
        account_id: str,
        *,
        charges_enabled: bool | None = None,
        payouts_enabled: bool | None = None,
        details_submitted: bool | None = None,
        requirements: list[str] | None = None,
        capabilities: dict[str, str] | None = None,
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
            check_url(p[name], name)
        token = secrets.token_urlsafe(12)
        link = {
            "object": "account_link",
            "created": self.now,
            "expires_at": self.now + 300,
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
                param,
                code="insufficient_capabilities_for_transfer",
            )
