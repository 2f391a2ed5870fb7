"""Taking incoming RTP packets out of aiortc before its own jitter buffer and decoder.

Why this seam. aiortc's `RTCRtpReceiver` only yields *decoded frames* to
`RemoteStreamTrack.recv()`, after its fixed audio jitter buffer (16 packets, released after
4) that stalls after one loss and then stays ~280 ms behind. We need the packets themselves.
Options, in aiortc 1.16:

* subclass the receiver: not possible, `RTCPeerConnection` builds it in a private method;
* replace `receiver._handle_rtp_packet`: we would lose what that method does before the
  buffer and we want to keep: SSRC bookkeeping, RTCP receiver reports (a browser's Opus
  encoder turns on in-band FEC and adapts its bitrate from the loss they report), RTX
  unwrapping, payload-type checks and the direction gate (``_enabled``);
* **swap the one object that method hands each packet to at its end**,
  ``self.__jitter_buffer.add(packet)``, which returns ``(pli_flag, encoded_frame)`` and is
  the only thing that feeds the decoder thread. Our `RtpTap` takes the packet and returns
  ``(False, None)``: we get every packet in arrival order, aiortc's decoder thread idles,
  and everything else the receiver does keeps working.

The buffer is a name-mangled private attribute, so `install_tap` checks that it is there and
is aiortc's `JitterBuffer`, and fails loudly if an aiortc upgrade moved it (a test covers it).
Install the tap after ``setRemoteDescription`` and before the connection comes up: the
receiver only starts getting packets once DTLS is connected.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiortc.jitterbuffer import JitterBuffer as AiortcJitterBuffer
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

PacketSink = Callable[[RtpPacket, float], None]
"""Receives each RTP packet with its arrival time (seconds on the tap's clock)."""

_BUFFER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"


class RtpTap:
    """Stands in for the receiver's internal jitter buffer and forwards packets to a sink."""

    def __init__(self, sink: PacketSink, clock: Callable[[], float] = time.monotonic) -> None:
        self._sink = sink
        self._clock = clock
        self.packets = 0

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        """Called by aiortc for every RTP packet it accepted; never yields a frame to decode."""
        self.packets += 1
        self._sink(packet, self._clock())
        return False, None


def install_tap(
    receiver: RTCRtpReceiver, sink: PacketSink, clock: Callable[[], float] = time.monotonic
) -> RtpTap:
    """Route ``receiver``'s RTP packets to ``sink`` instead of aiortc's buffer and decoder."""
    current = getattr(receiver, _BUFFER_ATTRIBUTE, None)
    if isinstance(current, RtpTap):
        raise RuntimeError("an RtpTap is already installed on this receiver")
    if not isinstance(current, AiortcJitterBuffer):
        raise RuntimeError(
            "aiortc's RTCRtpReceiver no longer keeps its jitter buffer in "
            f"{_BUFFER_ATTRIBUTE}; audio.rtptap must be updated for this aiortc version"
        )
    tap = RtpTap(sink, clock)
    setattr(receiver, _BUFFER_ATTRIBUTE, tap)
    return tap
