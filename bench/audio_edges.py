"""Audio edges over NATS: one origin and three edge processes on this machine. The origin's
CPU as listeners grow, with the listeners on the origin (direct) and spread over the edges,
and mouth-to-ear delay through an edge beside direct, in the same run.

    .venv/bin/python bench/audio_edges.py [--listeners 30 90 150] [--edges 3] [--window 10]
        [--warmup 2] [--period 0.2] [--per-child 100] [--nats nats://127.0.0.1:4222]
        [--json FILE]

Processes, each measured on its own (process CPU seconds over the window):

* origin: this process. The room, its mixer and its `OriginLink` (NATS publisher).
* edges: ``--edges`` child processes, each an `EdgeLink` registry answering listeners.
* load: listeners-only aiortc clients that count packets (bench/audio_peers.py, in child
  processes of ``--per-child``).
* probe: one child process with the speaker (a 1 kHz burst every ``--period`` s), a
  listener joined on the origin (*direct*) and one joined on the first edge (*edge*). Both
  decode what they receive and timestamp each burst's onset on the probe's own clock
  (bench/audio_latency.py's detector), so the two paths are measured on the same bursts.

Per listener count two modes run: ``direct``, the load listeners on the origin (the
baseline), and ``edges``, the same listeners spread over the edges. The origin's CPU
should stay flat across listener counts with edges. Mouth-to-ear covers the speaker's
encoder, the origin's jitter buffer and mixer tick, the NATS hop and the edge's fan-out, up
to the listener's receiver, not its playout buffer. NATS at 127.0.0.1 is started if it is
down (as the machine's services are), and the bench stops loudly if it cannot be reached.
Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from nats.aio.client import Client as NATS
from prometheus_client import CollectorRegistry

from audio import Admission, RoomRegistry
from audio.edges import EdgeLink, OriginLink
from audio.metrics import AudioMetrics
from audio.rtptap import install_tap
from bench.audio_fanout import Child, runqueue_wait
from bench.audio_latency import OnsetDetector, match_delays
from bench.audio_peers import (
    ToneTrack,
    _emit,
    _read_line,
    _until_connected,
    use_loopback_if_needed,
)
from bench.common import JsonLinesChild
from bench.services import start_nats

DEFAULT_NATS = "nats://127.0.0.1:4222"


@dataclass
class Run:
    mode: str
    listeners: int
    connected: int
    probe_connected: int
    seconds: float
    origin_cpu: float
    edge_cpu: list[float]
    client_cpu: float
    packets: int
    starved: float
    bursts: int
    direct: list[float]
    """Mouth-to-ear delays, seconds, of the probe's listener on the origin."""
    edge: list[float]
    """The same bursts heard by the probe's listener on the first edge."""
    hop: list[float | None]
    """NATS hop p50 per edge (origin queues -> edge fan-out), seconds."""

    @property
    def pps(self) -> float:
        return self.packets / self.seconds / max(1, self.listeners)

    @property
    def origin_cores(self) -> float:
        return self.origin_cpu / self.seconds

    @property
    def origin_ms_per_listener_second(self) -> float:
        return self.origin_cpu / (max(1, self.listeners) * self.seconds) * 1e3


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class EdgeProcess(JsonLinesChild):
    """An edge node in a child process (see `edge_child`)."""

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


