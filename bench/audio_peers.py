"""Client peers for the audio benchmarks: a tone microphone, and a child process that hosts
one speaker and N listeners so the server's CPU can be measured on its own.

The child speaks JSON lines: it prints one offer per peer (``{"id", "sdp", "type"}``, id 0 is
the speaker), reads the answers in any order, prints ``{"ready": connected}``, then answers
``mark`` (zero the counters) and ``report`` (``{"counts": [...], "seconds", "cpu"}``) until
``quit``. Listeners count RTP packets through `audio.rtptap` instead of decoding them, so
the child stays light.

    .venv/bin/python -m bench.audio_peers LISTENERS [CONNECT_SECONDS [SPEAKER]]
        (started by bench/audio_fanout.py; SPEAKER 0: listeners only, ids from 1)
"""

from __future__ import annotations

import array
import asyncio
import fractions
import json
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.audio.frame import AudioFrame

from audio.rtptap import install_tap

RATE = 48_000
FRAME = 960


def use_loopback_if_needed() -> None:
    """aioice skips 127.0.0.1; when the machine has no other address, offer loopback."""
    if not aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False):
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


class ToneTrack(MediaStreamTrack):
    """A microphone playing a sine tone in real time, optionally as short bursts.

    With ``burst_every`` set, one 20 ms frame in every ``burst_every`` carries the tone and
    the rest are silence; `burst_times` records the loop time each burst frame was handed to
    the sender's encoder (the "mouth" instant of the latency benchmark).
    """

    kind = "audio"

    def __init__(self, frequency: int, amplitude: int = 8_000, burst_every: int = 0) -> None:
        super().__init__()
        self._table = array.array(
            "h",
            (int(amplitude * math.sin(2 * math.pi * frequency * n / RATE)) for n in range(RATE)),
        ).tobytes()
        self._silence = bytes(FRAME * 2)
        self._burst_every = burst_every
        self._index = 0
        self._start: float | None = None
        self.burst_times: list[float] = []

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._index += 1
            await asyncio.sleep(max(0.0, self._start + self._index * FRAME / RATE - loop.time()))
        pts = self._index * FRAME
        if self._burst_every and self._index % self._burst_every:
            data = self._silence
        else:
            offset = (pts % RATE) * 2
            data = self._table[offset : offset + FRAME * 2]
            if self._burst_every:
                self.burst_times.append(loop.time())
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(data)
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        frame.pts = pts
        return frame


def _emit(message: object) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _read_line() -> str:
    line: str = await asyncio.to_thread(sys.stdin.readline)
    if not line:
        raise EOFError("parent went away")
    return line


async def _until_connected(peers: list[RTCPeerConnection], deadline: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        if loop.time() > deadline or all(pc.connectionState == "connected" for pc in peers):
            return
        await asyncio.sleep(0.05)


async def child(listeners: int, connect_seconds: float, with_speaker: bool = True) -> None:
    use_loopback_if_needed()
    loop = asyncio.get_running_loop()
    config = RTCConfiguration(iceServers=[])
    speaker = RTCPeerConnection(config)
    speaker.addTransceiver(ToneTrack(440), direction="sendonly")
    peers = [speaker]
    first = 0 if with_speaker else 1
    counts = [0] * listeners
    for i in range(listeners):
        pc = RTCPeerConnection(config)
        receiver = pc.addTransceiver("audio", direction="recvonly").receiver

        def count(_packet: object, _arrival: float, i: int = i) -> None:
            counts[i] += 1

        install_tap(receiver, count)
        peers.append(pc)
    for i, pc in enumerate(peers[first:], start=first):
        await pc.setLocalDescription(await pc.createOffer())
        _emit({"id": i, "sdp": pc.localDescription.sdp, "type": pc.localDescription.type})
    answers = {}
    for _ in peers[first:]:
        answer = json.loads(await _read_line())
        answers[int(answer["id"])] = RTCSessionDescription(sdp=answer["sdp"], type=answer["type"])
    # Listeners connect first and the speaker last, so the server is not already busy
    # serving audio while it completes hundreds of handshakes.
    for i, pc in enumerate(peers[1:], start=1):
        await pc.setRemoteDescription(answers[i])
    deadline = loop.time() + connect_seconds
    await _until_connected(peers[1:], deadline)
    if with_speaker:
        await speaker.setRemoteDescription(answers[0])
        await _until_connected([speaker], deadline)
    _emit({"ready": sum(pc.connectionState == "connected" for pc in peers[1:])})
    marked, cpu_marked = loop.time(), time.process_time()
    while True:
        command = (await _read_line()).strip()
        if command == "mark":
            counts[:] = [0] * listeners
            marked, cpu_marked = loop.time(), time.process_time()
            _emit({"marked": True})
        elif command == "report":
            _emit(
                {
                    "counts": counts,
                    "seconds": loop.time() - marked,
                    "cpu": time.process_time() - cpu_marked,
                }
            )
        elif command == "quit":
            break
    await asyncio.gather(*(pc.close() for pc in peers))
    _emit({"closed": True})


if __name__ == "__main__":
    asyncio.run(
        child(
            int(sys.argv[1]),
            float(sys.argv[2]) if len(sys.argv) > 2 else 60.0,
            sys.argv[3] != "0" if len(sys.argv) > 3 else True,
        )
    )
