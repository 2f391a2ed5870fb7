"""Server CPU per listener-second and packets/s per listener: Stagepass's fast lane, its
shared-encode room on aiortc's per-sender path, and aiortc's MediaRelay serving the same
load, in the same run.

    nice .venv/bin/python bench/audio_fanout.py [--listeners 10 50 150 300] [--window 5]
        [--warmup 2] [--impl fastlane sendto python stagepass relay] [--per-child 100]

Load: one speaker sending a 440 Hz tone (Opus, 20 ms) and N listeners, all aiortc peers in
child processes (bench/audio_peers.py, ``--per-child`` listeners each) so that this process
is only the server. Each listener counts the RTP packets it receives (no decoding); the
children's CPU is reported on its own.

* ``fastlane``: a `Room` with the fast lane on (the default): once a listener's ICE and DTLS
  are up, the mixer's one packet goes to every listener from one loop (`audio.fastlane`),
  the C loop of ``audio._lane`` where it is built, each tick's datagrams sent with one
  io_uring call (`audio.uring`).
* ``sendto``: the same fast lane sending each datagram with its own ``sendto`` (what it does
  where io_uring is not available).
* ``python``: the same fast lane with its Python loop and io_uring (what it does where the C
  loop was not built).
* ``stagepass``: the same room with the fast lane off; listeners get the listener mix,
  encoded once per tick and handed to every aiortc sender as the same `av.Packet`.
* ``relay``: aiortc's ``MediaRelay`` (unbuffered, so a slow sender skips frames instead of
  queueing them without bound) fans the speaker's decoded track out; every listener's
  `RTCRtpSender` encodes it on its own (aiortc default Opus settings).

Server CPU is `time.process_time()` of this process (all threads) over the measured window,
divided by listeners x seconds. Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack
from prometheus_client import CollectorRegistry

from audio import Admission, RoomRegistry, RoomSettings
from audio.metrics import AudioMetrics
from bench.audio_peers import use_loopback_if_needed
from bench.common import JsonLinesChild

SPACE = 1
IMPLS = ("fastlane", "sendto", "python", "stagepass", "relay")


def runqueue_wait() -> float:
    """Seconds this process's threads spent runnable but waiting for a CPU (Linux; else 0).

    A high share means other processes starved the server, not that it was slow.
    """
    total = 0
    for stat in Path("/proc/self/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended while we read
    return total / 1e9


class Server(Protocol):
    name: str

    async def start(self) -> None: ...
    async def answer(self, peer: int, sdp: str, kind: str) -> tuple[str, str]: ...
    def mark(self) -> None: ...
    def fanout_seconds(self) -> float: ...
    def paths(self) -> str: ...
    def lateness(self) -> str: ...
    async def close(self) -> None: ...


class StagepassServer:
    def __init__(self, name: str) -> None:
        self.name = name
        self.metrics = CollectorRegistry()
        self.registry = RoomRegistry(
            metrics=AudioMetrics(self.metrics),
            settings=RoomSettings(fast_lane=name != "stagepass"),
        )
        self._marked = (0.0, 0.0, 0.0, 0.0)

    async def start(self) -> None:
        self.room = await self.registry.open(SPACE)
        self.room.fanout.batch_sends = self.name in ("fastlane", "python")
        self.room.fanout.native = self.name != "python"

    async def answer(self, peer: int, sdp: str, kind: str) -> tuple[str, str]:
        if peer == 0:
            admission = Admission(None, SPACE, "speaker", "Speaker", "host")
        else:
            admission = Admission(f"t{peer}", SPACE, f"l{peer}", f"L{peer}", "listener")
        return await self.room.join(sdp, kind, admission)

    def mark(self) -> None:
        """Start the lateness window (the histogram also holds the set-up period)."""
        self._marked = self._lateness_counts()
        self._busy = self.room.fanout.busy

    def fanout_seconds(self) -> float:
        """CPU seconds the fan-out loop spent since `mark`."""
        return self.room.fanout.busy - self._busy

    def _lateness_counts(self) -> tuple[float, float, float, float]:
        labels = {"room": str(SPACE)}
        names = (
            ("stagepass_audio_mixer_tick_lateness_seconds_sum", labels),
            ("stagepass_audio_mixer_tick_lateness_seconds_count", labels),
            ("stagepass_audio_mixer_tick_lateness_seconds_bucket", {**labels, "le": "0.01"}),
            ("stagepass_audio_mixer_ticks_skipped_total", labels),
        )
        total, count, within, skipped = (
            self.metrics.get_sample_value(name, where) or 0.0 for name, where in names
        )
        return total, count, within, skipped

    def paths(self) -> str:
        """Listeners per path as the room's /metrics gauge says."""
        counts = [
            self.metrics.get_sample_value(
                "stagepass_audio_listener_paths", {"room": str(SPACE), "path": path}
            )
            or 0
            for path in ("fast", "aiortc")
        ]
        return f"{counts[0]:.0f} fast, {counts[1]:.0f} aiortc"

    def lateness(self) -> str:
        now = self._lateness_counts()
        total, count, within, skipped = (a - b for a, b in zip(now, self._marked, strict=True))
        if not count:
            return "-"
        return (
            f"mean {total / count * 1e3:.1f} ms, {1 - within / count:.1%} >10 ms, "
            f"{skipped:.0f} skipped"
        )

    async def close(self) -> None:
        await self.registry.aclose()


