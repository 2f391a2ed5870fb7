"""A local, stateful fake of the Stripe API that the real `stripe` client talks to.

    async with FakeStripe(webhook_secret="whsec_test", webhook_url=None) as fake:
        client = fake.client()                     # a real stripe.StripeClient
        session = await client.v1.checkout.sessions.create_async({...})
        await fake.complete_session(session.id)    # buyer pays; events are delivered
        body, header = fake.signed_payload(fake.events[-1])

It serves Checkout Sessions, PaymentIntents, Charges, Refunds, Connect accounts and
account links, and Events over HTTP on 127.0.0.1 (an ephemeral port), with Stripe's form
encoding, bearer-key auth, Idempotency-Key replay and Stripe-shaped errors. Parameters are
checked against the installed stripe package's own *Params types (unknown or missing
params fail as they do on the real API), and business rules live in stripe_objects.py.
Anything it does not implement answers 404 "Unrecognized request URL", like Stripe does.
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import html
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from stripe.params import (
    AccountCreateParams,
    AccountLinkCreateParams,
    AccountRetrieveParams,
    ApplicationFeeRetrieveParams,
    ChargeRetrieveParams,
    DisputeRetrieveParams,
    EventListParams,
    EventRetrieveParams,
    PaymentIntentRetrieveParams,
    RefundCreateParams,
    RefundRetrieveParams,
    TransferRetrieveParams,
)
from stripe.params.checkout import (
    SessionCreateParams,
    SessionExpireParams,
    SessionListParams,
    SessionRetrieveParams,
)

from billing.stripe_api import ContentHTTPXClient
from tests.serving import serve_asgi

from .stripe_objects import Obj, new_id
from .stripe_params import FakeAPIError, as_form, check_params, parse_form
from .stripe_payments import StripeState

__all__ = [
    "ContentHTTPXClient",
    "Delivery",
    "FakeAPIError",
    "FakeStripe",
    "RecordedRequest",
    "as_form",
]


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]  # nested, leaf values as the strings that were sent
    idempotency_key: str | None
    headers: dict[str, str]  # lower-cased names
    status: int = 0
    replayed: bool = False  # answered from the idempotency store


@dataclass
class Delivery:
    event_id: str
    event_type: str
    url: str
    status: int | None  # None when the request itself failed
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


_RETRIEVE = {  # collection path -> (object name, state table attribute, params type)
    "checkout/sessions": ("checkout.session", "sessions", SessionRetrieveParams),
    "payment_intents": ("payment_intent", "payment_intents", PaymentIntentRetrieveParams),
    "charges": ("charge", "charges", ChargeRetrieveParams),
    "refunds": ("refund", "refunds", RefundRetrieveParams),
    "accounts": ("account", "accounts", AccountRetrieveParams),
    "disputes": ("dispute", "disputes", DisputeRetrieveParams),
    "transfers": ("transfer", "transfers", TransferRetrieveParams),
    "application_fees": ("application_fee", "application_fees", ApplicationFeeRetrieveParams),
}
Handler = Callable[..., Any]


class FakeStripe:
    def __init__(
        self,
        webhook_secret: str = "whsec_test",
        webhook_url: str | None = None,
        *,
        api_key: str = "sk_test_fake",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.webhook_secret = webhook_secret
        # May be set later (once the app's port is known); events emitted while it is None
        # are not delivered afterwards: replay them with deliver().
        self.webhook_url = webhook_url
        self.api_key = api_key
        self.base_url = ""
        self.state = StripeState(clock)
        s = self.state  # the live tables, shared with the state (never rebound)
        self.events, self.sessions, self.accounts = s.events, s.sessions, s.accounts
        self.account_links, self.payment_intents, self.charges = (
            s.account_links,
            s.payment_intents,
            s.charges,
        )
        self.refunds, self.disputes = s.refunds, s.disputes
        self.transfers, self.application_fees = s.transfers, s.application_fees
        self.requests: list[RecordedRequest] = []
        self.deliveries: list[Delivery] = []
        self._idempotency: dict[str, tuple[tuple[str, str, Obj], Obj]] = {}
        self._clients: list[stripe.HTTPXClient] = []
        self._queue: asyncio.Queue[Obj] | None = None
        routes: list[tuple[str, re.Pattern[str], Handler, Any]] = [
            ("POST", re.compile(r"/v1/checkout/sessions"), s.create_session, SessionCreateParams),
            ("GET", re.compile(r"/v1/checkout/sessions"), self._list_sessions, SessionListParams),
            (
                "POST",
                re.compile(r"/v1/checkout/sessions/(?P<session_id>[^/]+)/expire"),
                self._expire,
                SessionExpireParams,
            ),
            ("POST", re.compile(r"/v1/refunds"), s.create_refund, RefundCreateParams),
            ("POST", re.compile(r"/v1/accounts"), self._create_account, AccountCreateParams),
            ("POST", re.compile(r"/v1/account_links"), self._create_link, AccountLinkCreateParams),
            ("GET", re.compile(r"/v1/events"), self._list_events, EventListParams),
            (
                "GET",
                re.compile(r"/v1/events/(?P<event_id>[^/]+)"),
                self._event,
                EventRetrieveParams,
            ),
        ]
        for kind, (_, _, params_type) in _RETRIEVE.items():
            pattern = re.compile(rf"/v1/(?P<kind>{re.escape(kind)})/(?P<obj_id>[^/]+)")
            routes.append(("GET", pattern, self._retrieve, params_type))
        self._routes = routes
        self.app = Starlette(
            routes=[
                Route("/v1/{path:path}", self._api, methods=["GET", "POST", "DELETE"]),
                Route("/pay/{session_id}", self._pay_page, methods=["GET", "POST"]),
                Route("/connect/onboard/{account_id}", self._onboard_page, methods=["GET", "POST"]),
            ]
        )

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeStripe:
        self._serving = serve_asgi(self.app)
        self.base_url = self.state.base_url = await self._serving.__aenter__()
        self._http = httpx.AsyncClient(timeout=10)
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._deliver_loop())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for client in self._clients:
            await client.close_async()  # type: ignore[no-untyped-call]  # stripe leaves it unannotated
        await self.flush()
        self._worker.cancel()
        await asyncio.gather(self._worker, return_exceptions=True)
        await self._serving.__aexit__(None, None, None)
        await self._http.aclose()

    def client(self, api_key: str | None = None) -> stripe.StripeClient:
        """A real StripeClient aimed at this fake (async `*_async` methods; closed on exit)."""
        if not self.base_url:
            raise RuntimeError("FakeStripe is not running: use it with `async with`")
        http_client = ContentHTTPXClient()
        self._clients.append(http_client)
        return stripe.StripeClient(
            api_key or self.api_key,
            base_addresses={"api": self.base_url},
            max_network_retries=0,
            http_client=http_client,
        )

    @property
    def now(self) -> int:
        return self.state.now

    @now.setter
    def now(self, value: float | None) -> None:
        self.state.now = value

    def advance(self, seconds: float) -> int:
        return self.state.advance(seconds)

    def requests_for(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    # ------------------------------------------------------------------ test helpers

    async def _run(self, action: Callable[[], Obj]) -> Obj:
        result = action()
        await self.flush()
        return copy.deepcopy(result)

    async def complete_session(
        self, session_id: str, *, paid: bool = True, email: str | None = None
    ) -> Obj:
        """The buyer pays: PaymentIntent + Charge (+ transfer, application fee), session
        complete; emits payment_intent.succeeded, charge.succeeded and
        checkout.session.completed. paid=False: a delayed method, session complete but
        payment_status unpaid (then settle_async_payment)."""
        return await self._run(
            lambda: self.state.complete_session(session_id, paid=paid, email=email)
        )

    async def settle_async_payment(self, session_id: str, *, succeeded: bool = True) -> Obj:
        return await self._run(
            lambda: self.state.settle_async_payment(session_id, succeeded=succeeded)
        )

    async def expire_session(self, session_id: str) -> Obj:
        return await self._run(lambda: self.state.expire_session(session_id))

    async def expire_due_sessions(self) -> list[str]:
        """Expire every open session whose expires_at has passed (Stripe's own sweep)."""
        due = [
            s["id"]
            for s in self.sessions.values()
            if s["status"] == "open" and s["expires_at"] <= self.now
        ]
        for session_id in due:
            self.state.expire_session(session_id)
        await self.flush()
        return due

    async def refund_charge(
        self,
        charge_id: str,
        amount: int | None = None,
        *,
        reverse_transfer: bool = False,
        refund_application_fee: bool = False,
        reason: str | None = None,
    ) -> Obj:
        """A refund made outside our code (e.g. in the Dashboard)."""
        params = {
            "charge": charge_id,
            "amount": amount,
            "reason": reason,
            "reverse_transfer": reverse_transfer,
            "refund_application_fee": refund_application_fee,
        }
        return await self._run(
            lambda: self.state.create_refund({k: v for k, v in params.items() if v is not None})
        )

    async def dispute_charge(
        self, charge_id: str, *, amount: int | None = None, reason: str = "fraudulent"
    ) -> Obj:
        return await self._run(
            lambda: self.state.dispute_charge(charge_id, amount=amount, reason=reason)
        )

    async def close_dispute(self, dispute_id: str, *, status: str = "lost") -> Obj:
        return await self._run(lambda: self.state.close_dispute(dispute_id, status=status))

    async def update_account(self, account_id: str, **changes: Any) -> Obj:
        """charges_enabled, payouts_enabled, details_submitted, requirements (the
        currently_due list), capabilities ({name: status}); emits account.updated."""
        return await self._run(lambda: self.state.update_account(account_id, **changes))

    # ------------------------------------------------------------------ webhooks

    def signed_payload(
        self, event: Obj, *, timestamp: int | None = None, secret: str | None = None
    ) -> tuple[bytes, str]:
        """The body and Stripe-Signature header Stripe would send for `event`. The
        timestamp is wall-clock time (construct_event checks it against time.time())."""
        payload = json.dumps(event, indent=2)
        header = stripe.WebhookSignature.generate_signature_header(
            payload,
            self.webhook_secret if secret is None else secret,
            timestamp=int(time.time()) if timestamp is None else timestamp,
        )
        return payload.encode(), header

    async def deliver(self, event: Obj, url: str | None = None) -> Delivery:
        """POST one signed event to `url` (default webhook_url); the outcome is recorded
        in `deliveries` and returned, never raised."""
        url = url or self.webhook_url
        if url is None:
            raise ValueError("no webhook_url to deliver to")
        body, header = self.signed_payload(event)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": header,
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        try:
            response = await self._http.post(url, content=body, headers=headers)
            error = None if response.is_success else response.text[:500]
            delivery = Delivery(event["id"], event["type"], url, response.status_code, error)
        except Exception as exc:  # a broken receiver is data for the test, not a crash
            delivery = Delivery(event["id"], event["type"], url, None, repr(exc))
        self.deliveries.append(delivery)
        return delivery

    async def flush(self) -> None:
        """Wait until every event emitted so far has been delivered (if webhook_url)."""
        self._pump()
        if self._queue is not None:
            await self._queue.join()

    def _pump(self) -> None:
        while self._queue is not None and self.state.outbox:
            self._queue.put_nowait(self.state.outbox.pop(0))

    async def _deliver_loop(self) -> None:
        assert self._queue is not None
        while True:
            event = await self._queue.get()
            try:
                if self.webhook_url:
                    await self.deliver(event)
            finally:
                self._queue.task_done()

    # ------------------------------------------------------------------ the API

    async def _api(self, request: Request) -> Response:
        method, path = request.method, request.url.path
        raw = (await request.body()).decode() if method == "POST" else request.url.query
        headers = {k.lower(): v for k, v in request.headers.items()}
        key = headers.get("idempotency-key")
        record = RecordedRequest(method, path, {}, key, headers)
        self.requests.append(record)
        request_id = new_id("req", 14)
        try:
            record.params = parse_form(raw)
            body, record.replayed = self._handle(record, request_id)
            record.status = 200
        except FakeAPIError as exc:
            body, record.status = exc.body(), exc.status
        self._pump()  # deliver in the background, after this response, as Stripe does
        response_headers = {"Request-Id": request_id}
        if key:
            response_headers["Idempotency-Key"] = key
        if record.replayed:
            response_headers["Idempotent-Replayed"] = "true"
        return JSONResponse(body, status_code=record.status, headers=response_headers)

    def _handle(self, record: RecordedRequest, request_id: str) -> tuple[Obj, bool]:
        auth = record.headers.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            raise FakeAPIError(
                f"Invalid API Key provided: {auth.removeprefix('Bearer ')[:8]}***"
                if auth
                else "You did not provide an API key.",
                status=401,
            )
        method, path, params, key = (
            record.method,
            record.path,
            record.params,
            record.idempotency_key,
        )
        found = next(
            (
                (route, match)
                for route in self._routes
                if route[0] == method and (match := route[1].fullmatch(path))
            ),
            None,
        )
        if found is None:
            raise FakeAPIError(
                f"Unrecognized request URL ({method}: {path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
                status=404,
            )
        (_, _, handler, params_type), match = found
        fingerprint = (method, path, params)
        if key and method == "POST" and key in self._idempotency:
            seen, body = self._idempotency[key]
            if seen != fingerprint:
                raise FakeAPIError(
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                    type="idempotency_error",
                )
            return copy.deepcopy(body), True
        check_params(params, params_type)
        extra = {"request": {"id": request_id, "idempotency_key": key}} if method == "POST" else {}
        result = handler(params, **extra, **match.groupdict())
        body = self.state.expand(result, params.get("expand") or [])
        if key and method == "POST":  # like Stripe, only requests that ran are remembered
            self._idempotency[key] = (copy.deepcopy(fingerprint), copy.deepcopy(body))
        return body, False

    def _retrieve(self, params: Obj, kind: str, obj_id: str) -> Obj:
        name, table, _ = _RETRIEVE[kind]
        return self.state.get(getattr(self.state, table), obj_id, name)

    def _event(self, params: Obj, event_id: str) -> Obj:
        found = self.state.find(event_id) if event_id.startswith("evt_") else None
        if found is None:
            raise FakeAPIError(
                f"No such event: '{event_id}'", "id", code="resource_missing", status=404
            )
        return found

    def _list_sessions(self, params: Obj) -> Obj:
        filters = {k: params[k] for k in ("status", "payment_intent", "customer") if k in params}
        return self.state.list_objects(
            self.sessions.values(),
            params,
            "/v1/checkout/sessions",
            lambda s: all(s.get(k) == v for k, v in filters.items()),
        )

    def _list_events(self, params: Obj) -> Obj:
        patterns = [params["type"]] if "type" in params else params.get("types") or ["*"]
        return self.state.list_objects(
            self.events,
            params,
            "/v1/events",
            lambda e: any(fnmatch.fnmatchcase(e["type"], p) for p in patterns),
        )

    def _expire(self, params: Obj, session_id: str, request: Obj) -> Obj:
        return self.state.expire_session(session_id, request)

    def _create_account(self, params: Obj, request: Obj) -> Obj:
        return self.state.create_account(params)

    def _create_link(self, params: Obj, request: Obj) -> Obj:
        return self.state.create_account_link(params)

    # ------------------------------------------------------------------ browser pages

    async def _pay_page(self, request: Request) -> Response:
        """GET: a minimal hosted-checkout page; POST (its Pay button): complete the session."""
        session = self.sessions.get(request.path_params["session_id"])
        if session is None:
            return HTMLResponse("<h1>Checkout session not found</h1>", status_code=404)
        if request.method == "POST":
            try:
                self.state.complete_session(session["id"])
            except FakeAPIError as exc:
                return HTMLResponse(f"<h1>{html.escape(exc.message)}</h1>", status_code=409)
            self._pump()
            if session["success_url"]:
                url = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
                return RedirectResponse(url, status_code=303)
            return HTMLResponse('<h1 id="status">Payment complete</h1>')
        amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
        button = (
            '<form method="post"><button id="pay" type="submit">Pay</button></form>'
            if session["status"] == "open"
            else ""
        )
        return HTMLResponse(
            f"<!doctype html><title>Fake Stripe Checkout</title><h1>Pay {html.escape(amount)}"
            f'</h1><p id="status">{html.escape(session["status"])}</p>{button}'
        )

    async def _onboard_page(self, request: Request) -> Response:
        """Connect onboarding behind an account link: GET shows a button, POST finishes
        onboarding (charges and payouts enabled) and returns to return_url."""
        token = request.query_params.get("link")
        account_id = request.path_params["account_id"]
        link = next(
            (x for x in self.account_links if x["token"] == token and x["account"] == account_id),
            None,
        )
        if link is None:
            return HTMLResponse("<h1>Unknown account link</h1>", status_code=404)
        if self.now > link["expires_at"]:
            return RedirectResponse(link["refresh_url"], status_code=303)
        if request.method == "POST":
            self.state.update_account(account_id, charges_enabled=True, payouts_enabled=True)
            self._pump()
            return RedirectResponse(link["return_url"], status_code=303)
        return HTMLResponse(
            "<!doctype html><title>Fake Stripe Connect</title><h1>Onboard "
            f'{html.escape(account_id)}</h1><form method="post">'
            '<button id="finish" type="submit">Finish onboarding</button></form>'
        )
