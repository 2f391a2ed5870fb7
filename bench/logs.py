"""What one logged error costs to render, secrets masked: milliseconds, not seconds.

    .venv/bin/python bench/logs.py [--quick]

Logs an exception raised 20 frames deep, whose frames hold large locals (a request's
headers, a 50 kB body), through `bot.logs.configure`'s console renderer on a 200-column
"terminal" (colours on) with 12 configured secrets, and prints the time per error. For
contrast, the same error through structlog's default console renderer with Rich
tracebacks and frame locals (what the logs did before).

Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog

from bench.common import machine
from bot.logs import configure, redactor

SECRETS = [f"sk_test_{n:02d}" + "Q7wE9rT1yU3iO5pA2sD4fG6hJ8kL0zX" for n in range(12)]


def _deep(depth: int, body: str, headers: dict[str, str]) -> None:
    if depth == 0:
        raise RuntimeError(f"upstream refused: {headers['Authorization']}")
    _deep(depth - 1, body, headers)


def _one_error(log: Any) -> None:
    try:
        _deep(20, "x" * 50_000, {"Authorization": f"Bearer {SECRETS[0]}", "X-Other": "y" * 200})
    except RuntimeError:
        log.exception("unhandled error in HTTP request", route="/api/v1/spaces/{space_id}")


def _timed(n: int) -> list[float]:
    log = structlog.get_logger("bench")
    times = []
    for _ in range(n):
        started = time.perf_counter()
        _one_error(log)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _old_style(out: io.StringIO) -> None:
    """structlog's console renderer as it was wired before: Rich, with frame locals."""
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.dev.ConsoleRenderer(colors=True),
            ]
        )
    )
    logging.getLogger().handlers[:] = [handler]
    structlog.configure(
        processors=[structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few errors only")
    args = parser.parse_args()
    n, old_n = (20, 1) if args.quick else (300, 3)
    os.environ["COLUMNS"] = "200"
    print(machine())

    out = io.StringIO()
    configure("info", "console", secrets=SECRETS, colors=True, stream=out)
    times = _timed(n)
    text = out.getvalue()
    leaked = any(secret[i : i + 16] in text for secret in SECRETS for i in range(len(secret) - 15))
    med, worst = statistics.median(times), max(times)
    print(
        f"stagepass logs: {med:.2f} ms per error (median of {n}), worst {worst:.2f} ms, "
        f"{len(text) // n} chars each, secret shown: {'YES' if leaked else 'no'}"
    )

    redactor.clear()
    old = io.StringIO()
    _old_style(old)
    old_times = _timed(old_n)
    print(
        f"rich + locals (before): {statistics.median(old_times):.0f} ms per error "
        f"(median of {old_n}), {len(old.getvalue()) // old_n} chars each"
    )


if __name__ == "__main__":
    main()
