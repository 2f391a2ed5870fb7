"""Interfaces the core owns and the outer packages implement.

The core never imports billing/, scheduler/ or audio/; their installers (`bot.host`) hand
it objects that satisfy these protocols (and the no-op defaults below when a package is
not configured).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.errors import NotConfigured
from bot.models import Hold, Identity, Space, Ticket


@dataclass(frozen=True, slots=True)
class Checkout:
    """Where the buyer goes to pay for a hold."""

    url: str
    test_mode: bool = False


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment for a hold, to be turned into tickets (`TicketService.confirm`).

    `recorder` and `record` are the gateway's: its own account of the payment (the
    event that announced it, the provider's ids), written in the confirmation's
    transaction so that both commit or neither does."""

    hold_id: str
    fee_minor: int = 0
    reference: str = ""
    recorder: PaymentRecorder | None = None
    record: object = None


@dataclass(frozen=True, slots=True)
class Confirmation:
    tickets: list[Ticket]
    newly_issued: bool
    sold_out_late: bool = False  # paid after the hold expired and no seat was left


@dataclass(frozen=True, slots=True)
class TipTotals:
    """A Space's paid tips: how many, their sum, and the platform's cut of that sum."""

    count: int = 0
    amount_minor: int = 0
    fee_minor: int = 0


class PaymentRecorder(Protocol):
    """A gateway's records, kept in the same transaction as the confirmations. Both
    calls get every payment of a batch that names this recorder, in arrival order."""

    async def admit(
        self, conn: AsyncConnection, payments: Sequence[Payment]
    ) -> Sequence[Exception | None]:
        """Before: store what must be stored once (the triggering event); answer each
        payment with None to confirm it, or the exception its caller gets instead (a
        duplicate, a payment already refunded). What `admit` wrote commits either way."""
        ...

    async def settle(
        self, conn: AsyncConnection, settled: Sequence[tuple[Payment, Confirmation]]
    ) -> None:
        """After: record what each admitted payment became (tickets, or sold out late)."""
        ...


class PaymentGateway(Protocol):
    @property
    def test_mode(self) -> bool:
        """Payments are simulated (billing's keyless TEST MODE): nothing is charged."""
        ...

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

    async def pay_link(self, hold: Hold) -> str | None:
        """Where the buyer pays for an active `hold` (the open checkout); None when there
        is none to show (not opened, no longer open, or the provider is unreachable)."""
        ...

    async def tips(self, space_id: int) -> TipTotals:
        """The paid tips of a Space (its host's desk shows them)."""
        ...


class NoPayments:
    """The gateway when billing is not configured: free Spaces only."""

    test_mode = False

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

    async def pay_link(self, hold: Hold) -> str | None:
        return None

    async def tips(self, space_id: int) -> TipTotals:
        return TipTotals()


# --- recordings (the audio package's) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recording:
    """One finished recording of a Space: its part number (1, 2, … in order), file, bytes."""

    number: int
    path: Path
    size: int


class RecordingStore(Protocol):
    """Where a Space's recordings are kept (audio's recordings directory)."""

    async def parts(self, space_id: int) -> list[Recording]:
        """The Space's finished recordings, oldest first."""
        ...

    async def delete(self, space_id: int, number: int | None = None) -> int:
        """Delete one part (`number`) or every recording of the Space; how many went."""
        ...


class NoRecordings:
    """The store when audio is not installed in this process: nothing is recorded here."""

    async def parts(self, space_id: int) -> list[Recording]:
        return []

    async def delete(self, space_id: int, number: int | None = None) -> int:
        return 0
