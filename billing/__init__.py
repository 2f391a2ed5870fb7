"""Stripe billing: checkout, webhooks, refunds, tips, Connect onboarding and payouts,
and the keyless TEST MODE checkout. `install(stagepass)` plugs it into the app.

    billing/
      setup.py       Billing.build: live Stripe or TEST MODE, and everything around it
      stripe_api.py  the seam to Stripe (StripeAPI, LiveStripe, snapshots)
      dev_stripe.py  the keyless TEST MODE stand-in for Stripe
      fees.py        the platform's cut, in one place
      gateway.py     the core's PaymentGateway: Checkout Sessions with Connect
      webhooks.py    POST /webhooks/stripe: verify, dedupe, re-read, act
      sync.py        our state brought in line with a Stripe object as it is now
      refunds.py     refunds made exactly once; the refund policy
      accounts.py    host onboarding (Express accounts, Account Links, status)
      tips.py        tips to hosts
      reconcile.py   repairs what missed webhooks left behind
      ledger.py      billing's tables
      pages.py       return pages and the TEST MODE checkout page
      commands.py    /payouts, /tip, /ticket refund, /space cancel with progress
      cli.py         `stagepass billing reconcile`
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import stripe

    from billing.setup import Billing
    from bot.wiring import Stagepass

__all__ = ["MODE_LIVE", "MODE_TEST", "Billing", "attach", "install"]

#: What `stagepass run` shows on its start-up line.
MODE_LIVE = "billing:stripe"
MODE_TEST = "billing:TEST MODE (no real payments)"


async def install(stagepass: Stagepass) -> None:
    """Plug billing into the app (see `attach`); the wiring's installer."""
    await attach(stagepass)


async def attach(stagepass: Stagepass, *, client: stripe.StripeClient | None = None) -> Billing:
    """Plug billing into the app: the payment gateway, `/webhooks/stripe` and billing's
    pages (the TEST MODE checkout without a key), the `/payouts`, `/tip`, `/ticket
    refund` and `/space cancel` handlers, the periodic reconciliation, and the mode in
    the start-up line. `client` replaces the Stripe client built from the settings."""
    from billing.setup import Billing

    billing = Billing.build(stagepass.core, client=client)
    stagepass.core.use_payments(billing.gateway)
    stagepass.routers.extend(billing.routers())
    billing.commands.register(stagepass.dispatcher)
    stagepass.background.append(billing.reconcile_periodically)
    stagepass.modes.append(billing.mode)
    return billing


def __getattr__(name: str) -> Any:
    """`billing.Billing` without importing Stripe and FastAPI for every CLI command."""
    if name == "Billing":
        from billing.setup import Billing

        return Billing
    raise AttributeError(f"module 'billing' has no attribute {name!r}")
