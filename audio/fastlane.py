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

No ``sendmmsg``: every listener has its own ICE socket, so there is nothing to batch per
call, and measured here on one socket for 100 destinations it cost the kernel the same time
per datagram as ``sendto``. The send goes through the asyncio transport's public
``sendto``, which also keeps its buffering when a socket is momentarily full.

aiortc keeps what this module uses private (the sender's RTP loop and report counters, the
DTLS transport's SRTP session and state, aioice's selected pairs); tests/audio/
test_fastlane.py breaks if an aiortc upgrade moves them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import aioice.ice
from aiortc import RTCDtlsTransport, RTCRtpSender, clock
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from av.packet import Packet
from av.stream import Stream

logger = logging.getLogger(__name__)

RTP_CLOCK = 48_000
"""Opus's RTP clock rate (RFC 7587): always 48 kHz."""

_SEQ_TS = struct.Struct("!HI")
_REPORT_EVERY = 16
"""The sender report's counters are brought up to date every this many fast packets."""
_ABS_SEND_TIME_PROBE = 0xA5C3F1

# aiortc's sender keeps these private; the RTP loop we run in its place keeps them current.
_SENDER = "_RTCRtpSender__"


class PacketSource(Protocol):
    """What the sender's RTP loop reads: a `PacketTrack`."""

    async def recv(self) -> Packet[Stream]: ...
    def stop(self) -> None: ...


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
        track: PacketSource,
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
        self._octets = 0
        self._header: bytearray | None = None
        self._abs_at = 0
        self._lane: _Lane | None = None
        self._on_fast: Callable[[], None] | None = None

    @classmethod
    def attach(
        cls,
        sender: RTCRtpSender,
        track: PacketSource,
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
        sender._run_rtp = stream._run_rtp  # type: ignore[method-assign]  # the hook aiortc's send() starts (see above)
        return stream

    # -- the fast lane ------------------------------------------------------------------

    @property
    def path(self) -> str:
        """``fast`` or ``aiortc``: where the next packet would go."""
        return "fast" if self.is_fast() else "aiortc"

    def is_fast(self) -> bool:
        """True while the next packet may take the fast lane (checked per packet: cheap)."""
        lane = self._lane
        if lane is None:
            return self.fast and self._header is not None and self._enter()
        if self.fast and lane.open(self.sender):
            return True
        self._lane = None
        return False

    def send(self, wire: Wire) -> bool:
        """Send one packet on the fast lane if it is open for this stream; False leaves the
        packet to the aiortc path (the caller queues it on the track).

        The fan-out calls this once per listener per packet, so it is written flat. A
        socket error loses the packet (counted in ``send_errors``), like any UDP loss.
        """
        lane = self._lane
        if lane is None or not self.fast or not lane.open(self.sender):
            if not self.is_fast():
                return False
            lane = self._lane
            assert lane is not None
        header = self._header
        assert header is not None
        sequence = self.sequence
        timestamp = (self.origin + wire.offset) & 0xFFFFFFFF
        _SEQ_TS.pack_into(header, 2, sequence, timestamp)
        if self._abs_at:
            header[self._abs_at : self._abs_at + 3] = wire.abs_send_time
        self.sequence = (sequence + 1) & 0xFFFF
        packets = self.packets = self.packets + 1
        self.fast_packets += 1
        self._octets += len(wire.payload)
        if not packets % _REPORT_EVERY:
            self._report(timestamp, wire.ntp)
        try:
            lane.sendto(lane.protect(bytes(header) + wire.payload), lane.addr)
        except OSError:
            self.send_errors += 1  # lost like any UDP packet; the stream goes on
        return True

    def _enter(self) -> bool:
        dtls = self.sender.transport
        if dtls._state is not State.CONNECTED or dtls._tx_srtp is None:
            return False
        connection = dtls.transport._connection
        pair = connection._nominated.get(1)
        if pair is None or not _plain_udp(pair):
            return False
        self._lane = _Lane(
            dtls=dtls,
            nominated=connection._nominated,
            pair=pair,
            addr=pair.remote_addr,
            sendto=pair.protocol.transport.sendto,
            protect=dtls._tx_srtp.protect,
        )
        if self._on_fast is not None:
            self._on_fast()
        return True

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
                self.packets += 1
                self._octets += len(wire.payload)
                self._report(timestamp, wire.ntp)
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

    def _report(self, timestamp: int, ntp: int) -> None:
        """Keep the sender report aiortc sends every second true to both paths."""
        sender = self.sender
        setattr(sender, _SENDER + "rtp_timestamp", timestamp)
        setattr(sender, _SENDER + "ntp_timestamp", ntp)
        setattr(sender, _SENDER + "packet_count", self.packets)
        setattr(sender, _SENDER + "octet_count", self._octets)


@dataclass(frozen=True, slots=True)
class _Lane:
    """A stream's way out on the fast lane: the libsrtp session and UDP transport of the
    connection's selected ICE pair, while it stays selected and DTLS stays up."""

    dtls: RTCDtlsTransport
    nominated: dict[int, aioice.ice.CandidatePair]
    """aioice's selected pairs by component, watched for a change of pair."""
    pair: aioice.ice.CandidatePair
    addr: tuple[str, int]
    sendto: Callable[[bytes, tuple[str, int]], None]
    protect: Callable[[bytes], bytes]

    def open(self, sender: RTCRtpSender) -> bool:
        return (
            self.nominated.get(1) is self.pair
            and self.dtls is sender.transport
            and self.dtls._state is State.CONNECTED
            and sender._enabled
        )


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
