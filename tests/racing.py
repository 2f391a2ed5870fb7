"""Racing claims: two cores on one database, as two processes have, each with its own
claim batcher (on PostgreSQL their batches are concurrent transactions), and a paid
Space to race for. Per-person and per-community rate limits are off, so the only thing
deciding is the claim batchers' transactions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from bot.actors import Actor
from bot.clock import ManualClock
from bot.core import Core
from bot.db import Database
from bot.errors import UserError
from bot.models import Platform, Visibility
from bot.services.spaces import SpaceDraft
from bot.settings import Settings
from tests.fakes.payments import FakeGateway

T = TypeVar("T")

HOST = Actor(Platform.DISCORD, "guild1", "host", "Host")


@dataclass(frozen=True)
class Race:
    cores: list[Core]
    clock: ManualClock
    space_id: int

    def core(self, n: int) -> Core:
        """The core racer `n` claims through (alternating)."""
        return self.cores[n % 2]


def person(n: int, prefix: str = "b") -> Actor:
    """Racer `n`, a Discord member of the Space's guild."""
    return Actor(Platform.DISCORD, "guild1", f"{prefix}{n}", f"{prefix.upper()}{n}")


async def outcome(claim: Awaitable[T]) -> T | UserError:
    """What a claim came to: its result, or the refusal it raised."""
    try:
        return await claim
    except UserError as exc:
        return exc


@asynccontextmanager
async def racing(
    settings: Settings,
    db: Database,
    *,
    capacity: int,
    visibility: Visibility = Visibility.PUBLIC,
) -> AsyncIterator[Race]:
    """Two cores on `db` and a paid Space "Race" of `capacity` seats (10.00 USD) made by
    `HOST` two days ahead; the cores' batchers and buses are closed afterwards."""
    settings = settings.model_copy(
        update={"claims_per_minute_person": 0, "claims_per_minute_community": 0}
    )
    clock = ManualClock()
    cores = [Core.build(settings, db=db, clock=clock) for _ in range(2)]
    for core in cores:
        core.use_payments(FakeGateway())
    try:
        created = await cores[0].spaces.create(
            HOST,
            SpaceDraft(
                title="Race",
                starts_at=clock.now() + timedelta(days=2),
                capacity=capacity,
                price_minor=1000,
                currency="usd",
                visibility=visibility,
            ),
        )
        assert created.id is not None
        yield Race(cores, clock, created.id)
    finally:
        for core in cores:
            await core.tickets.claims.close()
            await core.bus.close()
