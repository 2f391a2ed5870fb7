"""Stripe billing: checkout, webhooks, refunds, tips, Connect onboarding and payouts,
and the keyless TEST MODE checkout. `package` (the ``stagepass.packages`` entry point)
plugs it into the app; `cli.app` is ``stagepass billing``.

    billing/
      assembly.py    Billing.build: live Stripe or TEST MODE, and everything around it
      stripe_api.py  the seam to Stripe (StripeAPI, LiveStripe, snapshots)
      dev_stripe.py  the keyless TEST MODE stand-in for Stripe
      fees.py        the platform's cut, in one place
      gateway.py     the core's PaymentGateway: Checkout Sessions with Connect
      webhooks.py    POST /webhooks/stripe: verify, dedupe, re-read, act
      sync.py        our state brought in line with a Stripe object as it is now
      payments.py    what is written in the transaction that turns a paid hold into tickets
      refunds.py     refunds made exactly once; the refund policy
      accounts.py    host onboarding (Express accounts, Account Links, status)
      tips.py        tips to hosts
      reconcile.py   repairs what missed webhooks left behind
      models.py      billing's tables (Stripe ids mapped to ours)
      ledger.py      reads and writes of those tables
      pages.py       return pages and the TEST MODE checkout page
      commands.py    /payouts, /tip, /ticket refund, /space cancel with progress
      cli.py         `stagepass billing reconcile`
      errors.py      what billing raises
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.host import Host, Package

if TYPE_CHECKING:
    import stripe

    from billing.assembly import Billing

__all__ = ["MODE_LIVE", "MODE_TEST", "Billing", "attach", "install", "package"]

#: What `stagepass run` shows on its start-up line.
MODE_LIVE = "billing:stripe"
MODE_TEST = "billing:TEST MODE (no real payments)"


async def install(host: Host) -> None:
    """Plug billing into the app (see `attach`); the package's installer."""
    await attach(host)


async def attach(host: Host, *, client: stripe.StripeClient | None = None) -> Billing:
    """Plug billing into the app: the payment gateway, `/webhooks/stripe` and billing's
    pages (the TEST MODE checkout without a key), the `/payouts`, `/tip`, `/ticket
    refund` and `/space cancel` handlers, the periodic reconciliation, and the mode in
    the start-up line. `client` replaces the Stripe client built from the settings."""
    from billing.assembly import Billing

    billing = Billing.build(host.core, client=client)
    host.core.use_payments(billing.gateway)
    for router in billing.routers():
        host.add_router(router)
    billing.commands.register(host.dispatcher)
    host.add_background(billing.reconcile_periodically)
    host.add_mode(billing.mode)
    host.provide("billing", billing)
    return billing


package = Package("billing", install)
"""The ``stagepass.packages`` entry point."""


def __getattr__(name: str) -> Any:
    """`billing.Billing` without importing Stripe and FastAPI for every CLI command."""
    if name == "Billing":
        from billing.assembly import Billing

        return Billing
    raise AttributeError(f"module 'billing' has no attribute {name!r}")
