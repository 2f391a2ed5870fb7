"""Reconciliation: find what a missed webhook (or a crash) left behind and repair it.

It lists recent Checkout Sessions and events from Stripe and runs them through the same
code as the webhooks (`billing.sync`, `WebhookProcessor.handle`), then makes refunds
still owed and closes tickets whose refund went through. Everything it calls is
idempotent, so running it often, or while webhooks arrive, changes nothing twice.
`stagepass run` runs it every `STAGEPASS_BILLING_RECONCILE_MINUTES`; `stagepass billing
reconcile --since 3d` runs it once and prints what it changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import structlog

from billing.errors import BillingError, StripeUnavailable
from billing.ledger import Ledger
from billing.models import CheckoutStatus
from billing.refunds import Refunds
from billing.stripe_api import StripeAPI
from billing.sync import Sync
from billing.webhooks import WebhookProcessor

log = structlog.get_logger(__name__)

OUR_KINDS = ("ticket", "tip")


@dataclass
class Report:
    since: datetime
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sessions_seen: int = 0
    events_seen: int = 0

    def lines(self) -> list[str]:
        head = (
            f"Reconciled with Stripe since {self.since.isoformat(timespec='minutes')}: "
            f"{self.sessions_seen} checkout session(s), {self.events_seen} event(s) looked at."
        )
        body = [f"  changed: {c}" for c in self.changes] or ["  nothing to repair."]
        return [head, *body, *(f"  error: {e}" for e in self.errors)]


class Reconciler:
    def __init__(
        self,
        api: StripeAPI,
        ledger: Ledger,
        sync: Sync,
        refunds: Refunds,
        processor: WebhookProcessor,
    ) -> None:
        self.api = api
        self.ledger = ledger
        self.sync = sync
        self.refunds = refunds
        self.processor = processor

    async def run(self, since: datetime) -> Report:
        report = Report(since)
        created_gte = int(since.timestamp())
        try:
            async for session in self.api.list_sessions(created_gte=created_gte):
                report.sessions_seen += 1
                if session.metadata.get("stagepass_kind") not in OUR_KINDS:
                    continue
                checkout = await self.ledger.checkout(session.id)
                if checkout is None or checkout.status != CheckoutStatus.OPEN:
                    continue  # not ours, or settled (in the transaction of its effect)
                try:
                    report.changes += await self.sync.session(session, None, checkout) or []
                except (StripeUnavailable, BillingError) as exc:
                    report.errors.append(f"session {session.id}: {exc}")
            async for ref in self.api.list_events(
                types=self.processor.event_types, created_gte=created_gte
            ):
                report.events_seen += 1
                if await self.ledger.seen(ref.id):
                    continue
                outcome = await self.processor.handle(ref)
                if outcome.status >= 500:
                    report.errors.append(f"event {ref.id} ({ref.type}): {outcome.detail}")
                elif outcome.result == "processed" and outcome.detail:
                    report.changes.append(f"{outcome.detail} (missed event {ref.id})")
        except StripeUnavailable as exc:
            report.errors.append(f"listing from Stripe: {exc}")
        for repair in (self.refunds.retry_pending, self.refunds.refund_cancelled_spaces):
            changes, errors = await repair()
            report.changes += changes
            report.errors += errors
        report.changes += await self.refunds.close_refunded_tickets(since)
        if report.changes or report.errors:
            log.info("billing reconciled", changes=report.changes, errors=report.errors)
        return report
