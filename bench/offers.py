"""What an SDP offer costs the room: refused by the checks, or answered.

    .venv/bin/python bench/offers.py [--quick]

1. `check_offer` on a real Chromium offer (`tests/audio/chromium_offer.sdp`), and on
   hostile ones it refuses (``a=group:BUNDLE 7 0``; a line repeated 1,000 times): the cost
   of a refusal, which is all a hostile ticket holder can make the server spend.
2. `Room.join` of the clean offer, end to end (peer connection, certificate, ICE
   gathering, answer) and then its close: the cost the checks save on every refusal.

Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audio.admission import Admission
from audio.errors import BadOffer
from audio.offer import check_offer
from audio.registry import RoomRegistry
from bench.common import machine

OFFER = (
    (Path(__file__).resolve().parents[1] / "tests" / "audio" / "chromium_offer.sdp")
    .read_bytes()
    .decode()
)


def per_call_us(sdp: str, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        with contextlib.suppress(BadOffer):
            check_offer(sdp, "offer")
    return (time.perf_counter() - start) / rounds * 1e6


async def joins_ms(rounds: int) -> tuple[float, float]:
    """Median milliseconds to answer the clean offer, and to close that session."""
    answer: list[float] = []
    close: list[float] = []
    async with RoomRegistry() as registry:
        room = await registry.open(1)
        for i in range(rounds):
            admission = Admission(f"t{i}", 1, f"p{i}", f"P{i}", "listener")
            start = time.perf_counter()
            await room.join(OFFER, "offer", admission)
            answer.append(time.perf_counter() - start)
            start = time.perf_counter()
            await room.remove(admission.identity_key)
            close.append(time.perf_counter() - start)
    return statistics.median(answer) * 1e3, statistics.median(close) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds (a smoke run)")
    args = parser.parse_args()
    rounds, joins = (200, 5) if args.quick else (5_000, 50)
    bundle = OFFER.replace("a=group:BUNDLE 0", "a=group:BUNDLE 7 0")
    lines = OFFER.split("\r\n")
    flood = "\r\n".join(lines[:12] + [lines[12]] * 1_000 + lines[12:])

    print(machine())
    print(f"{'offer':<44}{'per check':>14}")
    for name, sdp in (
        ("Chromium's, answered", OFFER),
        ("a=group:BUNDLE 7 0, refused", bundle),
        ("a candidate line x1,000, refused", flood),
    ):
        print(f"{name:<44}{per_call_us(sdp, rounds):>11.0f} us")
    answer, close = asyncio.run(joins_ms(joins))
    print(f"{'Room.join of the clean offer (median)':<44}{answer:>11.1f} ms")
    print(f"{'closing that session (median)':<44}{close:>11.1f} ms")


if __name__ == "__main__":
    main()
