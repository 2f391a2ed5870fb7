"""Mouth-to-ear delay speaker -> room -> listener, p50/p99, with 0% and 2% packet loss.

    .venv/bin/python bench/audio_latency.py [--seconds 20] [--sessions 4] [--loss 0 0.02]
                                            [--period 0.25] [--paths fast aiortc]

A speaker (aiortc peer, host role) sends silence with a 20 ms 1 kHz burst every ``period``
seconds; a listener (aiortc peer) takes the room's packets straight off the wire through
`audio.rtptap`, decodes each one and timestamps the packet in which a burst begins.

* mouth: the moment the speaker's track hands the burst frame to aiortc's encoder;
* ear: the moment the packet carrying the burst's onset reaches the listener's receiver.

So the figure covers the speaker's encoder, the network (loopback here), the room's jitter
buffer, the wait for the next 20 ms mixer tick, the room's encode and fan-out, but not the
listener's own playout buffer (a browser's NetEq adds roughly 20-60 ms) nor sound-card I/O.
Loss is injected in the speaker's path (dropped before its DTLS transport sends them; RTCP
is left alone), seeded, so runs are comparable. All peers share this process and its clock.
``--paths``: the listener is served on the fast lane (`audio.fastlane`, the default room)
and on aiortc's per-sender path (``fast_lane=False``), sessions of both taking turns so
both see the same machine load. Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RtpPacket, is_rtcp
from prometheus_client import CollectorRegistry

from audio import Admission, Room, RoomRegistry, RoomSettings
from audio.metrics import AudioMetrics
from audio.opus import OpusDecoder
from audio.pcm import level, samples
from audio.rtptap import install_tap
from bench.audio_peers import ToneTrack, use_loopback_if_needed

SPACE = 1
ONSET_LEVEL = 0.05  # RMS: the burst is ~0.25, Opus silence ~0
QUIET_LEVEL = 0.01


class OnsetDetector:
    """Decodes a listener's packets and records when each burst starts to arrive."""

    def __init__(self) -> None:
        self._decoder = OpusDecoder()
        self._quiet = 0
        self.onsets: list[float] = []

    def __call__(self, packet: RtpPacket, arrival: float) -> None:
        if not packet.payload:
            return
        rms = level(samples(self._decoder.decode(packet.payload)))
        if rms >= ONSET_LEVEL and self._quiet >= 3:
            self.onsets.append(arrival)
            self._quiet = 0
        elif rms < QUIET_LEVEL:
            self._quiet += 1


@dataclass
class Outcome:
    path: str
    loss: float
    bursts: int
    delays: list[float]
    lost: int
    late: int
    received: int

    def percentile(self, q: float) -> float:
        ordered = sorted(self.delays)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Send = Callable[[bytes], Coroutine[Any, Any, None]]


def lossy(send: Send, loss: float, rng: random.Random) -> Send:
    async def send_or_drop(data: bytes) -> None:
        if loss and not is_rtcp(data) and rng.random() < loss:
            return
        await send(data)

    return send_or_drop


async def connect(room: Room, pc: RTCPeerConnection, admission: Admission) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    sdp, kind = await room.join(pc.localDescription.sdp, pc.localDescription.type, admission)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))


