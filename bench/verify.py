"""Ticket token verifications per second, on one core.

    .venv/bin/python bench/verify.py [--quick] [--no-pin]

1. `TokenVerifier.verify`: signature (Ed25519, PyNaCl) and expiry, no I/O — what any
   edge does with the public key alone. Baselines in the same run, on the same payloads:
   PyNaCl's raw `VerifyKey.verify` (the Ed25519 floor: no base64, no JSON), and a plain
   HMAC-SHA256 check (what a shared-secret token would cost). Printed as ratios.
2. `TicketService.verify_token`: the same plus the Space and the ticket read from SQLite
   (the revocation check), one at a time and 16 at a time.

The process is pinned to one CPU (its aiosqlite threads too) unless `--no-pin`.
Prints figures; never passes or fails on time (target: >= 10,000/s for part 1).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nacl.signing import SigningKey

from bench.common import closed_loop, free_space, machine, new_core, person, scratch_dir
from bench.common import sqlite_database as sqlite_db
from bot.errors import PermissionDenied
from bot.tokens import TicketClaims, TokenSigner

TARGET = 10_000  # signature verifications per second


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rates(fns: dict[str, Callable[[int], None]], n: int, repeats: int) -> dict[str, list[float]]:
    """Calls per second of each `fn(i)` for i in range(n), `repeats` times, the functions
    interleaved round by round so that a busy moment of the machine hits them alike."""
    out: dict[str, list[float]] = {label: [] for label in fns}
    for _ in range(repeats):
        for label, fn in fns.items():
            started = time.perf_counter()
            for i in range(n):
                fn(i)
            out[label].append(n / (time.perf_counter() - started))
    return out


def pin_to_one_cpu() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def signature_table(n: int, repeats: int) -> None:
    key = SigningKey.generate()
    signer = TokenSigner(key)
    verifier = signer.verifier
    expires = datetime.now(UTC) + timedelta(days=1)
    tokens = [
        signer.sign(
            TicketClaims(
                ticket_id=os.urandom(8).hex(),
                space_id=1000 + i,
                holder_key=str(50_000 + i),
                role="listener",
                expires_at=expires,
            )
        )
        for i in range(1000)
    ]
    pairs = [(_b64d(body), _b64d(sig)) for body, sig in (t.split(".") for t in tokens)]
    secret = os.urandom(32)
    macs = [hmac.new(secret, payload, hashlib.sha256).digest() for payload, _ in pairs]
    verify_key = key.verify_key
    now = datetime.now(UTC)

    def ours(i: int) -> None:
        verifier.verify(tokens[i % 1000], now=now)

    def nacl_raw(i: int) -> None:
        payload, sig = pairs[i % 1000]
        verify_key.verify(payload, sig)

    def hmac_check(i: int) -> None:
        payload, _ = pairs[i % 1000]
        expected = hmac.new(secret, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, macs[i % 1000]):
            raise AssertionError("bad mac")

    length = statistics.mean(len(t) for t in tokens)
    print(
        f"\n1. signature + expiry, no I/O: {n:,} verifications x {repeats} interleaved runs, "
        f"tokens of {length:.0f} chars (payload {statistics.mean(len(p) for p, _ in pairs):.0f} "
        "bytes)"
    )
    print(f"{'what':44} {'best/s':>10} {'median/s':>10} {'us each':>8} {'vs ours':>8}")
    measured = rates(
        {
            "TokenVerifier.verify (ours)": ours,
            "baseline: PyNaCl VerifyKey.verify, raw bytes": nacl_raw,
            "baseline: HMAC-SHA256 + compare_digest": hmac_check,
        },
        n,
        repeats,
    )
    ours_best = max(measured["TokenVerifier.verify (ours)"])
    for label, runs in measured.items():
        best = max(runs)
        print(
            f"{label:44} {best:>10,.0f} {statistics.median(runs):>10,.0f} {1e6 / best:>8.1f} "
            f"{best / ours_best:>7.2f}x"
        )
    print(f"target >= {TARGET:,}/s for TokenVerifier.verify: {ours_best / TARGET:.1f}x the target")


async def revocation_table(n: int) -> None:
    async with scratch_dir() as root, sqlite_db(root) as db:
        core = new_core(db, root)
        space = await free_space(core, capacity=1000)
        assert space.id is not None
        space_id = space.id
        tokens = []
        for i in range(200):
            tokens += (await core.tickets.reserve(person(f"listener-{i}"), space_id)).tokens
        revoked = (await core.tickets.reserve(person("revoked"), space_id)).tickets[0]
        revoked_token = core.tickets.token_for(revoked, space)
        await core.tickets.close(revoked.id, refunded=False, reason="bench")
        try:
            await core.tickets.verify_token(revoked_token, space_id=space_id)
            refused = "NOT refused (bug)"
        except PermissionDenied as exc:
            refused = f"refused: {exc}"
        for token in tokens[:50]:  # warm-up
            await core.tickets.verify_token(token, space_id=space_id)

        async def check(i: int) -> None:
            admission = await core.tickets.verify_token(tokens[i % len(tokens)], space_id=space_id)
            assert admission.ticket is not None

        print("\n2. TicketService.verify_token on SQLite: signature, expiry, Space, revocation")
        print(f"{'concurrency':>11} {'verifies':>9} {'per s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for level in (1, 16):
            run = await closed_loop(check, list(range(n)), level)
            assert not run.errors, run.errors
            print(
                f"{level:>11} {run.calls:>9,} {run.rate:>9,.0f} {run.pct_ms(50):>8.2f} "
                f"{run.pct_ms(99):>8.2f}"
            )
        print(f"a revoked ticket's token: {refused}")
        await core.bus.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args(argv)
    pinned = "not pinned (--no-pin)" if args.no_pin else pin_to_one_cpu()
    print(f"bench/verify.py — {machine()}; {pinned}")
    signature_table(n=2_000 if args.quick else 10_000, repeats=5 if args.quick else 15)
    asyncio.run(revocation_table(n=500 if args.quick else 3_000))


if __name__ == "__main__":
    main()