class ProbeProcess(JsonLinesChild):
    """The speaker and the two timing listeners in a child process (see `probe_child`)."""

    name = "probe"

    @classmethod
    async def start(cls, period: float, connect: float) -> ProbeProcess:
        return cls(
            await cls.spawn(
                "bench.audio_edges", "--probe-child", "--period", str(period),
                "--connect", str(connect),
            )
        )  # fmt: skip

    async def finish(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.send("quit")
                await self.read()
            finally:
                if self.proc.returncode is None:
                    self.proc.kill()
                await self.proc.wait()


async def edge_child(url: str) -> None:
    """An edge node: answers listeners' offers from the origin's mix over NATS. It serves
    one Space at a time (each measurement opens a new one): ``{"space": N}`` switches."""
    use_loopback_if_needed()
    link = EdgeLink(NATS())
    await link.connect(url)
    registry = RoomRegistry(metrics=AudioMetrics(CollectorRegistry()), link=link)
    _emit({"ready": True})
    cpu_marked = time.process_time()
    space = 0
    while True:
        line = (await _read_line()).strip()
        if line.startswith('{"space"'):
            space = json.loads(line)["space"]
            _emit({"space": space})
        elif line == "mark":
            stats = link.stats(space)
            if stats is not None:
                stats.lags.clear()
                stats.lost = 0
            cpu_marked = time.process_time()
            _emit({"marked": True})
        elif line == "report":
            stats = link.stats(space)
            lags = list(stats.lags) if stats is not None else []
            _emit(
                {
                    "cpu": time.process_time() - cpu_marked,
                    "hop": statistics.median(lags) if lags else None,
                    "lost": stats.lost if stats is not None else 0,
                }
            )
        elif line == "quit":
            break
        else:
            offer = json.loads(line)
            room = await registry.joinable(space)
            assert room is not None, "the origin's room is not open"
            peer = int(offer["id"])
            admission = Admission(f"t{peer}", space, f"l{peer}", f"L{peer}", "listener")
            sdp, kind = await room.join(offer["sdp"], offer["type"], admission)
            _emit({"id": peer, "sdp": sdp, "type": kind})
    await registry.aclose()
    await link.aclose()
    _emit({"closed": True})


async def probe_child(period: float, connect: float) -> None:
    """The speaker (bursts) and two listeners, ``direct`` and ``edge``, on one clock."""
    use_loopback_if_needed()
    loop = asyncio.get_running_loop()
    config = RTCConfiguration(iceServers=[])
    mic = ToneTrack(1_000, amplitude=12_000, burst_every=round(period / 0.02))
    peers = {"speaker": RTCPeerConnection(config)}
    peers["speaker"].addTransceiver(mic, direction="sendonly")
    ears: dict[str, OnsetDetector] = {}
    for name in ("direct", "edge"):
        pc = peers[name] = RTCPeerConnection(config)
        ears[name] = OnsetDetector()
        install_tap(
            pc.addTransceiver("audio", direction="recvonly").receiver, ears[name], loop.time
        )
    for name, pc in peers.items():
        await pc.setLocalDescription(await pc.createOffer())
        _emit({"id": name, "sdp": pc.localDescription.sdp, "type": pc.localDescription.type})
    for _ in peers:
        answer = json.loads(await _read_line())
        await peers[answer["id"]].setRemoteDescription(
            RTCSessionDescription(sdp=answer["sdp"], type=answer["type"])
        )
    await _until_connected(list(peers.values()), loop.time() + connect)
    _emit({"ready": sum(pc.connectionState == "connected" for pc in peers.values())})
    marked, cpu_marked = loop.time(), time.process_time()
    while True:
        command = (await _read_line()).strip()
        if command == "mark":
            marked, cpu_marked = loop.time(), time.process_time()
            _emit({"marked": True})
        elif command == "report":
            mouths = [t for t in mic.burst_times if t >= marked]
            report: dict[str, Any] = {
                "bursts": len(mouths),
                "cpu": time.process_time() - cpu_marked,
            }
            for name, ear in ears.items():
                onsets = [t for t in ear.onsets if t >= marked]
                report[name] = match_delays(mouths, onsets, period)
            _emit(report)
        elif command == "quit":
            break
    await asyncio.gather(*(pc.close() for pc in peers.values()))
    _emit({"closed": True})


async def measure(
    mode: str, listeners: int, space: int, edges: list[EdgeProcess], args: argparse.Namespace
) -> Run:
    """One load: the origin here, the edges and clients in child processes."""
    metrics = AudioMetrics(CollectorRegistry())
    origin_link = OriginLink(NATS())
    await origin_link.connect(args.nats)
    registry = RoomRegistry(metrics=metrics, link=origin_link)
    room = await registry.open(space)
    for edge in edges:
        await edge.ask({"space": space})
    shares = [args.per_child] * (listeners // args.per_child)
    if listeners % args.per_child:
        shares.append(listeners % args.per_child)
    # The clients start together (their imports take a while); the probe is answered last.
    loads, probe = await asyncio.gather(
        asyncio.gather(*(Child.start(n, args.connect, speaker=False) for n in shares)),
        ProbeProcess.start(args.period, args.connect),
    )

    async def on_origin(peer: str, offer: dict[str, str], role: str) -> tuple[str, str]:
        identity = "speaker" if role == "host" else f"l{peer}"
        ticket = None if role == "host" else f"t{peer}"
        admission = Admission(ticket, space, identity, identity, role)
        return await room.join(offer["sdp"], offer["type"], admission)

    try:
        # Load listeners first (ids 1.. across the children), so their handshakes are done
        # before the probe's speaker starts the audio.
        base = 0
        for child, n in zip(loads, shares, strict=True):
            for _ in range(n):
                offer = await child.read()
                local = int(offer["id"])
                peer = base + local
                if mode == "direct":
                    sdp, kind = await on_origin(str(peer), offer, "listener")
                else:
                    answer = await edges[peer % len(edges)].ask({**offer, "id": peer})
                    sdp, kind = answer["sdp"], answer["type"]
                await child.send({"id": local, "sdp": sdp, "type": kind})
            base += n
        connected = sum([int((await child.read())["ready"]) for child in loads])
        for _ in range(3):
            offer = await probe.read()
            name = offer["id"]
            if name == "edge":
                answer = await edges[0].ask({**offer, "id": 0})
                sdp, kind = answer["sdp"], answer["type"]
            else:
                sdp, kind = await on_origin(
                    name, offer, "host" if name == "speaker" else "listener"
                )
            await probe.send({"id": name, "sdp": sdp, "type": kind})
        probe_connected = int((await probe.read())["ready"])
        await asyncio.sleep(args.warmup)
        for node in (*loads, *edges, probe):
            await node.ask("mark")
        cpu0, wall0, wait0 = time.process_time(), time.monotonic(), runqueue_wait()
        await asyncio.sleep(args.window)
        reports = [await child.ask("report") for child in loads]
        heard = await probe.ask("report")
        cpu, seconds = time.process_time() - cpu0, time.monotonic() - wall0
        starved = (runqueue_wait() - wait0) / seconds
        edge_reports = [await edge.ask("report") for edge in edges]
    finally:
        for child in loads:
            if child.proc.returncode is None:
                try:
                    await child.finish()
                except (RuntimeError, BrokenPipeError, ConnectionResetError):
                    child.proc.kill()
                    await child.proc.wait()
        await probe.finish()
        await registry.aclose()
        await origin_link.aclose()
    # Each client's window is a little longer than ours: scale its counts to ours.
    packets = int(sum(sum(r["counts"]) / r["seconds"] for r in reports) * seconds)
    return Run(
        mode=mode, listeners=listeners, connected=connected, probe_connected=probe_connected,
        seconds=seconds, origin_cpu=cpu, edge_cpu=[e["cpu"] for e in edge_reports],
        client_cpu=sum(r["cpu"] for r in reports) + heard["cpu"], packets=packets,
        starved=starved, bursts=heard["bursts"], direct=heard["direct"], edge=heard["edge"],
        hop=[e["hop"] for e in edge_reports],
    )  # fmt: skip


def ms(value: float) -> str:
    return f"{value * 1e3:.1f}"


def print_table(runs: list[Run]) -> None:
    print()
    print(
        f"{'listeners':>9} {'mode':>6} {'connected':>9} {'pkts/s/listener':>15} "
        f"{'origin cores':>12} {'origin ms/listener-s':>20} {'edges cores':>11} "
        f"{'clients':>7} {'starved':>7}  mouth-to-ear p50/p99 ms: direct | edge "
        "(heard/bursts); NATS hop p50"
    )
    for r in runs:
        hops = [h for h in r.hop if h is not None]
        hop = f"{ms(statistics.median(hops))} ms" if hops else "-"
        print(
            f"{r.listeners:>9} {r.mode:>6} {r.connected:>9} {r.pps:>15.1f} "
            f"{r.origin_cores:>12.3f} {r.origin_ms_per_listener_second:>20.3f} "
            f"{sum(r.edge_cpu) / r.seconds:>11.2f} {r.client_cpu / r.seconds:>7.2f} "
            f"{r.starved:>7.0%}  {ms(percentile(r.direct, 0.5))}/{ms(percentile(r.direct, 0.99))}"
            f" | {ms(percentile(r.edge, 0.5))}/{ms(percentile(r.edge, 0.99))} "
            f"({len(r.direct)}, {len(r.edge)}/{r.bursts}); {hop}"
        )
    by = {(r.mode, r.listeners): r for r in runs}
    print()
    for mode in ("direct", "edges"):
        cores = ", ".join(f"{r.listeners}: {r.origin_cores:.3f}" for r in runs if r.mode == mode)
        print(f"Origin cores as listeners grow, {mode}: {cores}")
    ratios = [
        f"{n}: {e.origin_cpu / d.origin_cpu:.2f}x"
        for (mode, n), e in by.items()
        if mode == "edges" and (d := by.get(("direct", n))) is not None and d.origin_cpu
    ]
    if ratios:
        print("Origin CPU, listeners on edges / on the origin (same run): " + ", ".join(ratios))
    direct = [d for r in runs for d in r.direct]
    edge = [d for r in runs for d in r.edge]
    if direct and edge:
        print(
            f"Mouth-to-ear, all runs: direct p50 {ms(percentile(direct, 0.5))} ms, "
            f"p99 {ms(percentile(direct, 0.99))} ms; through an edge p50 "
            f"{ms(percentile(edge, 0.5))} ms, p99 {ms(percentile(edge, 0.99))} ms; edge p99 - "
            f"direct p99 = {ms(percentile(edge, 0.99) - percentile(direct, 0.99))} ms "
            "(target: within 10 ms)"
        )
    print(
        "('edges cores' and 'clients' are the edge and client processes' own CPU, not counted"
        " in the origin's;\n 'starved': share of the window the origin was runnable but had no"
        " CPU, from other work on the machine)"
    )


def local_nats(url: str) -> None:
    """NATS must be up: start the machine's server if it is ours and down, else stop loudly."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 4222
    if start_nats(host, port) is None:
        raise SystemExit(
            f"audio edges bench: NATS is not reachable at {url} and could not be started; "
            "the edges need it (see the machine's services: nats-server on 127.0.0.1:4222)"
        )


async def main(args: argparse.Namespace) -> list[Run]:
    use_loopback_if_needed()
    local_nats(args.nats)
    logging.getLogger("audio.mixer").setLevel(logging.ERROR)
    print(
        f"audio edges bench: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; 1 origin, {args.edges} edges; "
        f"window {args.window}s after {args.warmup}s warm-up; a burst every {args.period}s; "
        f"NATS {args.nats}"
    )
    runs = []
    space = int(time.time()) % 100_000 * 10  # fresh subjects for each run of the bench
    edges = list(await asyncio.gather(*(EdgeProcess.start(args.nats) for _ in range(args.edges))))
    try:
        for listeners in args.listeners:
            for mode in ("direct", "edges"):
                space += 1
                run = await measure(mode, listeners, space, edges, args)
                runs.append(run)
                print(
                    f"  {mode:>6} x {listeners:<4} origin {run.origin_cores:.3f} cores, "
                    f"{run.pps:.1f} pkts/s/listener ({run.connected} connected, probe "
                    f"{run.probe_connected}/3)",
                    flush=True,
                )
    finally:
        await asyncio.gather(*(edge.finish() for edge in edges))
    print_table(runs)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, nargs="+", default=[30, 90, 150])
    parser.add_argument("--edges", type=int, default=3, help="edge processes")
    parser.add_argument("--per-child", type=int, default=100,
                        help="listeners per client process")  # fmt: skip
    parser.add_argument("--window", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--period", type=float, default=0.2, help="seconds between bursts")
    parser.add_argument("--connect", type=float, default=30.0, help="connect deadline, s")
    parser.add_argument("--nats", default=DEFAULT_NATS, help="NATS server URL")
    parser.add_argument("--json", help="also write one JSON line per run to this file")
    parser.add_argument("--edge-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--probe-child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.edge_child:
        asyncio.run(edge_child(arguments.nats))
    elif arguments.probe_child:
        asyncio.run(probe_child(arguments.period, arguments.connect))
    else:
        results = asyncio.run(main(arguments))
        if arguments.json:
            Path(arguments.json).write_text("".join(json.dumps(asdict(r)) + "\n" for r in results))
