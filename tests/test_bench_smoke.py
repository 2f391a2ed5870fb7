"""The benchmark scripts still run: each, at its smallest size, exits 0 and prints its
table. (They measure; the figures are not checked here: tests never assert on time.)
bench/reminders.py is left out: it waits for real minute boundaries; bench/audio_edges.py has
its own test (tests/test_bench_edges.py), which needs NATS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow]

SMALLEST = {
    "tickets.py": (["--quick", "--no-postgres"], "OVERSOLD"),
    "verify.py": (["--quick"], "revoked ticket"),
    "offers.py": (["--quick"], "BUNDLE 7 0, refused"),
    "logs.py": (["--quick"], "secret shown: no"),
    "seats.py": (["--quick"], "seat rule: one person in 3 queries"),
    "desk.py": (["--quick", "--no-postgres"], "target: under 300 ms"),
    "cli_import.py": (["--runs", "1"], "import bot.cli"),
    "slack_edge.py": (["--quick"], "signed button click"),
    "webhooks.py": (
        ["--events", "20", "--concurrency", "4", "--no-postgres"],
        "events stored once",
    ),
    "bridge_latency.py": (["--seconds", "1"], "discord -> room"),
    "audio_latency.py": (["--seconds", "1", "--sessions", "1", "--loss", "0"], "bursts heard"),
    "audio_fanout.py": (
        [
            "--listeners",
            "3",
            "--impl",
            "fastlane",
            "sendto",
            "python",
            "stagepass",
            "--window",
            "1",
            "--warmup",
            "0.5",
        ],
        "python / fastlane",
    ),
    "hostile.py": (
        ["--attackers", "5", "--seconds", "1", "--probes", "10", "--rate", "5"],
        "worst p99 under attack",
    ),
}


@pytest.mark.parametrize("script", sorted(SMALLEST))
def test_bench_script_runs(script: str) -> None:
    args, expected = SMALLEST[script]
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert expected in done.stdout, done.stdout[-3000:]


def test_every_bench_script_is_covered_or_explained() -> None:
    scripts = {p.name for p in (ROOT / "bench").glob("*.py")}
    helpers = {"__init__.py", "common.py", "audio_peers.py", "services.py"}
    own_tests = {"audio_edges.py"}  # tests/test_bench_edges.py (it needs NATS)
    assert scripts - helpers - own_tests - {"reminders.py"} == set(SMALLEST)
