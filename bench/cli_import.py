"""What starting the `stagepass` command costs: `import bot.cli` in a fresh interpreter.

    .venv/bin/python bench/cli_import.py [--runs 7]

Each case runs in new processes (the OS file cache warm after the first); the median and
the fastest wall time are printed, with the platform SDKs the import loaded. The
comparison case imports the Discord adapter as well — what `import bot.cli` loaded before
packages plugged in through entry points (the CLI mounted `adapters.discord.cli`, whose
package imported discord.py). Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine

ROOT = Path(__file__).resolve().parents[1]
SDKS = ("discord", "slack_bolt", "aiortc", "stripe", "apscheduler")
CASES = {
    "import bot.cli": "import bot.cli",
    "stagepass --help": "import sys; sys.argv = ['stagepass', '--help']\n"
    "import bot.cli\ntry:\n    bot.cli.app()\nexcept SystemExit:\n    pass",
    "bot.cli + the Discord adapter (as before)": "import bot.cli, adapters.discord.app",
}


def once(code: str) -> tuple[float, list[str]]:
    found = f"','.join(m for m in {SDKS!r} if m in sys.modules)"
    probe = f"{code}\nimport sys\nprint('SDKS:' + {found})"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    elapsed = time.perf_counter() - start
    [loaded] = [line[5:] for line in done.stdout.splitlines() if line.startswith("SDKS:")]
    return elapsed, [m for m in loaded.split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(machine())
    print(f"{'case':<44} {'median':>8} {'fastest':>8}  SDKs loaded")
    for name, code in CASES.items():
        once(code)  # warm the file cache
        times: list[float] = []
        loaded: list[str] = []
        for _ in range(args.runs):
            elapsed, loaded = once(code)
            times.append(elapsed)
        print(
            f"{name:<44} {statistics.median(times):>7.2f}s {min(times):>7.2f}s  "
            f"{', '.join(loaded) or 'none'}"
        )


if __name__ == "__main__":
    main()
