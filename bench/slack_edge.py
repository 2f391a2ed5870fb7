"""What `/slack/events` spends on a request before Bolt sees it, in process, on one core.

    .venv/bin/python bench/slack_edge.py [--quick]

For each kind of body (an attacker's unsigned garbage, a signed body that is not a Slack
payload, a real signed button click): the signature check over the raw bytes
(adapters/slack/signatures.py) and the payload's shape check (adapters/slack/payloads.py),
next to slack-sdk's own `SignatureVerifier` plus Bolt's `parse_body` as the baseline.
Prints microseconds per request; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier

from adapters.slack.payloads import Malformed, read
from adapters.slack.signatures import Signatures, Unsigned

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
FORM = "application/x-www-form-urlencoded"


def click() -> bytes:
    payload = {
        "type": "block_actions", "team": {"id": "T0ACME", "domain": "acme"},
        "user": {"id": "UHOST01", "username": "alice", "team_id": "T0ACME"},
        "api_app_id": "A0STAGE", "trigger_id": "trigger.1",
        "container": {"type": "message", "message_ts": "1.1", "channel_id": "C1"},
        "channel": {"id": "C1", "name": "general"}, "response_url": "https://x.test/r",
        "actions": [{"type": "button", "action_id": "run:0", "block_id": "b",
                     "value": "/ticket buy 1", "action_ts": "1.2"}],
    }  # fmt: skip
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def us_per_call(fn: Callable[[], None], n: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few calls (a smoke run)")
    args = parser.parse_args()
    n, repeats = (200, 3) if args.quick else (20_000, 7)

    signatures = Signatures(SECRET)
    verifier = SignatureVerifier(SECRET)
    now = str(int(time.time()))
    bodies: dict[str, tuple[bytes, dict[str, str] | None]] = {
        "unsigned garbage (10 kB)": (b"payload=%7B" + b"x" * 10_000, {}),
        "signed, not a payload": (b"payload=%7B", None),
        "signed button click": (click(), None),
    }

    def ours(body: bytes, headers: dict[str, str]) -> Callable[[], None]:
        def run() -> None:
            try:
                signatures.check(headers, body)
                read(body, FORM)
            except (Unsigned, Malformed):
                pass

        return run

    def baseline(body: bytes, headers: dict[str, str]) -> Callable[[], None]:
        """What Bolt did: its ValueErrors (no timestamp, a body that is not JSON) were the
        500s."""
        timestamp = headers.get("x-slack-request-timestamp", "")
        signature = headers.get("x-slack-signature", "")

        def run() -> None:
            with contextlib.suppress(ValueError):
                if verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
                    parse_body(body.decode(), FORM)

        return run

    print(f"{'request':<28}{'check + shape':>16}{'sdk verify + parse':>22}")
    for label, (body, given) in bodies.items():
        headers = (
            given
            if given is not None
            else {
                "x-slack-request-timestamp": now,
                "x-slack-signature": signatures.sign(now, body),
            }
        )
        a = us_per_call(ours(body, headers), n, repeats)
        b = us_per_call(baseline(body, headers), n, repeats)
        print(f"{label:<28}{a:>13.1f} us{b:>19.1f} us")


if __name__ == "__main__":
    main()
