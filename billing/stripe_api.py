"""The seam to Stripe: the few calls billing makes, as one small interface.

`StripeAPI` is what the rest of billing talks to. `LiveStripe` implements it with the
real `stripe.StripeClient` (injected; `build_client` makes the production one);
`billing.dev_stripe.DevStripe` implements it locally for the keyless TEST MODE.

Answers come back as small frozen snapshots (`CheckoutSession`, `Charge`, ...) read
from Stripe-shaped dicts, so nothing past this module sees a `StripeObject`. Errors come
back as `billing.errors`: `StripeUnavailable` when a retry may help, `StripeRejected`
(and `StripeNotFound`) when it will not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import stripe
from stripe.params import (
    AccountCreateParams,
    AccountLinkCreateParams,
    RefundCreateParams,
)
from stripe.params.checkout import SessionCreateParams

from billing.errors import StripeNotFound, StripeRejected, StripeUnavailable
from bot.errors import ConfigError
from bot.settings import Settings, secret_of

T = TypeVar("T")

# ----------------------------------------------------------------------------- snapshots


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    id: str
    status: str  # open | complete | expired
    payment_status: str  # paid | unpaid | no_payment_required
    amount_total: int
    currency: str
    metadata: Mapping[str, str]
    created: int
    expires_at: int
    url: str | None = None
    payment_intent: str | None = None
    payment_intent_status: str | None = None  # when the intent was expanded
    charge: str | None = None  # the intent's latest charge, when expanded
    livemode: bool = False

    @property
    def paid(self) -> bool:
        return self.status == "complete" and self.payment_status == "paid"

    @property
    def payment_failed(self) -> bool:
        """Completed with a delayed payment method whose payment then failed."""
        return (
            self.status == "complete"
            and self.payment_status == "unpaid"
            and self.payment_intent_status in ("requires_payment_method", "canceled")
        )


@dataclass(frozen=True, slots=True)
class Charge:
    id: str
    amount: int
    amount_refunded: int
    currency: str
    refunded: bool
    disputed: bool
    payment_intent: str | None


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    amount: int
    status: str
    charge: str | None


@dataclass(frozen=True, slots=True)
class Dispute:
    id: str
    charge: str
    amount: int
    currency: str
    reason: str
    status: str


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    currently_due: tuple[str, ...] = ()
    disabled_reason: str | None = None


@dataclass(frozen=True, slots=True)
class EventRef:
    """What billing reads from an event: which object to re-read, nothing more."""

    id: str
    type: str
    object_id: str
    created: int
    account: str | None = None
    livemode: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


def _id_of(value: Any) -> str | None:
    """An expandable field: an id, an expanded object, or None."""
    if value is None or isinstance(value, str):
        return value
    found = value.get("id")
    return str(found) if found is not None else None


def session_from(data: Mapping[str, Any]) -> CheckoutSession:
    intent = data.get("payment_intent")
    expanded = intent if isinstance(intent, Mapping) else None
    return CheckoutSession(
        id=str(data["id"]),
        status=str(data.get("status") or ""),
        payment_status=str(data.get("payment_status") or ""),
        amount_total=int(data.get("amount_total") or 0),
        currency=str(data.get("currency") or ""),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        created=int(data.get("created") or 0),
        expires_at=int(data.get("expires_at") or 0),
        url=data.get("url"),
        payment_intent=_id_of(intent),
        payment_intent_status=str(expanded["status"]) if expanded else None,
        charge=_id_of(expanded.get("latest_charge")) if expanded else None,
        livemode=bool(data.get("livemode")),
    )


def charge_from(data: Mapping[str, Any]) -> Charge:
    return Charge(
        id=str(data["id"]),
        amount=int(data["amount"]),
        amount_refunded=int(data.get("amount_refunded") or 0),
        currency=str(data.get("currency") or ""),
        refunded=bool(data.get("refunded")),
        disputed=bool(data.get("disputed")),
        payment_intent=_id_of(data.get("payment_intent")),
    )


def refund_from(data: Mapping[str, Any]) -> Refund:
    return Refund(
        id=str(data["id"]),
        amount=int(data["amount"]),
        status=str(data.get("status") or ""),
        charge=_id_of(data.get("charge")),
    )


def dispute_from(data: Mapping[str, Any]) -> Dispute:
    return Dispute(
        id=str(data["id"]),
        charge=_id_of(data.get("charge")) or "",
        amount=int(data.get("amount") or 0),
        currency=str(data.get("currency") or ""),
        reason=str(data.get("reason") or ""),
        status=str(data.get("status") or ""),
    )


def account_from(data: Mapping[str, Any]) -> Account:
    requirements = data.get("requirements") or {}
    return Account(
        id=str(data["id"]),
        charges_enabled=bool(data.get("charges_enabled")),
        payouts_enabled=bool(data.get("payouts_enabled")),
        details_submitted=bool(data.get("details_submitted")),
        currently_due=tuple(str(x) for x in requirements.get("currently_due") or ()),
        disabled_reason=requirements.get("disabled_reason"),
    )


def event_from(data: Mapping[str, Any]) -> EventRef:
    """Read an event body (a webhook payload or an item of /v1/events)."""
    obj = (data.get("data") or {}).get("object") or {}
    if not isinstance(obj, Mapping) or not data.get("id") or not data.get("type"):
        raise ValueError("not a Stripe event")
    return EventRef(
        id=str(data["id"]),
        type=str(data["type"]),
        object_id=str(obj.get("id") or ""),
        created=int(data.get("created") or 0),
        account=data.get("account"),
        livemode=bool(data.get("livemode")),
        extra={"object": str(obj.get("object") or "")},
    )


# ----------------------------------------------------------------------------- interface


class StripeAPI(Protocol):
    """Every Stripe call billing makes. POSTs that create money movements take an
    idempotency key, so a retry never makes a second one."""

    test_mode: bool

    async def create_session(
        self, params: SessionCreateParams, *, idempotency_key: str
    ) -> CheckoutSession: ...

    async def retrieve_session(self, session_id: str) -> CheckoutSession:
        """With the payment intent expanded (its status and latest charge)."""
        ...

    async def expire_session(self, session_id: str) -> CheckoutSession: ...

    def list_sessions(self, *, created_gte: int) -> AsyncIterator[CheckoutSession]: ...

    async def retrieve_charge(self, charge_id: str) -> Charge: ...

    async def retrieve_dispute(self, dispute_id: str) -> Dispute: ...

    async def create_refund(
        self, params: RefundCreateParams, *, idempotency_key: str
    ) -> Refund: ...

    async def create_account(
        self, params: AccountCreateParams, *, idempotency_key: str
    ) -> Account: ...

    async def retrieve_account(self, account_id: str) -> Account: ...

    async def create_account_link(self, params: AccountLinkCreateParams) -> str:
        """The onboarding URL."""
        ...

    def list_events(self, *, types: Sequence[str], created_gte: int) -> AsyncIterator[EventRef]: ...

    async def aclose(self) -> None: ...


# ----------------------------------------------------------------------------- live


class ContentHTTPXClient(stripe.HTTPXClient):
    """stripe.HTTPXClient that hands the form body to httpx as `content=`.

    stripe 16 passes it as `data=<str>`, which httpx 0.28 deprecates; where warnings are
    errors (our tests) that warning surfaces as stripe.APIConnectionError on every POST.
    """

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Any, post_data: Any
    ) -> list[Any]:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if isinstance(data, str | bytes):
            kwargs["content"] = data
        elif data:
            kwargs["data"] = data
        return [args, kwargs]


def build_client(settings: Settings) -> tuple[stripe.StripeClient, stripe.HTTPXClient]:
    """The production client from settings, and its HTTP client (close it on shutdown)."""
    key = secret_of(settings.stripe_secret_key)
    if key is None:
        raise ConfigError("Setting STRIPE_SECRET_KEY: not set")
    if not key.startswith(("sk_", "rk_")):
        raise ConfigError(
            "Setting STRIPE_SECRET_KEY: expected a secret key (sk_live_..., sk_test_...) or a "
            "restricted key (rk_...); a publishable key (pk_...) cannot make payments"
        )
    http = ContentHTTPXClient()
    options: dict[str, Any] = {"max_network_retries": 2, "http_client": http}
    if settings.stripe_api_base:
        options["base_addresses"] = {"api": settings.stripe_api_base.rstrip("/")}
    return stripe.StripeClient(key, **options), http


async def _call(pending: Awaitable[T]) -> T:
    """Await a client call, translating Stripe's errors into billing's."""
    try:
        return await pending
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        raise StripeUnavailable(f"Stripe is unavailable: {exc.user_message or exc}") from exc
    except stripe.IdempotencyError as exc:
        if exc.code == "idempotency_key_in_use":  # the same request is still running
            raise StripeUnavailable(str(exc.user_message or exc)) from exc
        raise StripeRejected(str(exc.user_message or exc), code=exc.code) from exc
    except stripe.InvalidRequestError as exc:
        message = str(exc.user_message or exc)
        if exc.code == "resource_missing" and exc.http_status == 404:
            raise StripeNotFound(message, code=exc.code, param=exc.param) from exc
        raise StripeRejected(message, code=exc.code, param=exc.param) from exc
    except stripe.StripeError as exc:
        if exc.http_status is not None and exc.http_status >= 500:
            raise StripeUnavailable(str(exc.user_message or exc)) from exc
        raise StripeRejected(str(exc.user_message or exc), code=exc.code) from exc


async def _every(page: Any) -> AsyncIterator[dict[str, Any]]:
    """Every item of a Stripe list, page after page, as a dict; each page fetched through
    `_call` (so its errors are billing's)."""
    pages = page.auto_paging_iter()
    while True:
        try:
            item = await _call(pages.__anext__())
        except StopAsyncIteration:
            return
        yield item.to_dict()


class LiveStripe:
    """`StripeAPI` over the real client. `http`, when given, is closed by `aclose()`."""

    test_mode = False

    def __init__(self, client: stripe.StripeClient, http: stripe.HTTPClient | None = None):
        self.v1 = client.v1
        self._http = http

    async def create_session(
        self, params: SessionCreateParams, *, idempotency_key: str
    ) -> CheckoutSession:
        created = await _call(
            self.v1.checkout.sessions.create_async(params, {"idempotency_key": idempotency_key})
        )
        return session_from(created.to_dict())

    async def retrieve_session(self, session_id: str) -> CheckoutSession:
        found = await _call(
            self.v1.checkout.sessions.retrieve_async(session_id, {"expand": ["payment_intent"]})
        )
        return session_from(found.to_dict())

    async def expire_session(self, session_id: str) -> CheckoutSession:
        return session_from(
            (await _call(self.v1.checkout.sessions.expire_async(session_id))).to_dict()
        )

    async def list_sessions(self, *, created_gte: int) -> AsyncIterator[CheckoutSession]:
        page = await _call(
            self.v1.checkout.sessions.list_async(
                {"created": {"gte": created_gte}, "limit": 100, "expand": ["data.payment_intent"]}
            )
        )
        async for item in _every(page):
            yield session_from(item)

    async def retrieve_charge(self, charge_id: str) -> Charge:
        return charge_from((await _call(self.v1.charges.retrieve_async(charge_id))).to_dict())

    async def retrieve_dispute(self, dispute_id: str) -> Dispute:
        return dispute_from((await _call(self.v1.disputes.retrieve_async(dispute_id))).to_dict())

    async def create_refund(self, params: RefundCreateParams, *, idempotency_key: str) -> Refund:
        made = await _call(
            self.v1.refunds.create_async(params, {"idempotency_key": idempotency_key})
        )
        return refund_from(made.to_dict())

    async def create_account(self, params: AccountCreateParams, *, idempotency_key: str) -> Account:
        made = await _call(
            self.v1.accounts.create_async(params, {"idempotency_key": idempotency_key})
        )
        return account_from(made.to_dict())

    async def retrieve_account(self, account_id: str) -> Account:
        return account_from((await _call(self.v1.accounts.retrieve_async(account_id))).to_dict())

    async def create_account_link(self, params: AccountLinkCreateParams) -> str:
        return str((await _call(self.v1.account_links.create_async(params))).url)

    async def list_events(
        self, *, types: Sequence[str], created_gte: int
    ) -> AsyncIterator[EventRef]:
        page = await _call(
            self.v1.events.list_async(
                {"types": list(types), "created": {"gte": created_gte}, "limit": 100}
            )
        )
        async for item in _every(page):
            yield event_from(item)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close_async()  # type: ignore[no-untyped-call]  # stripe leaves it unannotated