class RelayServer:
    name = "relay"

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.source: MediaStreamTrack | None = None
        self.pcs: list[RTCPeerConnection] = []

    async def start(self) -> None:
        pass

    async def answer(self, peer: int, sdp: str, kind: str) -> tuple[str, str]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        if peer == 0:

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                self.source = track

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        if peer != 0:
            assert self.source is not None, "the speaker must be answered first"
            pc.addTrack(self.relay.subscribe(self.source, buffered=False))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp, pc.localDescription.type

    def mark(self) -> None:
        pass

    def fanout_seconds(self) -> float:
        return float("nan")

    def paths(self) -> str:
        return "-"

    def lateness(self) -> str:
        return "-"

    async def close(self) -> None:
        await asyncio.gather(*(pc.close() for pc in self.pcs))


@dataclass
class Result:
    impl: str
    listeners: int
    connected: int
    cpu: float
    seconds: float
    packets: list[int]
    child_seconds: float
    child_cpu: float
    lateness: str
    paths: str
    fanout: float
    """CPU seconds in the fan-out loop itself (publish: the fast lane's sends)."""
    setup: float
    starved: float
    """Share of the window the server was runnable but had no CPU."""
    kernel: float
    """Of ``cpu``, the seconds in the kernel (on loopback, sending a datagram also pays
    for its delivery to the listener's socket)."""

    @property
    def cpu_ms_per_listener_second(self) -> float:
        return self.cpu / (self.listeners * self.seconds) * 1e3

    @property
    def cores(self) -> float:
        return self.cpu / self.seconds

    @property
    def pps_mean(self) -> float:
        return sum(self.packets) / len(self.packets) / self.child_seconds

    @property
    def cpu_us_per_packet(self) -> float:
        delivered = sum(self.packets) / self.child_seconds * self.seconds
        return self.cpu / delivered * 1e6 if delivered else float("nan")

    @property
    def fanout_us_per_packet(self) -> float:
        delivered = sum(self.packets) / self.child_seconds * self.seconds
        return self.fanout / delivered * 1e6 if delivered else float("nan")

    @property
    def pps_min(self) -> float:
        return min(self.packets) / self.child_seconds


class Child(JsonLinesChild):
    """One child process hosting client peers (bench/audio_peers.py); the first also hosts
    the speaker."""

    name = "client"

    @classmethod
    async def start(cls, listeners: int, connect_seconds: float, speaker: bool) -> Child:
        return cls(
            await cls.spawn(
                "bench.audio_peers", str(listeners), str(connect_seconds), str(int(speaker))
            )
        )

    async def finish(self) -> None:
        await self.send("quit")
        await self.read()
        await self.proc.wait()


