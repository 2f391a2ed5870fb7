"""Interfaces the core owns and the outer packages implement.

The core never imports billing/, scheduler/ or audio/; the wiring hands it objects that
satisfy these protocols (and the no-op defaults below when a package is not configured).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.errors import NotConfigured
from bot.models import Hold, Identity, Space, Ticket


@dataclass(frozen=True, slots=True)
class Checkout:
    """Where the buyer goes to pay for a hold."""

    url: str
    test_mode: bool = False


class PaymentGateway(Protocol):
    async def ensure_can_sell(self, host: Identity, space_price_minor: int) -> None:
        """Raise a `UserError` when the host cannot put a paid Space on sale yet."""
        ...

    async def start_checkout(
        self, *, hold: Hold, space: Space, buyer: Identity, email: str | None
    ) -> Checkout:
        """Open a payment for `hold`; the hold is confirmed later through the webhook."""
        ...

    async def refund(self, ticket: Ticket, *, reason: str) -> None:
        """Refund `ticket` exactly once (idempotent per ticket); raise when it cannot."""
        ...


class NoPayments:
    """The gateway when billing is not configured: free Spaces only."""

    async def ensure_can_sell(self, host: Identity, space_price_minor: int) -> None:
        if space_price_minor > 0:
            raise NotConfigured(
                "Paid Spaces need billing, which is not configured on this Stagepass yet."
            )

    async def start_checkout(
        self, *, hold: Hold, space: Space, buyer: Identity, email: str | None
    ) -> Checkout:
        raise NotConfigured("Paid tickets need billing, which is not configured yet.")

    async def refund(self, ticket: Ticket, *, reason: str) -> None:
        if ticket.price_minor > 0:
            raise NotConfigured("Refunds need billing, which is not configured yet.")
