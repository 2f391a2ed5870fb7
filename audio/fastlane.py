"""The fast lane: one loop sends the room's shared Opus packet straight to every listener.

aiortc sends each participant's packets from that sender's own coroutine, through RTP
serialisation, SRTP, DTLS and ICE layers in Python (about 70 us a packet). Once aiortc has
finished ICE and DTLS for a listener, none of that work differs between listeners but the
RTP header and the SRTP keys. So each participant's outgoing stream is an `RtpStream`: its
header is a template (SSRC, payload type, the ``mid`` and ``abs-send-time`` extensions)
patched in place with the sequence number and timestamp, protected with the very libsrtp
session aiortc made for the connection (``RTCDtlsTransport._tx_srtp``, so the SRTP rollover
counter is shared), and handed to the UDP transport of the selected ICE pair. The `Fanout`
calls `RtpStream.send` for every listener whose stream `is_fast`, once per packet.

The same `RtpStream` also takes over the sender's RTP loop (aiortc's ``_run_rtp``) for the
*aiortc path*: packets a `PacketTrack` queues are stamped from the same sequence counter and
timestamp origin and sent through aiortc's DTLS transport. A participant therefore moves
between the paths (listener to speaker and back; a fallback) with no jump in sequence
numbers or timestamps. RTCP (sender reports, receiver reports, consent) stays with aiortc;
the sender report's counters are kept up to date from both paths.

A stream stays on the aiortc path when anything is unusual: DTLS not connected, the
selected ICE pair not plain UDP (a TURN relay, TCP), the pair changed, the sender moved to
another transport (renegotiation), or the room turned the fast lane off.

Measured on this machine (bench/audio_fanout.py): the transport's public ``sendto`` costs
the same as the raw socket's within noise, and every listener has its own ICE socket, so
``sendmmsg`` (one syscall for many datagrams on *one* socket) has nothing to batch here.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple

import aioice.ice
from aiortc import RTCDtlsTransport, RTCRtpSender, clock
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from av.packet import Packet
from av.stream import Stream

logger = logging.getLogger(__name__)

RTP_CLOCK = 48_000
"""Opus's RTP clock rate (RFC 7587): always 48 kHz."""

_SEQ_TS = struct.Struct("!HI")
_ABS_SEND_TIME_PROBE = 0xA5C3F1

# aiortc's sender keeps these private; the RTP loop we run in its place keeps them current.
_SENDER = "_RTCRtpSender__"