async def run(path: str, loss: float, seconds: float, period: float, seed: int) -> Outcome:
    loop = asyncio.get_running_loop()
    async with RoomRegistry(
        metrics=AudioMetrics(CollectorRegistry()),
        settings=RoomSettings(fast_lane=path == "fast"),
    ) as registry:
        room = await registry.open(SPACE)
        config = RTCConfiguration(iceServers=[])
        listener = RTCPeerConnection(config)
        detector = OnsetDetector()
        install_tap(
            listener.addTransceiver("audio", direction="recvonly").receiver,
            detector,
            loop.time,
        )
        speaker = RTCPeerConnection(config)
        mic = ToneTrack(1_000, amplitude=12_000, burst_every=round(period / 0.02))
        transceiver = speaker.addTransceiver(mic, direction="sendonly")
        try:
            await connect(room, listener, Admission("t1", SPACE, "ear", "Ear", "listener"))
            await connect(room, speaker, Admission(None, SPACE, "mouth", "Mouth", "host"))
            transport = transceiver.sender.transport
            # An instance attribute shadows the method for this one transport only.
            vars(transport)["_send_rtp"] = lossy(transport._send_rtp, loss, random.Random(seed))
            await asyncio.sleep(1.0 + seconds)
            session = room.session("mouth")
            assert session is not None
            stats = session.inbound.stats
        finally:
            await speaker.close()
            await listener.close()
    warm = mic.burst_times[0] + 1.0 if mic.burst_times else 0.0
    mouths = [t for t in mic.burst_times if t >= warm]
    delays = match_delays(mouths, detector.onsets, period)
    return Outcome(path, loss, len(mouths), delays, stats.lost, stats.late, stats.received)


def match_delays(mouths: list[float], onsets: list[float], period: float) -> list[float]:
    """Mouth-to-ear delay of each onset heard: from the latest burst sent before it, if that
    burst is recent enough to be its own (an onset matches no burst a period earlier)."""
    delays = []
    for ear in onsets:
        earlier = [m for m in mouths if m <= ear]
        if earlier and ear - earlier[-1] < period * 0.8:
            delays.append(ear - earlier[-1])
    return delays


async def main(args: argparse.Namespace) -> None:
    use_loopback_if_needed()
    print(
        f"audio latency bench: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; {args.seconds}s per loss rate "
        f"in {args.sessions} rooms, a burst every {args.period}s"
    )
    outcomes = []
    for loss in args.loss:
        # Several short sessions: each new room ticks at a new phase relative to the
        # speaker's frames, which moves the wait for the next tick anywhere in 0-20 ms.
        parts: dict[str, list[Outcome]] = {path: [] for path in args.paths}
        for i in range(args.sessions):
            for path in args.paths:
                seconds = args.seconds / args.sessions
                parts[path].append(await run(path, loss, seconds, args.period, args.seed + i))
        for path, runs in parts.items():
            outcomes.append(
                Outcome(
                    path=path,
                    loss=loss,
                    bursts=sum(p.bursts for p in runs),
                    delays=[d for p in runs for d in p.delays],
                    lost=sum(p.lost for p in runs),
                    late=sum(p.late for p in runs),
                    received=sum(p.received for p in runs),
                )
            )
    print(
        f"\n{'path':>6} {'loss':>5} {'bursts':>6} {'heard':>5} {'p50 ms':>7} {'p90 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'mean ms':>7}  room jitter buffer (received/lost/late)"
    )
    for o in outcomes:
        if not o.delays:
            print(f"{o.path:>6} {o.loss:>5.0%} {o.bursts:>6} {0:>5}  no bursts detected")
            continue
        print(
            f"{o.path:>6} {o.loss:>5.0%} {o.bursts:>6} {len(o.delays):>5} "
            f"{o.percentile(0.5) * 1e3:>7.1f} {o.percentile(0.9) * 1e3:>7.1f} "
            f"{o.percentile(0.99) * 1e3:>7.1f} "
            f"{max(o.delays) * 1e3:>7.1f} {statistics.fmean(o.delays) * 1e3:>7.1f}  "
            f"{o.received}/{o.lost}/{o.late}"
        )
    print(
        "\nmouth = burst frame handed to the speaker's encoder; ear = its packet reaching the "
        "listener,\nbefore the listener's playout buffer (add ~20-60 ms for a browser)."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--loss", type=float, nargs="+", default=[0.0, 0.02])
    parser.add_argument("--period", type=float, default=0.25, help="seconds between bursts")
    parser.add_argument("--sessions", type=int, default=4, help="rooms per loss rate")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--paths", nargs="+", choices=["fast", "aiortc"],
                        default=["fast", "aiortc"])  # fmt: skip
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
