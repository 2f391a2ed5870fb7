"""Token buckets on ticket claims: one per person and one per community.

A claim (Discord, Slack, the shell, the JSON API: all go through `TicketService.reserve`)
takes one token from the claimant's bucket and one from their community's. A bucket holds
up to a minute's worth of tokens and refills evenly, so a person may click a few times at
once but not keep a script running; a refusal (`RateLimited`) says how many seconds until
a token is back. A refused claim takes nothing from either bucket.

Buckets live in this process: behind a load balancer each process allows the rate again
(the open-holds cap in `bot.services.claims` is the database-wide bound). A bucket that
has filled up again is forgotten, so memory follows the people claiming right now.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.actors import Actor
from bot.clock import Clock
from bot.errors import RateLimited

#: Forget full buckets after this many takes (a sweep costs one pass over the buckets).
_SWEEP_EVERY = 1024


@dataclass(slots=True)
class TokenBucket:
    """`capacity` tokens at most, `per_second` back each second, as of `updated`."""

    capacity: float
    per_second: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
            self.updated = now

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0 when one is)."""
        self.refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.per_second

    def take(self) -> None:
        self.tokens -= 1

    def full(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= self.capacity


class Buckets:
    """Token buckets by key, all with one rate: `per_minute` (0: no limit)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, TokenBucket] = {}
        self._takes = 0

    def wait(self, key: str, now: float) -> float:
        if not self.per_minute:
            return 0.0
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.wait(now)

    def take(self, key: str, now: float) -> None:
        if not self.per_minute:
            return
        bucket = self._buckets.get(key)
        if bucket is None:
            rate = float(self.per_minute)
            bucket = self._buckets[key] = TokenBucket(rate, rate / 60, rate, now)
        bucket.refill(now)
        bucket.take()
        self._takes += 1
        if self._takes % _SWEEP_EVERY == 0:
            self.forget_full(now)

    def forget_full(self, now: float) -> None:
        """Drop the buckets that have filled up again: a new one would be the same."""
        for key in [k for k, b in self._buckets.items() if b.full(now)]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class ClaimLimits:
    """The claim rate rule: per person and per community, checked before any seat moves."""

    def __init__(self, clock: Clock, *, per_person: int, per_community: int) -> None:
        self.clock = clock
        self.people = Buckets(per_person)
        self.communities = Buckets(per_community)

    def admit(self, actor: Actor) -> None:
        """Take a token for `actor`'s claim, or raise `RateLimited` and take none."""
        now = self.clock.now().timestamp()
        person = self.people.wait(actor.key, now)
        community = self.communities.wait(actor.community_id, now)
        if person or community:
            seconds = max(1, math.ceil(round(max(person, community), 3)))  # float noise
            who = (
                "You are claiming tickets faster than allowed"
                if person >= community
                else "This community is claiming tickets very fast right now"
            )
            raise RateLimited(f"{who}. Try again in {_seconds(seconds)}.", retry_after=seconds)
        self.people.take(actor.key, now)
        self.communities.take(actor.community_id, now)


def _seconds(n: int) -> str:
    if n < 90:
        return f"{n} second{'s' if n != 1 else ''}"
    return f"{math.ceil(n / 60)} minutes"
