"""Stagepass under hostile traffic: `/healthz` and ticket-claim latency, and the server's
memory, unloaded and while attackers send bad requests, in the same run.

    .venv/bin/python bench/hostile.py [--attackers 50] [--seconds 10] [--probes 200]

`stagepass run` is started as operators start it (its own process, SQLite, billing in
TEST MODE, the audio room, Slack over HTTP) on 127.0.0.1. Then, twice (unloaded, and
under attack), a prober measures one request at a time:

* `/healthz`: a GET answered without the database;
* a ticket claim: `POST /api/v1/spaces/{id}/holds` for a new buyer of a free Space (one
  conditional UPDATE, the ticket and its token).

The attack: `--attackers` clients, each on its own connection, in a loop, each request
one of: ids past 64 bits (`/api/v1/spaces/{huge}`, `/rooms/{huge}/info`), unsigned garbage
to `/slack/events`, a bad SDP offer with a bad token, and a 10 MB body to the Stripe
webhook (refused with a 413 after its first bytes: the rest is never read).
The attackers run in their own process (`--attack`, driven over JSON lines), niced by
`--attacker-nice` (10): on a real deployment attack traffic comes from other machines, so
on this one the attackers must neither share the prober's event loop (its own queue would
be counted as the server's latency) nor take the server's CPU first. `--attacker-nice 0`
shows the shared-machine case.
The server's RSS is read from /proc (now and peak). Figures only; never pass or fail.
Targets: p99 < 50 ms for both probes under attack, RSS < 400 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench.common import JsonLinesChild, machine, percentile

TOKEN = "bench-token"
HUGE_ID = "99999999999999999999"
TEN_MB = 10 * 1024 * 1024


@dataclass
class Attack:
    sent: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_attacker: dict[int, int] = field(default_factory=dict)

    def count(self, attacker: int, status: str) -> None:
        self.sent += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        self.by_attacker[attacker] = self.by_attacker.get(attacker, 0) + 1

    def sent_by(self, attacker: int) -> int:
        return self.by_attacker.get(attacker, 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of `pid`, in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU time `pid` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(data: Path, port: int, profile: str | None) -> subprocess.Popen[str]:
    keep = {
        k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TZ", "PYTHONPATH"}
    }
    env = {
        **keep,
        "STAGEPASS_DATA_DIR": str(data),
        "STAGEPASS_HTTP_PORT": str(port),
        "STAGEPASS_API_TOKEN": TOKEN,
        "STAGEPASS_LOG_FORMAT": "json",
        "STAGEPASS_LOG_LEVEL": "error",
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": "s" * 32,
        "SLACK_API_BASE": "http://127.0.0.1:9/api/",  # nowhere: no call leaves the machine
        # the probe claims hundreds of seats in one community within a minute: measure the
        # claim, not the hoarding limit (bot/ratelimits.py) that would refuse most of them
        "STAGEPASS_CLAIMS_PER_MINUTE_COMMUNITY": "0",
    }
    profiler = ["-m", "cProfile", "-o", str(Path(profile).resolve())] if profile else []
    command = [sys.executable, *profiler, "-m", "bot", "run"]
    return subprocess.Popen(
        command,
        cwd=data.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


async def wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit(f"stagepass run exited with {proc.returncode}")
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("stagepass run did not become ready in 60 s")


async def new_space(client: httpx.AsyncClient, capacity: int) -> int:
    starts = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    response = await client.post(
        "/api/v1/spaces",
        json={
            "host": {"platform": "discord", "community": "bench", "user_id": "host"},
            "title": "Hostile bench",
            "starts_at": starts,
            "price_minor": 0,
            "currency": "usd",
            "capacity": capacity,
        },
    )
    response.raise_for_status()
    space_id: int = response.json()["id"]
    return space_id


async def probe(base: str, space_id: int, probes: int, tag: str) -> dict[str, list[float]]:
    """One request at a time on a kept-alive connection; latencies in ms."""
    times: dict[str, list[float]] = {"healthz": [], "claim": []}
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        for i in range(probes):
            began = time.perf_counter()
            health = await client.get("/healthz")
            times["healthz"].append((time.perf_counter() - began) * 1000)
            assert health.status_code == 200, health.text
            buyer = {"platform": "discord", "community": "bench", "user_id": f"{tag}-{i}"}
            began = time.perf_counter()
            claim = await client.post(f"/api/v1/spaces/{space_id}/holds", json={"buyer": buyer})
            times["claim"].append((time.perf_counter() - began) * 1000)
            assert claim.status_code == 201, claim.text
    return times


KINDS = ("ids", "rooms", "slack", "sdp", "big")


async def attacker(
    base: str, stop: asyncio.Event, attack: Attack, seed: int, kinds: list[str], rate: float
) -> None:
    """Bad requests in a loop: `rate` a second (paced from a fixed schedule, so a slow
    answer is followed by a burst), or as fast as the server answers with `rate` 0."""
    rng = random.Random(seed)
    began = time.perf_counter() + rng.random() / max(rate, 1.0)
    big = b"x" * TEN_MB
    garbage_sdp = "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\na=group:BUNDLE 7 0\r\n" + "m=audio 9\r\n" * 50
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while not stop.is_set():
            if rate > 0:
                due = began + attack.sent_by(seed) / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            kind = rng.choice(kinds)
            try:
                if kind == "ids":
                    response = await client.get(
                        f"/api/v1/spaces/{HUGE_ID}", headers={"Authorization": f"Bearer {TOKEN}"}
                    )
                elif kind == "rooms":
                    response = await client.get(f"/rooms/{HUGE_ID}/info")
                elif kind == "slack":
                    response = await client.post(
                        "/slack/events",
                        content=rng.randbytes(rng.randrange(1, 4096)),
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )
                elif kind == "sdp":
                    response = await client.post(
                        "/rooms/1/offer", json={"sdp": garbage_sdp, "type": "offer", "token": "a.b"}
                    )
                else:
                    response = await client.post(
                        "/webhooks/stripe", content=big, headers={"Stripe-Signature": "t=1,v1=00"}
                    )
                attack.count(seed, str(response.status_code))
            except httpx.HTTPError as exc:  # a refused 10 MB body may end in a reset
                attack.count(seed, type(exc).__name__)


def row(name: str, values: list[float]) -> str:
    values = sorted(values)
    return (
        f"  {name:<28} p50 {percentile(values, 50):7.2f} ms   p99 {percentile(values, 99):7.2f}"
        f" ms   max {max(values):7.2f} ms   ({len(values)} requests)"
    )


async def main(args: argparse.Namespace) -> None:
    print(f"bench/hostile.py on {machine()}")
    with tempfile.TemporaryDirectory(prefix="stagepass-hostile-") as tmp:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(Path(tmp) / "data", port, args.profile)
        try:
            await wait_ready(base, proc)
            async with httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}
            ) as c:
                space_id = await new_space(c, capacity=10 * args.probes + 10)
            await probe(base, space_id, 20, "warm")  # first requests import and compile
            rss_idle = rss_mib(proc.pid)
            quiet = await probe(base, space_id, args.probes, "quiet")

            child = JsonLinesChild(
                await JsonLinesChild.spawn(
                    "bench.hostile",
                    "--attack",
                    base,
                    "--attackers",
                    str(args.attackers),
                    "--rate",
                    str(args.rate),
                    "--kinds",
                    args.kinds,
                    "--attacker-nice",
                    str(args.attacker_nice),
                )
            )
            try:
                await child.read()  # the attack is under way
                await asyncio.sleep(1.0)  # ... for a second before measuring
                began = time.perf_counter()
                cpu_began, sent_began = cpu_seconds_of(proc.pid), (await child.ask("count"))
                loud = await probe(base, space_id, args.probes, "loud")
                await asyncio.sleep(max(0.0, args.seconds - (time.perf_counter() - began)))
                rss_attack = rss_mib(proc.pid)
                cpu_used = cpu_seconds_of(proc.pid) - cpu_began
                attack = Attack(**await child.ask("stop"))
                attack_requests = attack.sent - sent_began
                elapsed = time.perf_counter() - began
            finally:
                if child.proc.returncode is None:
                    child.proc.kill()
                await child.proc.wait()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    print("\nunloaded")
    print(row("GET /healthz", quiet["healthz"]))
    print(row("ticket claim", quiet["claim"]))
    pace = f"{args.rate:g}/s each" if args.rate > 0 else "each as fast as answered"
    print(
        f"\nunder attack ({args.kinds}): {args.attackers} clients ({pace}, in a process "
        f"niced {args.attacker_nice}), "
        f"{attack.sent:,} bad requests "
        f"({attack.sent / elapsed:,.0f}/s)"
    )
    print(row("GET /healthz", loud["healthz"]))
    print(row("ticket claim", loud["claim"]))
    statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(attack.by_status.items()))
    print(f"  attack answers: {statuses}")
    server_errors = sum(v for k, v in attack.by_status.items() if k.startswith("5"))
    print(f"  5xx answers to the attack: {server_errors:,}")
    print(
        f"  server CPU: {cpu_used / elapsed:.2f} cores, "
        f"{cpu_used * 1000 / max(attack_requests, 1):.2f} ms per bad request "
        f"(probes included)"
    )
    print(
        f"\nserver RSS: {rss_idle[0]:.0f} MiB unloaded; {rss_attack[0]:.0f} MiB under attack, "
        f"peak {rss_attack[1]:.0f} MiB (target < 400 MB)"
    )
    targets = max(percentile(sorted(loud["healthz"]), 99), percentile(sorted(loud["claim"]), 99))
    print(f"worst p99 under attack: {targets:.1f} ms (target < 50 ms)")


async def attack_only(args: argparse.Namespace) -> None:
    """The attackers' process: attack `args.attack` at once, say so on stdout; answer
    "count" with the requests sent so far, "stop" with the whole tally, then end."""
    os.nice(args.attacker_nice)
    stop, attack = asyncio.Event(), Attack()
    kinds = args.kinds.split(",")
    attackers = [
        asyncio.create_task(attacker(args.attack, stop, attack, seed, kinds, args.rate))
        for seed in range(args.attackers)
    ]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps("attacking"), flush=True)
    while line := await reader.readline():
        if line.strip() == b"count":  # JsonLinesChild sends a str as it is
            print(json.dumps(attack.sent), flush=True)
            continue
        stop.set()
        await asyncio.gather(*attackers)
        tally = {
            "sent": attack.sent,
            "by_status": attack.by_status,
            "by_attacker": attack.by_attacker,
        }
        print(json.dumps(tally), flush=True)
        return
    stop.set()  # the driver went away
    await asyncio.gather(*attackers)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attackers", type=int, default=50)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="at least this long under attack"
    )
    parser.add_argument("--probes", type=int, default=300, help="requests of each kind")
    parser.add_argument(
        "--rate",
        type=float,
        default=10.0,
        help="bad requests a second per attacker; 0: as fast as answered",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="run the server under cProfile, its stats written to FILE"
    )
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"bad requests to send, of {','.join(KINDS)}"
    )
    parser.add_argument(
        "--attacker-nice",
        type=int,
        default=10,
        help="niceness of the attackers' process (0: same priority)",
    )
    parser.add_argument("--attack", metavar="BASE", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    asyncio.run(attack_only(arguments) if arguments.attack else main(arguments))
