"""A payment gateway that always works, for tests that sell without billing (billing's own
tests cover Stripe): a checkout link per hold, refunds at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.models import Hold, Identity, Space, Ticket
from bot.ports import Checkout, TipTotals


@dataclass
class StubPayments:
    """Takes every checkout (`holds`, in order; the link is `pay_url` + the hold's id) and
    refunds at once (`refunded`, ticket ids)."""

    test_mode: bool = False
    pay_url: str = "https://checkout.test/pay/"
    holds: list[str] = field(default_factory=list)
    refunded: list[str] = field(default_factory=list)

    async def ensure_can_sell(self, host: Identity, space_price_minor: int) -> None:
        return None

    async def start_checkout(
        self, *, hold: Hold, space: Space, buyer: Identity, email: str | None
    ) -> Checkout:
        self.holds.append(hold.id)
        return Checkout(f"{self.pay_url}{hold.id}", test_mode=self.test_mode)

    async def tips(self, space_id: int) -> TipTotals:
        return TipTotals()

    async def pay_link(self, hold: Hold) -> str | None:
        return None

    async def refund(self, ticket: Ticket, *, reason: str) -> None:
        self.refunded.append(ticket.id)


@dataclass
class FakeGateway(StubPayments):
    """The same in TEST MODE, its links on pay.test."""

    test_mode: bool = True
    pay_url: str = "https://pay.test/"