class Wire(NamedTuple):
    """What every listener's copy of one packet shares: computed once per packet."""

    payload: bytes
    offset: int
    """The packet's pts in RTP clock units; a stream adds its own random origin."""
    abs_send_time: bytes
    """The 24-bit abs-send-time extension value (6.18 fixed-point seconds), big-endian."""
    ntp: int
    """When it was sent, as a 64-bit NTP time (for the sender report)."""

    @classmethod
    def of(cls, packet: Packet[Stream]) -> Wire:
        pts = packet.pts or 0
        base = packet.time_base
        offset = pts if base is None or base.denominator == RTP_CLOCK * base.numerator else (
            int(pts * base * RTP_CLOCK)
        )  # fmt: skip
        ntp = clock.current_ntp_time()
        return cls(bytes(packet), offset, ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big"), ntp)


class RtpStream:
    """One participant's outgoing RTP stream, on the fast lane or the aiortc path.

    Build it with `attach` before the peer connection starts its senders. ``fast`` is the
    room's switch: False keeps the stream on the aiortc path.
    """

    def __init__(
        self,
        sender: RTCRtpSender,
        track: Any,
        *,
        first_sequence: int | None = None,
        fast: bool = True,
    ) -> None:
        self.sender = sender
        self.track = track
        self.fast = fast
        self.sequence = random.randint(0, 0xFFFF) if first_sequence is None else first_sequence
        """The next sequence number, from either path."""
        self.origin = random.getrandbits(32)
        """The RTP timestamp of pts 0."""
        self.packets = 0
        self.fast_packets = 0
        self.send_errors = 0
        self._header: bytearray | None = None
        self._abs_at = 0
        self._dtls: RTCDtlsTransport | None = None
        self._pair: aioice.ice.CandidatePair | None = None
        self._nominated: dict[int, aioice.ice.CandidatePair] | None = None
        self._sendto: Callable[[bytes, tuple[str, int]], None] | None = None
        self._addr: tuple[str, int] | None = None
        self._protect: Callable[[bytes], bytes] | None = None
        self._on_fast: Callable[[], None] | None = None

    @classmethod
    def attach(
        cls,
        sender: RTCRtpSender,
        track: Any,
        *,
        first_sequence: int | None = None,
        fast: bool = True,
        on_fast: Callable[[], None] | None = None,
    ) -> RtpStream:
        """Run ``sender``'s RTP loop through a new stream (call before the sender starts).

        ``track`` is the sender's `PacketTrack`; ``on_fast`` is called when the stream first
        goes onto the fast lane (the track drops what it queued for the aiortc path).
        """
        stream = cls(sender, track, first_sequence=first_sequence, fast=fast)
        stream._on_fast = on_fast
        # An instance attribute shadows the method; aiortc's send() starts it as its task.
        sender._run_rtp = stream._run_rtp  # type: ignore[method-assign]
        return stream

    # -- the fast lane ------------------------------------------------------------------

    @property
    def path(self) -> str:
        """``fast`` or ``aiortc``: where the next packet would go."""
        return "fast" if self.is_fast() else "aiortc"

    def is_fast(self) -> bool:
        """True while the next packet may take the fast lane (checked per packet: cheap)."""
        if self._pair is not None:
            if (
                self.fast
                and self._nominated is not None
                and self._nominated.get(1) is self._pair
                and self._dtls is self.sender.transport
                and self._dtls.state == "connected"
            ):
                return True
            self._leave()
            return False
        return self.fast and self._header is not None and self._enter()

    def send(self, wire: Wire) -> bool:
        """Send one packet on the fast lane (the caller checked `is_fast`); False if the
        socket refused it (counted, and the packet is lost like any UDP packet)."""
        assert self._protect is not None and self._sendto is not None
        data, timestamp = self._stamp(wire)
        self.fast_packets += 1
        self._sent(timestamp, len(wire.payload), wire.ntp)
        try:
            self._sendto(self._protect(data), self._addr)  # type: ignore[arg-type]
        except OSError:
            self.send_errors += 1
            return False
        return True

    def _enter(self) -> bool:
        dtls = self.sender.transport
        if dtls.state != "connected" or dtls._tx_srtp is None:
            return False
        connection = dtls.transport._connection
        pair = connection._nominated.get(1)
        if pair is None or not _plain_udp(pair):
            return False
        self._dtls = dtls
        self._nominated = connection._nominated
        self._pair = pair
        self._addr = pair.remote_addr
        self._sendto = pair.protocol.transport.sendto
        self._protect = dtls._tx_srtp.protect
        if self._on_fast is not None:
            self._on_fast()
        return True

    def _leave(self) -> None:
        self._pair = self._nominated = self._dtls = None
        self._sendto = self._protect = None
        self._addr = None

    # -- the aiortc path ----------------------------------------------------------------

    async def _run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        """aiortc's sender loop for pre-encoded packets, stamped from this stream."""
        sender = self.sender
        started: asyncio.Event = getattr(sender, _SENDER + "rtp_started")
        exited: asyncio.Event = getattr(sender, _SENDER + "rtp_exited")
        started.set()
        assert codec.payloadType is not None, "aiortc numbers every negotiated codec"
        try:
            self._header, self._abs_at = _template(
                payload_type=codec.payloadType,
                ssrc=sender._ssrc,
                mid=getattr(sender, _SENDER + "mid"),
                extensions=getattr(sender, _SENDER + "rtp_header_extensions_map"),
            )
            while True:
                packet = await self.track.recv()
                if not sender._enabled:
                    continue
                wire = Wire.of(packet)
                data, timestamp = self._stamp(wire)
                await sender.transport._send_rtp(data)
                self._sent(timestamp, len(wire.payload), wire.ntp)
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            logger.warning("RTP loop failed:\n%s", traceback.format_exc())
        finally:
            self.track.stop()
            exited.set()

    def _stamp(self, wire: Wire) -> tuple[bytes, int]:
        header = self._header
        assert header is not None
        timestamp = (self.origin + wire.offset) & 0xFFFFFFFF
        _SEQ_TS.pack_into(header, 2, self.sequence, timestamp)
        if self._abs_at:
            header[self._abs_at : self._abs_at + 3] = wire.abs_send_time
        self.sequence = (self.sequence + 1) & 0xFFFF
        return bytes(header) + wire.payload, timestamp

    def _sent(self, timestamp: int, octets: int, ntp: int) -> None:
        """Keep the sender report aiortc sends every second true to both paths."""
        sender = self.sender
        self.packets += 1
        setattr(sender, _SENDER + "rtp_timestamp", timestamp)
        setattr(sender, _SENDER + "ntp_timestamp", ntp)
        setattr(sender, _SENDER + "packet_count", self.packets)
        count = getattr(sender, _SENDER + "octet_count")
        setattr(sender, _SENDER + "octet_count", count + octets)


def _plain_udp(pair: aioice.ice.CandidatePair) -> bool:
    """The pair is a UDP socket of ours talking straight to the peer (no TURN, no TCP)."""
    return (
        type(pair.protocol) is aioice.ice.StunProtocol
        and pair.local_candidate.type != "relay"
        and pair.remote_candidate.transport.lower() == "udp"
        and getattr(pair.protocol, "transport", None) is not None
    )


def _template(
    *, payload_type: int, ssrc: int, mid: str | None, extensions: HeaderExtensionsMap
) -> tuple[bytearray, int]:
    """The RTP header aiortc would write for this sender (marker set, as aiortc does for a
    single-packet audio frame), and where its abs-send-time value sits (0: not negotiated)."""

    def header(abs_send_time: int) -> bytes:
        packet = RtpPacket(payload_type=payload_type, marker=1, ssrc=ssrc)
        packet.extensions.mid = mid
        packet.extensions.abs_send_time = abs_send_time
        return packet.serialize(extensions)

    plain, probed = header(0), header(_ABS_SEND_TIME_PROBE)
    at = 0
    if plain != probed:
        at = probed.index(_ABS_SEND_TIME_PROBE.to_bytes(3, "big"), 12)
    return bytearray(plain), at
