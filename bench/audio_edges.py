"""Audio edges over NATS: the origin's CPU with N listeners on the origin itself beside the
same N listeners on an edge process, and the delay the NATS hop adds, in the same run.

    .venv/bin/python bench/audio_edges.py [--listeners 10 50 150] [--window 5] [--warmup 2]
                                          [--nats nats://127.0.0.1:4222]

Load: one speaker (the host, a 440 Hz tone) and N listeners, aiortc peers in a child process
(bench/audio_peers.py), as in bench/audio_fanout.py.

* ``origin``: the baseline, the room and all its listeners in this process.
* ``edge``: this process is the origin (a `Room` with an `OriginLink`, the speaker joins
  it); a second child process is the edge (an `EdgeLink` registry) and answers the N
  listeners, which hear the origin's mix relayed over NATS.

Origin CPU is `time.process_time()` of this process over the measured window divided by the
RTP packets the listeners received: with edges it should no longer grow with listeners. The
hop is the time from the origin queueing a packet for NATS to the edge handing it to its
listeners' fan-out (both processes read the same wall clock); in-process that hand-over is a
function call. Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nats.aio.client import Client as NATS
from prometheus_client import CollectorRegistry

from audio import Admission, RoomRegistry
from audio.edges import EdgeLink, OriginLink
from audio.metrics import AudioMetrics
from bench.audio_fanout import Child, runqueue_wait
from bench.audio_peers import _emit, _read_line, use_loopback_if_needed
from bench.common import JsonLinesChild

SPACE = 1
DEFAULT_NATS = "nats://127.0.0.1:4222"


@dataclass
class Run:
    mode: str
    listeners: int
    connected: int
    origin_cpu: float
    edge_cpu: float
    seconds: float
    packets: int
    starved: float
    hop: tuple[float, float] | None = None
    """(p50, p95) seconds of the NATS hop, edge mode only."""
    lost: int = 0

    def per_packet(self, cpu: float) -> float:
        return cpu / self.packets * 1e6 if self.packets else float("nan")

    @property
    def pps(self) -> float:
        return self.packets / self.seconds / max(1, self.listeners)


class EdgeProcess(JsonLinesChild):
    """The edge node in a child process (see `edge_child`)."""

    name = "edge"

    @classmethod
    async def start(cls, url: str) -> EdgeProcess:
        edge = cls(await cls.spawn("bench.audio_edges", "--edge-child", "--nats", url))
        await edge.read()  # {"ready": true}
        return edge

    async def finish(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.ask("quit")
            finally:
                if self.proc.returncode is None:
                    self.proc.kill()
                await self.proc.wait()


async def edge_child(url: str) -> None:
    """The edge node: answers listeners' offers from the origin's mix over NATS."""
    use_loopback_if_needed()
    link = EdgeLink(NATS())
    await link.connect(url)
    registry = RoomRegistry(metrics=AudioMetrics(CollectorRegistry()), link=link)
    _emit({"ready": True})
    marked, cpu_marked = time.monotonic(), time.process_time()
    while True:
        line = (await _read_line()).strip()
        if line == "mark":
            stats = link.stats(SPACE)
            if stats is not None:
                stats.lags.clear()
                stats.lost = 0
            marked, cpu_marked = time.monotonic(), time.process_time()
            _emit({"marked": True})
        elif line == "report":
            stats = link.stats(SPACE)
            lags = sorted(stats.lags) if stats is not None else []
            _emit(
                {
                    "cpu": time.process_time() - cpu_marked,
                    "seconds": time.monotonic() - marked,
                    "p50": statistics.median(lags) if lags else None,
                    "p95": lags[int(len(lags) * 0.95)] if lags else None,
                    "lost": stats.lost if stats is not None else 0,
                }
            )
        elif line == "quit":
            break
        else:
            offer = json.loads(line)
            room = await registry.joinable(SPACE)
            assert room is not None, "the origin's room is not open"
            peer = int(offer["id"])
            admission = Admission(f"t{peer}", SPACE, f"l{peer}", f"L{peer}", "listener")
            sdp, kind = await room.join(offer["sdp"], offer["type"], admission)
            _emit({"id": peer, "sdp": sdp, "type": kind})
    await registry.aclose()
    await link.aclose()
    _emit({"closed": True})


async def measure(mode: str, listeners: int, args: argparse.Namespace) -> Run:
    """One load: the speaker on this process's room, listeners here or on the edge."""
    metrics = AudioMetrics(CollectorRegistry())
    origin_link = OriginLink(NATS()) if mode == "edge" else None
    if origin_link is not None:
        await origin_link.connect(args.nats)
    registry = RoomRegistry(metrics=metrics, link=origin_link)
    room = await registry.open(SPACE)
    edge = await EdgeProcess.start(args.nats) if mode == "edge" else None
    child = await Child.start(listeners, args.connect, speaker=True)
    try:
        offers = [await child.read() for _ in range(listeners + 1)]
        for offer in sorted(offers, key=lambda o: int(o["id"])):
            peer = int(offer["id"])
            if peer == 0:
                admission = Admission(None, SPACE, "speaker", "Speaker", "host")
                sdp, kind = await room.join(offer["sdp"], offer["type"], admission)
            elif edge is not None:
                answer = await edge.ask(offer)
                sdp, kind = answer["sdp"], answer["type"]
            else:
                admission = Admission(f"t{peer}", SPACE, f"l{peer}", f"L{peer}", "listener")
                sdp, kind = await room.join(offer["sdp"], offer["type"], admission)
            await child.send({"id": peer, "sdp": sdp, "type": kind})
        connected = int((await child.read())["ready"])
        await asyncio.sleep(args.warmup)
        await child.send("mark")
        await child.read()
        if edge is not None:
            await edge.ask("mark")
        cpu0, wall0, wait0 = time.process_time(), time.monotonic(), runqueue_wait()
        await asyncio.sleep(args.window)
        await child.send("report")
        report = await child.read()
        cpu, seconds = time.process_time() - cpu0, time.monotonic() - wall0
        starved = (runqueue_wait() - wait0) / seconds
        edge_report = await edge.ask("report") if edge is not None else {}
        await child.finish()
    finally:
        if child.proc.returncode is None:
            child.proc.kill()
            await child.proc.wait()
        if edge is not None:
            await edge.finish()
        await registry.aclose()
        if origin_link is not None:
            await origin_link.aclose()
    # The child's window is a little longer than ours: scale its counts to ours.
    packets = int(sum(report["counts"]) / report["seconds"] * seconds)
    hop = None
    if edge_report.get("p50") is not None:
        hop = (edge_report["p50"], edge_report["p95"])
    return Run(
        mode=mode, listeners=listeners, connected=connected, origin_cpu=cpu,
        edge_cpu=edge_report.get("cpu", 0.0), seconds=seconds, packets=packets,
        starved=starved, hop=hop, lost=edge_report.get("lost", 0),
    )  # fmt: skip


