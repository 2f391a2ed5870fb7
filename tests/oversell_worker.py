"""The claim plan of the no-oversell test, and its second OS process.

    python -m tests.oversell_worker URL SPACE_ID N [PREFIX [COMMUNITY]]

As a process it builds its own core and connection pool on the PostgreSQL database at
URL, warms up, prints `ready`, waits for a line on stdin, then fires its N claims at
Space SPACE_ID all at once (asyncio.gather) and prints one JSON line: outcome counts,
tickets won per buyer, and the first few exceptions that are neither SoldOut nor
LimitExceeded. The test process does the same at the same moment.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bot.actors import Actor
from bot.clock import ManualClock
from bot.core import Core
from bot.db import Database
from bot.errors import LimitExceeded, SoldOut
from bot.models import Platform
from bot.services.tickets import Reservation
from bot.settings import load_settings

PER_BUYER_LIMIT = 4
GREEDY = (1, 2, 1, 1, 5)  # what one greedy buyer claims, all at once
PAIRS, SHARED = 50, 200  # per process, in the two-process run
COMMUNITY = "oversell"

Outcome = Reservation | BaseException


def plan(prefix: str, n: int, *, pairs: int = 0, shared: int = 0) -> list[tuple[str, int]]:
    """`n` deterministic (buyer, quantity) claims for a Space whose per-buyer limit is 4.

    First `pairs` buyers each claim 3 and 2 seats side by side (exactly one of the two
    can succeed). Then, shuffled: `shared` buyers, named the same in every process, claim
    1 seat three times each (two processes: six claims against a limit of 4); greedy
    buyers claim five times (1, 2, 1, 1 and 5 — the last is over the limit by itself);
    single buyers claim once. Buyer names carry `prefix` unless shared."""
    front = [(f"{prefix}-pair-{i}", q) for i in range(pairs) for q in (3, 2)]
    body = [(f"shared-{i}", 1) for i in range(shared) for _ in range(3)]
    greedy = (n - len(front) - len(body)) // 10 // len(GREEDY)
    body += [(f"{prefix}-greedy-{i}", q) for i in range(greedy) for q in GREEDY]
    body += [(f"{prefix}-single-{i}", 1) for i in range(n - len(front) - len(body))]
    random.Random(prefix).shuffle(body)
    return front + body


def buyer(user: str, community: str = COMMUNITY) -> Actor:
    return Actor(Platform.SHELL, community, user, user)


async def fire(
    core: Core, space_id: int, claims: list[tuple[str, int]], community: str = COMMUNITY
) -> list[Outcome]:
    """Every claim at once, through `TicketService.reserve`; exceptions are returned."""
    return await asyncio.gather(
        *(
            core.tickets.reserve(buyer(user, community), space_id, quantity)
            for user, quantity in claims
        ),
        return_exceptions=True,
    )


def summarise(claims: list[tuple[str, int]], results: list[Outcome]) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    unexpected: list[str] = []
    per_buyer: Counter[str] = Counter()
    for (user, _quantity), result in zip(claims, results, strict=True):
        if isinstance(result, Reservation):
            outcomes["ok"] += 1
            per_buyer[user] += len(result.tickets)
        elif isinstance(result, SoldOut):
            outcomes["SoldOut"] += 1
        elif isinstance(result, LimitExceeded):  # the per-buyer limit (its subtypes too)
            outcomes["LimitExceeded"] += 1
        else:
            outcomes["unexpected"] += 1
            if len(unexpected) < 5:
                unexpected.append(repr(result))
    return {
        "outcomes": dict(outcomes),
        "tickets": sum(per_buyer.values()),
        "unexpected": unexpected,
        "per_buyer": dict(per_buyer),
    }


def rule_breaks(claims: list[tuple[str, int]], results: list[Outcome]) -> list[str]:
    """Claims whose outcome is decided by the rules alone, whatever the interleaving."""
    breaks = []
    pairs: dict[str, list[Outcome]] = {}
    for (user, quantity), result in zip(claims, results, strict=True):
        if quantity > PER_BUYER_LIMIT and not isinstance(result, LimitExceeded):
            breaks.append(f"{user} asked for {quantity} > {PER_BUYER_LIMIT}: got {result!r}")
        if "-pair-" in user:
            pairs.setdefault(user, []).append(result)
    for user, outcomes in pairs.items():
        # 3 + 2 > 4: never both; and while seats remain (the other process may sell out
        # first), exactly one of the two wins and the other meets the limit
        won = [r for r in outcomes if isinstance(r, Reservation)]
        limited = [r for r in outcomes if isinstance(r, LimitExceeded)]
        sold_out = [r for r in outcomes if isinstance(r, SoldOut)]
        if len(won) > 1 or (not sold_out and (len(won), len(limited)) != (1, 1)):
            breaks.append(f"{user} claimed 3 and 2 at once: {outcomes!r}")
    return breaks


#: Claims per batch when two processes compete: small enough that neither sells out the
#: Space in its first few batches while the other waits on the row lock.
TWO_PROCESS_BATCH = 5


async def main(url: str, space_id: int, n: int, prefix: str, community: str) -> None:
    with tempfile.TemporaryDirectory(prefix="oversell-worker-") as tmp:
        settings = load_settings(
            data_dir=Path(tmp) / "data",
            api_token="worker",
            http_port=0,
            claims_per_minute_person=0,
            claims_per_minute_community=0,
        )
        core = Core.build(settings, db=Database(url, pool_size=10), clock=ManualClock())
        core.tickets.claims.commits.max_batch = TWO_PROCESS_BATCH
        try:
            await core.spaces.get(space_id)  # connect and warm up before the start line
            claims = plan(prefix, n, pairs=PAIRS, shared=SHARED)
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            started = time.time()
            results = await fire(core, space_id, claims, community)
            summary = summarise(claims, results)
            summary.update(
                started=started, finished=time.time(), rule_breaks=rule_breaks(claims, results)[:5]
            )
            print(json.dumps(summary), flush=True)
        finally:
            await core.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) < 3:
        sys.exit(__doc__)
    asyncio.run(
        main(
            args[0],
            int(args[1]),
            int(args[2]),
            args[3] if len(args) > 3 else "worker",
            args[4] if len(args) > 4 else COMMUNITY,
        )
    )
