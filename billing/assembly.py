"""Billing, assembled: which Stripe (the real one, or the keyless TEST MODE), and every
part built around it. `install` (in `billing/__init__.py`) plugs it into the app."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import stripe
import structlog
from fastapi import APIRouter

from billing import MODE_LIVE, MODE_TEST
from billing.accounts import Accounts
from billing.commands import BillingCommands
from billing.dev_stripe import DevStripe
from billing.errors import StripeRejected, StripeUnavailable
from billing.gateway import StripeGateway
from billing.ledger import Ledger
from billing.models import CheckoutStatus
from billing.pages import dev_checkout_router, pages_router
from billing.reconcile import Reconciler, Report
from billing.refunds import Refunds
from billing.stripe_api import LiveStripe, StripeAPI, build_client
from billing.sync import Sync
from billing.tips import Tips
from billing.webhooks import WebhookProcessor, webhook_router
from bot.core import Core
from bot.errors import ConfigError
from bot.events import HoldReleased
from bot.files import secret_file
from bot.logs import add_secrets
from bot.settings import secret_of

log = structlog.get_logger(__name__)

DEV_SECRET_FILE = "stripe-dev-webhook.secret"
#: How far back the periodic reconciliation looks (the CLI takes --since).
RECONCILE_LOOKBACK = timedelta(hours=24)


def load_dev_webhook_secret(data_dir: Path) -> str:
    """The TEST MODE's local signing secret, generated into the data directory once."""
    secret = secret_file(
        data_dir / DEV_SECRET_FILE, lambda: "whsec_dev_" + secrets.token_urlsafe(32)
    )
    add_secrets(secret)
    return secret


def webhook_secrets(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@dataclass
class Billing:
    core: Core
    api: StripeAPI
    secrets: list[str]
    ledger: Ledger
    refunds: Refunds
    accounts: Accounts
    sync: Sync
    processor: WebhookProcessor
    gateway: StripeGateway
    tips: Tips
    reconciler: Reconciler
    commands: BillingCommands
    dev: DevStripe | None = None
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def build(
        cls,
        core: Core,
        *,
        client: stripe.StripeClient | None = None,
        api: StripeAPI | None = None,
    ) -> Billing:
        """Live with `STRIPE_SECRET_KEY` (or an injected `client`, or a whole `api`),
        TEST MODE without."""
        settings = core.settings
        dev: DevStripe | None = None
        has_key = secret_of(settings.stripe_secret_key) is not None
        if client is not None or api is not None or has_key:
            signing = webhook_secrets(secret_of(settings.stripe_webhook_secret) or "")
            if not signing:
                raise ConfigError(
                    "Setting STRIPE_WEBHOOK_SECRET: required with STRIPE_SECRET_KEY (the "
                    "signing secret of your https://…/webhooks/stripe endpoint)"
                )
            if api is None and client is None:
                client, http = build_client(settings)
                api = LiveStripe(client, http)
            elif api is None:
                assert client is not None
                api = LiveStripe(client)
        else:
            api = dev = DevStripe(core.db, core.clock, public_url=settings.resolved_public_url)
            signing = [load_dev_webhook_secret(settings.data_dir)]
        ledger = Ledger(core.db, core.clock)
        refunds = Refunds(core, api, ledger)
        accounts = Accounts(api, ledger, settings)
        sync = Sync(core, ledger, refunds)
        processor = WebhookProcessor(signing, api, ledger, sync)
        tips = Tips(core, api, ledger, accounts)
        billing = cls(
            core=core,
            api=api,
            secrets=signing,
            ledger=ledger,
            refunds=refunds,
            accounts=accounts,
            sync=sync,
            processor=processor,
            gateway=StripeGateway(core, api, ledger, accounts, refunds),
            tips=tips,
            reconciler=Reconciler(api, ledger, sync, refunds, processor),
            commands=BillingCommands(core, accounts, tips, test_mode=api.test_mode),
            dev=dev,
        )
        core.bus.subscribe(HoldReleased, billing._on_hold_released)
        return billing

    @property
    def test_mode(self) -> bool:
        return self.api.test_mode

    @property
    def mode(self) -> str:
        return MODE_TEST if self.test_mode else MODE_LIVE

    def routers(self) -> list[APIRouter]:
        routers = [webhook_router(self.processor), pages_router()]
        if self.dev is not None:
            routers.append(
                dev_checkout_router(
                    self.dev, self.processor, self.ledger, self.secrets[0], self.core.settings
                )
            )
        return routers

    async def reconcile(self, since: timedelta | None = None) -> Report:
        return await self.reconciler.run(self.core.clock.now() - (since or RECONCILE_LOOKBACK))

    async def _on_hold_released(self, event: HoldReleased) -> None:
        """A hold given up (cancelled Space, failed checkout, expiry): close its checkout,
        so nobody pays for seats that are gone. Best effort: a payment that still gets
        through is refunded as a late payment."""
        checkout = await self.ledger.checkout_for_hold(event.hold_id)
        if checkout is None or checkout.status != CheckoutStatus.OPEN:
            return
        try:
            session = await self.api.expire_session(checkout.session_id)
        except StripeUnavailable:
            log.warning("could not expire checkout", session=checkout.session_id)
            return
        except StripeRejected as exc:  # not open any more: paid or expired meanwhile
            log.info("checkout not expired", session=checkout.session_id, reason=exc.message)
            return
        await self.sync.session(session)

    async def reconcile_periodically(self, stop: asyncio.Event) -> None:
        """The background job of `stagepass run`: reconcile every
        `STAGEPASS_BILLING_RECONCILE_MINUTES`, and close the Stripe client on the way out."""
        minutes = self.core.settings.billing_reconcile_minutes
        try:
            while not stop.is_set():
                if minutes:
                    try:
                        report = await self.reconcile()
                        if report.changes or report.errors:
                            for line in report.lines():
                                log.info(line)
                    except Exception:
                        log.exception("billing reconciliation failed; next run retries")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=(minutes or 60 * 24) * 60)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self.ledger.close()
            await self.api.aclose()
