"""Opus encode/decode for the mixer, through PyAV's libopus (the codec aiortc already ships).

The room works on 48 kHz **mono** signed 16-bit PCM in 20 ms frames (960 samples, 1,920
bytes): speech needs no stereo, and mono halves mixing and encoding work. RTP still signals
``opus/48000/2`` as RFC 7587 requires; a mono Opus packet says so in its TOC byte and every
WebRTC decoder plays it.

Loss concealment uses libopus PLC: a packet made of the last TOC byte alone (code 0, a frame
of length zero) makes libopus conceal one frame of that configuration's duration. An empty
packet must never reach the decoder: FFmpeg takes it as end-of-stream and the decoder is dead
afterwards. In-band FEC (LBRR) decoding is not reachable through PyAV, so we conceal with
PLC and rely on the jitter buffer's look-ahead for reordering instead.
"""

from __future__ import annotations

import fractions
import logging
from typing import Final, Literal

import av.error
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame
from av.codec.context import CodecContext
from av.packet import Packet
from av.stream import Stream

logger = logging.getLogger(__name__)

SAMPLE_RATE: Final = 48_000
FRAME_SAMPLES: Final = 960
FRAME_BYTES: Final = FRAME_SAMPLES * 2
TIME_BASE: Final = fractions.Fraction(1, SAMPLE_RATE)
SILENCE: Final = bytes(FRAME_BYTES)


def _codec(mode: Literal["r", "w"]) -> AudioCodecContext:
    codec = CodecContext.create("libopus", mode)
    if not isinstance(codec, AudioCodecContext):  # pragma: no cover - PyAV contract
        raise TypeError(f"libopus gave {type(codec).__name__}, not an audio codec context")
    codec.format = "s16"
    codec.layout = "mono"
    codec.sample_rate = SAMPLE_RATE
    return codec


class OpusEncoder:
    """One libopus encoder for one outgoing stream; not thread-safe, use from one thread.

    ``fec`` and ``expected_loss`` make libopus add in-band FEC that browsers decode when a
    packet is lost on the way to them.
    """

    def __init__(self, *, bitrate: int = 32_000, fec: bool = True, expected_loss: int = 5) -> None:
        codec = _codec("w")
        codec.bit_rate = bitrate
        codec.time_base = TIME_BASE
        codec.options = {
            "application": "voip",
            "fec": "1" if fec else "0",
            "packet_loss": str(expected_loss),
        }
        self._codec = codec

    def encode(self, pcm: bytes, pts: int) -> list[Packet[Stream]]:
        """Encode one 20 ms frame; the packets come back stamped with ``pts`` (1/48000 s).

        libopus returns one packet per frame. We overwrite its pts (which starts at minus
        the encoder delay) so that every stream the mixer makes shares one timeline and a
        listener moved between streams sees continuous RTP timestamps.
        """
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(pcm)
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = TIME_BASE
        frame.pts = pts
        packets = self._codec.encode(frame)
        for packet in packets:
            packet.pts = pts
            packet.dts = pts
            packet.time_base = TIME_BASE
        return packets


class OpusDecoder:
    """One libopus decoder for one incoming stream, with PLC; use from one thread."""

    def __init__(self) -> None:
        self._codec = _codec("r")
        self._toc: int | None = None
        self.errors = 0

    def decode(self, payload: bytes) -> bytes:
        """Decode one Opus packet to mono s16 PCM; a corrupt packet is concealed instead."""
        if not payload:
            return self.conceal()
        try:
            frames = self._codec.decode(Packet(payload))
        except av.error.FFmpegError as exc:
            self.errors += 1
            logger.debug("opus packet failed to decode, concealing: %s", exc)
            if isinstance(exc, av.error.EOFError):
                self._codec = _codec("r")
            return self.conceal()
        self._toc = payload[0]
        return _pcm(frames)

    def conceal(self) -> bytes:
        """One concealed frame (libopus PLC), or silence before the first packet."""
        if self._toc is None:
            return SILENCE
        try:
            frames = self._codec.decode(Packet(bytes((self._toc & 0xFC,))))
        except av.error.FFmpegError as exc:
            self.errors += 1
            logger.debug("opus concealment failed, using silence: %s", exc)
            return SILENCE
        return _pcm(frames) or SILENCE


def _pcm(frames: list[AudioFrame]) -> bytes:
    # Plane buffers are padded: keep only samples * 2 bytes (mono s16) of each.
    return b"".join(bytes(memoryview(f.planes[0])[: f.samples * 2]) for f in frames)
