"""`POST /webhooks/stripe`: verify, dedupe, re-read, act.

1. The signature is checked against `STRIPE_WEBHOOK_SECRET` (any of its comma-separated
   secrets) with a 300 s tolerance: a bad, missing or stale signature is a 400 and
   nothing is stored.
2. Types we do not handle are answered 200 and ignored; an event already stored is a
   200 "duplicate" without touching Stripe.
3. The event is only a trigger: its object is read again from Stripe and `billing.sync`
   brings our state in line with it, storing the event once (see there).

Answers: 200 for everything a retry would not change (processed, duplicate, ignored,
not ours); 503 when Stripe or the database is unreachable, so Stripe retries; an
unexpected error is a logged 500 (Stripe retries that too).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import sqlalchemy.exc
import stripe
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from billing.errors import StripeNotFound, StripeUnavailable
from billing.ledger import Ledger
from billing.payments import DuplicateEvent
from billing.stripe_api import EventRef, StripeAPI, event_from
from billing.sync import Sync

log = structlog.get_logger(__name__)

WEBHOOK_PATH = "/webhooks/stripe"
#: Stripe's event payloads are a few kB; the router refuses more while reading (413).
MAX_BODY_BYTES = 64 * 1024
TOLERANCE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    result: str  # processed | duplicate | ignored | rejected | retry
    detail: str = ""


class BadSignature(Exception):
    """The payload is not signed by any of our webhook secrets (or too long ago)."""


def verify(payload: bytes, header: str | None, secrets: Sequence[str]) -> None:
    """Raise `BadSignature` unless one of `secrets` signed `payload` within tolerance."""
    errors = []
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, TOLERANCE_SECONDS)
            return
        except stripe.SignatureVerificationError as exc:
            errors.append(str(exc))
        except (UnicodeDecodeError, ValueError):
            raise BadSignature("the body is not UTF-8 text") from None
    stale = [e for e in errors if "tolerance" in e]
    raise BadSignature((stale or errors or ["no webhook secret configured"])[0])


Handler = Callable[[EventRef], Awaitable[list[str] | None]]


class WebhookProcessor:
    """Turns a delivery into an `Outcome`. The dev checkout and reconciliation call it
    too, so every path into billing's state goes through the same code."""

    def __init__(self, secrets: Sequence[str], api: StripeAPI, ledger: Ledger, sync: Sync) -> None:
        self.secrets = [s for s in secrets if s]
        self.api = api
        self.ledger = ledger
        self.sync = sync
        self.handlers: dict[str, Handler] = {
            "checkout.session.completed": self._session,
            "checkout.session.expired": self._session,
            "checkout.session.async_payment_succeeded": self._session,
            "checkout.session.async_payment_failed": self._session,
            "charge.refunded": self._charge,
            "charge.dispute.created": self._dispute,
            "account.updated": self._account,
        }

    @property
    def event_types(self) -> list[str]:
        return sorted(self.handlers)

    async def process(self, payload: bytes, signature: str | None) -> Outcome:
        try:
            verify(payload, signature, self.secrets)
        except BadSignature as exc:
            log.warning("stripe webhook rejected", reason=str(exc))
            return Outcome(400, "rejected", f"signature: {exc}")
        try:
            ref = event_from(json.loads(payload))
        except (ValueError, TypeError, AttributeError):
            return Outcome(400, "rejected", "the body is not a Stripe event")
        return await self.handle(ref)

    async def handle(self, ref: EventRef) -> Outcome:
        """Act on a verified event (or one listed from Stripe by reconciliation)."""
        handler = self.handlers.get(ref.type)
        if handler is None:
            return Outcome(200, "ignored", f"{ref.type} is not handled")
        try:
            changes = await handler(ref)
        except DuplicateEvent:
            return Outcome(200, "duplicate")
        except StripeNotFound as exc:
            log.warning(
                "stripe object not found", event_id=ref.id, type=ref.type, error=exc.message
            )
            return Outcome(200, "ignored", "the object does not exist in this Stripe account")
        except StripeUnavailable as exc:
            log.warning("stripe unavailable; asking for a retry", event_id=ref.id, error=str(exc))
            return Outcome(503, "retry", "Stripe is unavailable")
        except (
            sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.InterfaceError,
            sqlalchemy.exc.TimeoutError,
            OSError,
        ) as exc:
            log.warning("database unavailable; asking for a retry", event_id=ref.id, error=str(exc))
            return Outcome(503, "retry", "the database is unavailable")
        if changes is None:
            return Outcome(200, "ignored", "not a Stagepass object")
        if changes:
            log.info("stripe event processed", event_id=ref.id, type=ref.type, changes=changes)
        return Outcome(200, "processed", "; ".join(changes))

    # Each handler first looks the event up (a duplicate never reaches Stripe), then
    # re-reads the object and hands it to `billing.sync`.

    async def _session(self, ref: EventRef) -> list[str] | None:
        seen, checkout = await self.ledger.seen_and_checkout(ref.id, ref.object_id)
        if seen:
            raise DuplicateEvent(ref.id)
        if checkout is None:
            return None  # not ours: no need to ask Stripe
        session = await self.api.retrieve_session(ref.object_id)
        return await self.sync.session(session, ref, checkout)

    async def _charge(self, ref: EventRef) -> list[str] | None:
        await self._unseen(ref)
        return await self.sync.charge(await self.api.retrieve_charge(ref.object_id), ref)

    async def _dispute(self, ref: EventRef) -> list[str] | None:
        await self._unseen(ref)
        dispute = await self.api.retrieve_dispute(ref.object_id)
        charge = await self.api.retrieve_charge(dispute.charge)
        return await self.sync.charge(charge, ref, dispute)

    async def _account(self, ref: EventRef) -> list[str] | None:
        await self._unseen(ref)
        return await self.sync.account(await self.api.retrieve_account(ref.object_id), ref)

    async def _unseen(self, ref: EventRef) -> None:
        if await self.ledger.seen(ref.id):
            raise DuplicateEvent(ref.id)


def webhook_router(processor: WebhookProcessor) -> APIRouter:
    router = APIRouter(tags=["billing"], max_body_size=MAX_BODY_BYTES)

    @router.post(WEBHOOK_PATH, include_in_schema=False)
    async def stripe_webhook(request: Request) -> JSONResponse:
        payload = await request.body()
        outcome = await processor.process(payload, request.headers.get("stripe-signature"))
        return JSONResponse(
            {"received": outcome.status < 400, "result": outcome.result, "detail": outcome.detail},
            status_code=outcome.status,
        )

    return router
