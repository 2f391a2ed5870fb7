"""bench/audio_edges.py still runs at its smallest size against the real NATS server: one
origin and three edge processes, listeners spread over the edges, and a table of origin CPU
and mouth-to-ear delay direct and through an edge. The figures' shape and sanity are
checked, never their speed (tests never assert on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import ensure_nats

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.nats, pytest.mark.timeout(400)]


def test_edges_bench_prints_origin_cpu_and_both_delays(tmp_path: Path) -> None:
    url = ensure_nats()
    out = tmp_path / "runs.jsonl"
    done = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "audio_edges.py"),
            "--listeners", "3", "--window", "2", "--warmup", "0.5",
            "--nats", url, "--json", str(out),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=380,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for line in ("Origin cores as listeners grow, edges: 3: ", "edge p99 - direct p99"):
        assert line in done.stdout, done.stdout[-3000:]
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["mode"], r["listeners"]) for r in runs] == [("direct", 3), ("edges", 3)]
    for run in runs:
        assert run["connected"] == run["listeners"], run
        assert run["probe_connected"] == 3, run  # the speaker and both timing listeners
        assert len(run["edge_cpu"]) == 3 and all(cpu >= 0 for cpu in run["edge_cpu"]), run
        assert run["origin_cpu"] > 0 and run["client_cpu"] > 0 and run["packets"] > 0, run
        assert run["bursts"] > 0, run
        for path in ("direct", "edge"):
            # A delay is matched to the burst sent before it, within 0.8 of a period.
            assert all(0 < delay < 0.8 * 0.2 for delay in run[path]), run
    # Over the whole run both listeners heard bursts: through the origin and an edge.
    assert sum(len(r["direct"]) for r in runs) > 0
    assert sum(len(r["edge"]) for r in runs) > 0