async def measure(server: Server, listeners: int, args: argparse.Namespace) -> Result:
    started = time.monotonic()
    shares = [args.per_child] * (listeners // args.per_child)
    if listeners % args.per_child:
        shares.append(listeners % args.per_child)
    children = [await Child.start(n, args.connect, speaker=i == 0) for i, n in enumerate(shares)]
    await server.start()
    try:
        # Peer 0 is the speaker (the first child's id 0), answered first; listeners are
        # numbered across the children.
        offers: list[tuple[int, Child, dict[str, str]]] = []
        base = 0
        for child, n in zip(children, shares, strict=True):
            count = n + 1 if child is children[0] else n
            for _ in range(count):
                offer = await child.read()
                local = int(offer["id"])
                offers.append((0 if local == 0 else base + local, child, offer))
            base += n
        for peer, child, offer in sorted(offers, key=lambda o: o[0]):
            sdp, kind = await server.answer(peer, offer["sdp"], offer["type"])
            await child.send({"id": offer["id"], "sdp": sdp, "type": kind})
        connected = sum([int((await child.read())["ready"]) for child in children])
        setup = time.monotonic() - started
        await asyncio.sleep(args.warmup)
        for child in children:
            await child.ask("mark")
        server.mark()
        cpu0, wall0, wait0 = time.process_time(), time.monotonic(), runqueue_wait()
        times0 = os.times()
        await asyncio.sleep(args.window)
        reports = [await child.ask("report") for child in children]
        cpu, seconds = time.process_time() - cpu0, time.monotonic() - wall0
        times = os.times()
        kernel = times.system - times0.system
        starved = (runqueue_wait() - wait0) / seconds
        lateness = server.lateness()
        paths = server.paths()
        fanout = server.fanout_seconds()
        for child in children:
            await child.finish()
    finally:
        await server.close()
        for child in children:
            if child.proc.returncode is None:
                child.proc.kill()
                await child.proc.wait()
    return Result(
        impl=server.name, listeners=listeners, connected=connected, cpu=cpu, seconds=seconds,
        packets=[c for r in reports for c in r["counts"]],
        child_seconds=max(r["seconds"] for r in reports),
        child_cpu=sum(r["cpu"] for r in reports),
        lateness=lateness, paths=paths, fanout=fanout, setup=setup, starved=starved,
        kernel=kernel,
    )  # fmt: skip


def print_table(results: list[Result]) -> None:
    print()
    print(
        f"{'listeners':>9} {'impl':>9} {'connected':>9} {'server cores':>12} "
        f"{'CPU ms/listener-s':>17} {'CPU us/packet':>13} {'fan-out us/pkt':>14} "
        f"{'pkts/s/listener':>16} {'min':>6} {'kernel':>6} {'starved':>7} {'clients':>7}  "
        "listener paths; mixer tick lateness"
    )
    for r in results:
        print(
            f"{r.listeners:>9} {r.impl:>9} {r.connected:>9} {r.cores:>12.2f} "
            f"{r.cpu_ms_per_listener_second:>17.2f} {r.cpu_us_per_packet:>13.0f} "
            f"{r.fanout_us_per_packet:>14.1f} "
            f"{r.pps_mean:>16.1f} {r.pps_min:>6.1f} {r.kernel / r.cpu:>6.0%} {r.starved:>7.0%} "
            f"{r.child_cpu / r.child_seconds:>7.2f}  {r.paths}; {r.lateness}"
        )
    by = {(r.impl, r.listeners): r for r in results}
    for slow, fast in (
        ("relay", "stagepass"),
        ("relay", "fastlane"),
        ("stagepass", "fastlane"),
        ("sendto", "fastlane"),
        ("python", "fastlane"),
    ):
        pairs = [
            (n, by[slow, n], s) for (impl, n), s in by.items() if impl == fast and (slow, n) in by
        ]
        if not pairs:
            continue
        ratios = ", ".join(
            f"{n}: {a.cpu_ms_per_listener_second / b.cpu_ms_per_listener_second:.1f}x"
            for n, a, b in pairs
        )
        per_packet = ", ".join(
            f"{n}: {a.cpu_us_per_packet / b.cpu_us_per_packet:.1f}x" for n, a, b in pairs
        )
        print(f"\nCPU per listener-second, {slow} / {fast}: {ratios}")
        print(f"CPU per packet delivered, {slow} / {fast}: {per_packet}")
    print("\n(a row below 50 pkts/s/listener is saturated: its CPU per listener-second")
    print(" understates the cost, CPU per packet delivered does not; 'clients' is the cores")
    print(" the listener processes used, not counted in the server's figures; 'kernel' the")
    print(" share of the server's CPU spent in the kernel)")


async def main(args: argparse.Namespace) -> None:
    use_loopback_if_needed()
    # Skipped ticks are counted in the table; one warning line each would drown it.
    logging.getLogger("audio.mixer").setLevel(logging.ERROR)
    print(
        f"audio fan-out bench: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; window {args.window}s after "
        f"{args.warmup}s warm-up; listeners in child processes of {args.per_child}; "
        f"server nice {os.nice(0)}"
    )
    results = []
    for listeners in args.listeners:
        for impl in args.impl:
            server: Server = RelayServer() if impl == "relay" else StagepassServer(impl)
            result = await measure(server, listeners, args)
            results.append(result)
            print(
                f"  {impl:>9} x {listeners:<4} {result.cores:.2f} cores, "
                f"{result.cpu_ms_per_listener_second:.2f} ms CPU/listener-s, "
                f"{result.pps_mean:.1f} pkts/s/listener ({result.connected} connected; "
                f"clients {result.child_cpu / result.child_seconds:.2f} cores; "
                f"set-up {result.setup:.0f}s; {result.paths})",
                flush=True,
            )
    print_table(results)
    print(
        f"load average at the end: {os.getloadavg()[0]:.1f}. 'starved' is the share of the "
        "window the server\nwas runnable but waiting for a CPU (other processes on the machine)."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, nargs="+", default=[10, 50, 150, 300])
    parser.add_argument("--impl", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--per-child", type=int, default=100,
                        help="listeners per client process")  # fmt: skip
    parser.add_argument("--window", type=float, default=5.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--connect", type=float, default=30.0, help="connect deadline, s")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
