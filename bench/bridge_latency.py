"""The delay the Discord voice bridge adds, in each direction (target: p95 under 60 ms).

    .venv/bin/python bench/bridge_latency.py [--seconds 10] [--jitter-ms 10]

Runs the bridge's own pipeline in real time on this machine, no network:

* Discord → room: a fake Discord user's packets (sealed with the negotiated mode) arrive
  every 20 ms plus a uniform network jitter of up to ``--jitter-ms``; each goes through
  `Receiver` (decrypt, SSRC → user) into `DiscordVoices` and waits in the user's jitter
  buffer until the room's mixer clock (the real `Mixer`, on its 20 ms asyncio timer) pulls
  it. Measured: arrival → pulled into the mix, plus the fixed algorithmic delay of the
  extra Opus hop into the mixer (312 samples, 6.5 ms).
* Room → Discord: the mixer pushes the room-minus-Discord packet into `DiscordOutbound`;
  a thread standing in for discord.py's player reads `RoomSource` on its own 20 ms clock.
  Measured: pushed → read.

Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from av.packet import Packet
from av.stream import Stream

from audio.bridge import rtp
from audio.bridge.receive import DiscordVoices, Receiver
from audio.bridge.source import DiscordOutbound, RoomSource
from audio.bridge.speakers import SsrcMap
from audio.bridge.transport import XCHACHA, TransportCipher
from audio.jitter import JitterBuffer, Playout, PutResult
from audio.mixer import Mixer
from audio.opus import FRAME_SAMPLES, OpusEncoder

OPUS_HOP = 312 / 48_000
"""libopus encoder lookahead: what re-encoding Discord's mix for the mixer costs."""


class TimedBuffer(JitterBuffer):
    """A user's jitter buffer that remembers when each payload arrived and was pulled."""

    def __init__(self, delays: list[float], min_delay: float, max_delay: float) -> None:
        super().__init__(min_delay=min_delay, max_delay=max_delay)
        self._arrivals: dict[bytes, float] = {}
        self._delays = delays

    def put(
        self, sequence_number: int, timestamp: int, payload: bytes, arrival: float
    ) -> PutResult:
        self._arrivals[payload] = time.monotonic()
        return super().put(sequence_number, timestamp, payload, arrival)

    def pop(self) -> Playout:
        slot = super().pop()
        if isinstance(slot, bytes) and slot in self._arrivals:
            self._delays.append(time.monotonic() - self._arrivals.pop(slot) + OPUS_HOP)
        return slot


class TimedOutbound(DiscordOutbound):
    def __init__(self, delays: list[float]) -> None:
        super().__init__()
        self._pushed: dict[bytes, float] = {}
        self._delays = delays

    def push(self, packet: Packet[Stream]) -> bool:
        self._pushed[bytes(packet)] = time.monotonic()
        return super().push(packet)

    def take(self) -> bytes | None:
        payload = super().take()
        if payload is not None and payload in self._pushed:
            self._delays.append(time.monotonic() - self._pushed.pop(payload))
        return payload


def player(source: RoomSource, stop: threading.Event) -> None:
    """discord.py's AudioPlayer loop in miniature: read every 20 ms on its own clock."""
    start = time.perf_counter()
    loops = 0
    while not stop.is_set():
        source.read()
        loops += 1
        time.sleep(max(0.0, start + loops * 0.020 - time.perf_counter()))


def summary(name: str, delays: list[float]) -> None:
    ms = sorted(d * 1000 for d in delays)
    if not ms:
        print(f"{name}: no samples")
        return
    p95 = ms[int(0.95 * (len(ms) - 1))]
    print(
        f"{name:16} n={len(ms):4d}  p50={statistics.median(ms):6.1f} ms"
        f"  p95={p95:6.1f} ms  max={ms[-1]:6.1f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    inbound_delays: list[float] = []
    outbound_delays: list[float] = []
    key = os.urandom(32)
    ssrcs = SsrcMap()
    ssrcs.handle({"op": 5, "d": {"user_id": "1", "ssrc": 7, "speaking": 1}})
    cipher = TransportCipher(XCHACHA, key)
    receiver = Receiver(ssrcs, lambda: cipher)
    voices = DiscordVoices(
        lambda _: True,
        buffer_factory=lambda: TimedBuffer(inbound_delays, args.min_delay, args.max_delay),
    )
    outbound = TimedOutbound(outbound_delays)
    mixer = Mixer(name="bench")
    mixer.add_voice("discord:bridge", voices, outbound)
    # A browser speaker too, so the room has something to send to Discord.
    browser = JitterBuffer()
    mixer.add_voice("browser", browser, DiscordOutbound())
    mixer.start()
    stop = threading.Event()
    thread = threading.Thread(target=player, args=(RoomSource(outbound), stop), daemon=True)
    thread.start()

    encoder = OpusEncoder()
    sender = TransportCipher(XCHACHA, key)
    loop = asyncio.get_running_loop()
    rng = random.Random(1)
    frames = int(args.seconds / 0.020)
    start = loop.time()
    pending: list[asyncio.TimerHandle] = []
    for i in range(frames):
        pcm = bytes((i * 7 + j) % 200 for j in range(FRAME_SAMPLES * 2))  # distinct noise
        (payload,) = [bytes(p) for p in encoder.encode(pcm, i * FRAME_SAMPLES)]
        datagram = sender.seal(
            rtp.RtpPacket(sequence=i, timestamp=i * FRAME_SAMPLES, ssrc=7, payload=payload)
        )
        browser.put(i, i * FRAME_SAMPLES, payload, loop.time())

        def deliver(datagram: bytes = datagram) -> None:
            received = receiver.receive(datagram)
            if received is not None:
                voices.put_received(received, loop.time())

        jitter = rng.uniform(0, args.jitter_ms / 1000)
        pending.append(loop.call_at(start + i * 0.020 + jitter, deliver))
        await asyncio.sleep(max(0.0, start + (i + 1) * 0.020 - loop.time()))
    await asyncio.sleep(0.2)
    stop.set()
    thread.join(timeout=1)
    await mixer.stop()
    print(
        f"bridge latency, {args.seconds:.0f} s of 20 ms packets, network jitter"
        f" 0-{args.jitter_ms:.0f} ms, jitter buffer {args.min_delay * 1000:.0f}"
        f"-{args.max_delay * 1000:.0f} ms"
    )
    summary("discord -> room", inbound_delays)
    summary("room -> discord", outbound_delays)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--jitter-ms", type=float, default=10.0)
    parser.add_argument("--min-delay", type=float, default=0.020, help="jitter buffer, s")
    parser.add_argument("--max-delay", type=float, default=0.060, help="jitter buffer, s")
    asyncio.run(main(parser.parse_args()))
