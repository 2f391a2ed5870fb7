"""Tones in, tones out: Opus packets of a sine and a Goertzel detector for checking them."""

from __future__ import annotations

import array
import math

from audio.opus import FRAME_SAMPLES, SAMPLE_RATE, OpusDecoder, OpusEncoder


def tone(frequency: float, frames: int, amplitude: float = 0.3) -> list[bytes]:
    """``frames`` 20 ms frames of a sine, mono s16."""
    out = []
    for f in range(frames):
        start = f * FRAME_SAMPLES
        samples = array.array(
            "h",
            (
                int(
                    amplitude
                    * 32767
                    * math.sin(2 * math.pi * frequency * (start + i) / SAMPLE_RATE)
                )
                for i in range(FRAME_SAMPLES)
            ),
        )
        out.append(samples.tobytes())
    return out


def opus_tone(frequency: float, frames: int) -> list[bytes]:
    encoder = OpusEncoder(bitrate=64_000, fec=False)
    return [
        bytes(p)
        for i, pcm in enumerate(tone(frequency, frames))
        for p in encoder.encode(pcm, i * 960)
    ]


def power(pcm: bytes, frequency: float) -> float:
    """Goertzel power of ``frequency`` in ``pcm``, normalised by length."""
    samples = array.array("h")
    samples.frombytes(pcm)
    coeff = 2 * math.cos(2 * math.pi * frequency / SAMPLE_RATE)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / max(1, len(samples)) ** 2


def decode_all(packets: list[bytes]) -> bytes:
    decoder = OpusDecoder()
    return b"".join(decoder.decode(p) for p in packets)


def dominant(pcm: bytes, candidates: tuple[float, ...]) -> float:
    return max(candidates, key=lambda f: power(pcm, f))