def nats_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), 1):
            return True
    except OSError:
        return False


def print_table(runs: list[Run]) -> None:
    print()
    print(
        f"{'listeners':>9} {'mode':>6} {'connected':>9} {'pkts/s/listener':>15} "
        f"{'origin us/packet':>16} {'edge us/packet':>14} {'origin cores':>12} "
        f"{'starved':>7}  NATS hop p50 / p95"
    )
    for r in runs:
        hop = f"{r.hop[0] * 1e3:.2f} / {r.hop[1] * 1e3:.2f} ms" if r.hop else "in-process"
        edge = f"{r.per_packet(r.edge_cpu):>14.1f}" if r.mode == "edge" else f"{'-':>14}"
        print(
            f"{r.listeners:>9} {r.mode:>6} {r.connected:>9} {r.pps:>15.1f} "
            f"{r.per_packet(r.origin_cpu):>16.1f} {edge} {r.origin_cpu / r.seconds:>12.3f} "
            f"{r.starved:>7.0%}  {hop}" + (f" ({r.lost} lost)" if r.lost else "")
        )
    by = {(r.mode, r.listeners): r for r in runs}
    ratios = [
        f"{n}: {e.per_packet(e.origin_cpu) / o.per_packet(o.origin_cpu):.2f}x"
        for (mode, n), e in by.items()
        if mode == "edge" and (o := by.get(("origin", n))) is not None
    ]
    if ratios:
        print("\nOrigin CPU per packet delivered, listeners on an edge / on the origin: ")
        print("  " + ", ".join(ratios))
    hops = [r.hop for r in runs if r.hop]
    if hops:
        print(
            "NATS hop (origin queues -> edge fan-out), worst run: "
            f"p50 {max(h[0] for h in hops) * 1e3:.2f} ms, p95 {max(h[1] for h in hops) * 1e3:.2f}"
            " ms; the in-process baseline hands packets over in the same call (0 ms)."
        )


async def main(args: argparse.Namespace) -> None:
    use_loopback_if_needed()
    logging.getLogger("audio.mixer").setLevel(logging.ERROR)
    print(
        f"audio edges bench: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; window {args.window}s after "
        f"{args.warmup}s warm-up; peers and the edge in child processes; NATS {args.nats}"
    )
    modes = ["origin", "edge"]
    if not nats_reachable(args.nats):
        print(f"NATS is not reachable at {args.nats}: only the in-process baseline runs")
        modes = ["origin"]
    runs = []
    for listeners in args.listeners:
        for mode in modes:
            run = await measure(mode, listeners, args)
            runs.append(run)
            print(
                f"  {mode:>6} x {listeners:<4} origin {run.per_packet(run.origin_cpu):.1f} "
                f"us/packet, {run.pps:.1f} pkts/s/listener ({run.connected} connected)",
                flush=True,
            )
    print_table(runs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, nargs="+", default=[10, 50, 150])
    parser.add_argument("--window", type=float, default=5.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--connect", type=float, default=30.0, help="connect deadline, s")
    parser.add_argument("--nats", default=DEFAULT_NATS, help="NATS server URL")
    parser.add_argument("--edge-child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.edge_child:
        asyncio.run(edge_child(arguments.nats))
    else:
        asyncio.run(main(arguments))
