"""What billing raises.

    StagepassError
    ├── BillingError                   billing could not do what it was asked
    │   ├── StripeUnavailable          network, rate limit or Stripe 5xx: retry later
    │   └── StripeRejected             Stripe refused the request (`code`, `param`)
    │       └── StripeNotFound         the object does not exist (in this account/mode)
    └── UserError
        ├── PaymentUnavailable         payments are not possible right now (Stripe is down)
        └── Conflict
            └── PayoutsNotReady        the host's Stripe account cannot take payments yet

Webhooks answer 5xx only for `StripeUnavailable` (and database outages): those are the
failures a retry can fix.
"""

from __future__ import annotations

from bot.errors import Conflict, StagepassError, UserError


class BillingError(StagepassError):
    """Base of billing's own failures."""


class StripeUnavailable(BillingError):
    """Stripe could not be reached or answered 5xx/429; the same call may work later."""


class StripeRejected(BillingError):
    """Stripe refused the request for good; `code` is Stripe's error code, if any."""

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param


class StripeNotFound(StripeRejected):
    """No such object (another Stripe account or mode, or a typo)."""


class PaymentUnavailable(UserError):
    """Payments cannot be made right now; the message says why and what to do."""


class PayoutsNotReady(Conflict):
    """The host has no connected account, or Stripe has not enabled charges on it yet."""
