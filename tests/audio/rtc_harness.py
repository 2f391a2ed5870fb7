"""aiortc client peers and signal analysis for the audio room tests.

Clients are ordinary aiortc peers (standard receiver, standard encoder), so the room is
tested against what a WebRTC stack really sends. numpy is not a dependency of the project,
so tones are found with the Goertzel algorithm and a small DFT scan in pure Python.
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import math
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.audio.frame import AudioFrame

from bench.audio_peers import RATE, ToneTrack


class PeerSpy:
    """A peer factory for the room that counts the peers it makes (a refused offer must
    make none)."""

    def __init__(self) -> None:
        self.created = 0

    def __call__(self, config: RTCConfiguration) -> RTCPeerConnection:
        self.created += 1
        return RTCPeerConnection(config)


class Probe:
    """Keeps the last second of what a client hears (left channel of aiortc's output)."""

    def __init__(self) -> None:
        self.samples: collections.deque[int] = collections.deque(maxlen=RATE)
        self.frames = 0

    def feed(self, frame: AudioFrame) -> None:
        channels = len(frame.layout.channels)
        data = array.array("h")
        data.frombytes(bytes(memoryview(frame.planes[0])[: frame.samples * 2 * channels]))
        self.samples.extend(data[::channels])
        self.frames += 1

    def window(self, seconds: float = 0.2) -> list[int]:
        n = int(RATE * seconds)
        if len(self.samples) < n:
            return []
        return list(self.samples)[-n:]

    def share(self, frequency: float, seconds: float = 0.2) -> float:
        """Fraction of the recent signal's energy at ``frequency`` (1.0 for a pure tone)."""
        return tone_share(self.window(seconds), frequency)


def goertzel_power(samples: list[int], frequency: float) -> float:
    coeff = 2.0 * math.cos(2.0 * math.pi * frequency / RATE)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def tone_share(samples: list[int], frequency: float) -> float:
    if not samples:
        return 0.0
    energy = float(sum(x * x for x in samples))
    if energy < len(samples) * 10.0:  # silence (RMS ~3): no tone in it
        return 0.0
    return 2.0 * goertzel_power(samples, frequency) / (len(samples) * energy)


def dominant_frequency(
    samples: list[int], low: int = 100, high: int = 2_000, step: int = 10
) -> int:
    """Strongest frequency on a ``step`` Hz grid (a DFT scan; the window holds whole cycles)."""
    return max(range(low, high + 1, step), key=lambda f: goertzel_power(samples, f))


class Client:
    """One browser-like participant: an aiortc peer, optionally sending a tone."""

    def __init__(self, name: str, tone: int | None = None) -> None:
        self.name = name
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.probe = Probe()
        self.mic = ToneTrack(tone) if tone is not None else None
        self._reader: asyncio.Task[None] | None = None
        if self.mic is not None:
            self.pc.addTransceiver(self.mic, direction="sendrecv")
        else:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.get_running_loop().create_task(
            self._read(track), name=f"client-{self.name}-reader"
        )

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, AudioFrame)
                self.probe.feed(frame)

    async def offer(self) -> tuple[str, str]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp, self.pc.localDescription.type

    async def accept(self, answer: tuple[str, str]) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer[0], type=answer[1]))

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


async def holds(condition: Callable[[], bool], *, duration: float, what: str) -> None:
    """Assert ``condition`` stays true for ``duration`` seconds (checked every 50 ms): a
    window to watch for something that must not happen, never a wait for what should."""
    loop = asyncio.get_running_loop()
    end = loop.time() + duration
    while loop.time() < end:
        assert condition(), f"{what} stopped holding"
        await asyncio.sleep(0.05)
