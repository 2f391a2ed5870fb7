"""Host onboarding with Stripe Connect: one Express account per host, Account Links to
finish it, and whether Stripe lets it take charges and pay out.

A host's paid Space goes on sale only once Stripe has enabled charges on their account
(`require_charges`). What we store is a cache of Stripe's answer, refreshed by
`account.updated` and re-read from Stripe whenever the cache says "not yet".
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from stripe.params import AccountCreateParams

from billing.errors import PaymentUnavailable, PayoutsNotReady, StripeRejected, StripeUnavailable
from billing.ledger import Ledger
from billing.models import BillingAccount
from billing.stripe_api import Account, StripeAPI
from bot.models import Identity
from bot.settings import Settings

log = structlog.get_logger(__name__)

CONNECT_RETURN_PATH = "/billing/connect/return"
CONNECT_REFRESH_PATH = "/billing/connect/refresh"

#: Stripe's requirement names, as a host would say them.
_REQUIREMENT_WORDS = {
    "external_account": "a bank account for payouts",
    "business_type": "what kind of business you are",
    "business_profile.url": "a website or social profile",
    "business_profile.mcc": "what you sell",
    "tos_acceptance.date": "accepting Stripe's terms",
    "tos_acceptance.ip": "accepting Stripe's terms",
    "individual.verification.document": "an identity document",
    "representative.first_name": "your name",
}


def describe_requirements(due: tuple[str, ...] | list[str]) -> str:
    words: list[str] = []
    for item in due:
        word = _REQUIREMENT_WORDS.get(item, item.replace("_", " ").replace(".", ": "))
        if word not in words:
            words.append(word)
    return ", ".join(words)


@dataclass(frozen=True, slots=True)
class PayoutStatus:
    account: BillingAccount | None

    @property
    def ready(self) -> bool:
        return self.account is not None and self.account.charges_enabled


class Accounts:
    def __init__(self, api: StripeAPI, ledger: Ledger, settings: Settings) -> None:
        self.api = api
        self.ledger = ledger
        self.settings = settings

    async def connect(self, host: Identity) -> str:
        """The onboarding link; creates the host's Express account the first time."""
        assert host.id is not None
        row = await self.ledger.account(host.id)
        try:
            if row is None:
                params: AccountCreateParams = {
                    "type": "express",
                    "capabilities": {
                        "card_payments": {"requested": True},
                        "transfers": {"requested": True},
                    },
                    "business_profile": {"product_description": "Tickets for live audio Spaces"},
                    "metadata": {"stagepass_identity": host.key[:500]},
                }
                if self.settings.stripe_connect_country:
                    params["country"] = self.settings.stripe_connect_country.upper()
                account = await self.api.create_account(
                    params, idempotency_key=f"stagepass-account-{host.id}"
                )
                row = await self.ledger.add_account(host.id, account)
            base = self.settings.resolved_public_url
            return await self.api.create_account_link(
                {
                    "account": row.account_id,
                    "type": "account_onboarding",
                    "refresh_url": base + CONNECT_REFRESH_PATH,
                    "return_url": base + CONNECT_RETURN_PATH,
                }
            )
        except StripeUnavailable as exc:
            raise PaymentUnavailable(
                "Stripe can't be reached right now; try /payouts connect again in a minute."
            ) from exc
        except StripeRejected as exc:
            log.error("stripe refused onboarding", host=host.key, error=exc.message, code=exc.code)
            raise PaymentUnavailable(
                "Stripe refused to start onboarding; the operator has the details."
            ) from exc

    async def refresh(self, row: BillingAccount) -> BillingAccount:
        """Re-read the account from Stripe and store what it says."""
        account = await self.api.retrieve_account(row.account_id)
        await self.store(account)
        fresh = await self.ledger.account(row.identity_id)
        assert fresh is not None
        return fresh

    async def store(self, account: Account) -> bool:
        async with self.ledger.db.write_conn() as conn:
            return await self.ledger.update_account(conn, account)

    async def status(self, host: Identity) -> PayoutStatus:
        """What Stripe says now (falls back to the last answer if Stripe is down)."""
        assert host.id is not None
        row = await self.ledger.account(host.id)
        if row is not None:
            try:
                row = await self.refresh(row)
            except StripeUnavailable:
                log.warning("stripe unavailable; showing the stored account status", host=host.key)
        return PayoutStatus(row)

    async def require_charges(self, host: Identity, *, you: bool = True) -> BillingAccount:
        """The host's account, if Stripe lets it take charges; else a `PayoutsNotReady`
        that says what to do (to the host; `you=False`: to someone paying them)."""
        assert host.id is not None
        row = await self.ledger.account(host.id)
        if row is None:
            raise PayoutsNotReady(
                "Paid tickets need a Stripe account to pay you: run /payouts connect first "
                "(free Spaces need none)."
                if you
                else f"{host.display_name} has not connected a Stripe account yet, so they "
                "can't be paid through Stagepass."
            )
        if not row.charges_enabled:
            try:
                row = await self.refresh(row)
            except StripeUnavailable as exc:
                raise PaymentUnavailable(
                    "Stripe can't be reached right now; please try again in a minute."
                ) from exc
        if not row.charges_enabled:
            due = describe_requirements(row.currently_due)
            raise PayoutsNotReady(
                (
                    "Stripe has not enabled payments on your account yet"
                    + (f"; it still needs {due}" if due else "")
                    + ". Finish with /payouts connect, then check /payouts status."
                )
                if you
                else f"{host.display_name}'s Stripe account can't take payments yet."
            )
        return row
