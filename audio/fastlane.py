"""The fast lane: one loop sends the room's shared Opus packet straight to every listener.

aiortc sends each participant's packets from that sender's own coroutine, through RTP
serialisation, SRTP, DTLS and ICE layers in Python (about 70 us a packet). Once aiortc has
finished ICE and DTLS for a listener, none of that work differs between listeners but the
RTP header and the SRTP keys. So each participant's outgoing stream is an `RtpStream`: its
header is a template (SSRC, payload type, the ``mid`` and ``abs-send-time`` extensions)
stamped with the sequence number and timestamp, protected with the very libsrtp session
aiortc made for the connection (``RTCDtlsTransport._tx_srtp``, so the SRTP rollover
counter is shared), and handed to the UDP transport of the selected ICE pair. The `Fanout`
calls `RtpStream.send` for every listener whose stream `is_fast`, once per packet.

The same `RtpStream` also takes over the sender's RTP loop (aiortc's ``_run_rtp``) for the
*aiortc path*: packets a `PacketTrack` queues are stamped from the same sequence counter and
timestamp origin and sent through aiortc's DTLS transport. A participant therefore moves
between the paths (listener to speaker and back; a fallback) with no jump in sequence
numbers or timestamps. RTCP stays with aiortc (receiver reports, NACK, consent), except the
sender reports: the same SR and SDES as aiortc's, with counters from both paths. On the
aiortc path the stream's own report loop sends them every 0.5-1.5 s, as aiortc does; on the
fast lane the fan-out's loop sends each listener's report when it falls due, every 5 s on
average (RFC 3550's minimum), so a fast-lane listener costs no timer or task wake-up of its
own between packets.

A stream stays on the aiortc path when anything is unusual: DTLS not connected, the
selected ICE pair not plain UDP (a TURN relay, TCP), the pair changed, the sender moved to
another transport (renegotiation), or the room turned the fast lane off.

Each packet is stamped, protected and sent without a bytes object: the header template is
copied into the libsrtp session's own 1,500-byte buffer, ``srtp_protect`` works on it in
place (pylibsrtp's ``Session.protect`` would copy the packet in and out), and the buffer is
sent straight from asyncio's socket. A full socket buffer loses the packet, as UDP does.

Stamping, protecting and queueing each listener's copy in Python costs about 5 us a packet,
several times what libsrtp and the kernel do. Where the C extension ``audio._lane`` is built
(``make env`` builds it; a missing compiler only leaves it out), the fan-out hands each tick's
packet to its loop, `native_send`, for all its listeners at once: each stream on the fast
lane has a `_lane.Lane` (its header template, sequence, timestamp origin, socket and own
packet buffer), which its `native_lane` makes and checks. Python then only does what is not
per packet: the lane's checks and the sender reports, every 8th packet (`NATIVE_CHECK_EVERY`),
when the fan-out goes through its listeners. Without the extension, `RtpStream.send` runs the
same steps per listener, as below.

The send itself is most of the rest of the fast lane's cost. Every listener has its own ICE socket
(aioice binds one per connection), so ``sendmmsg``, which batches the datagrams of one
socket, cannot batch them; io_uring can (`audio.uring`). Given the caller's
`DatagramBatch`, ``send`` queues the datagram on the ring and the caller sends the whole
tick's datagrams with one ``flush``; without one (no io_uring here), it calls ``sendto``.

aiortc keeps what this module uses private (the sender's RTP and RTCP loops and report
counters, the DTLS transport's SRTP session and state, aioice's selected pairs), and so do
pylibsrtp (the session's ``srtp_t`` and buffer) and asyncio (the transport's socket);
tests/audio/test_fastlane.py breaks if an upgrade moves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import aioice.ice
from aiortc import RTCDtlsTransport, RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    HeaderExtensionsMap,
    RtcpByePacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
)
from av.packet import Packet
from av.stream import Stream
from pylibsrtp._binding import ffi as _ffi
from pylibsrtp._binding import lib as _lib

from audio.uring import DatagramBatch, Slot, sockaddr

if TYPE_CHECKING:
    from audio._lane import Lane

logger = logging.getLogger(__name__)

RTP_CLOCK = 48_000
"""Opus's RTP clock rate (RFC 7587): always 48 kHz."""

_SEQ_TS = struct.Struct("!HI")
_NTP_EPOCH_OFFSET = 2_208_988_800
"""Seconds from 1900 (NTP's epoch) to 1970 (Unix's)."""
FAST_REPORT_SECONDS = 5.0
"""Mean seconds between RTCP sender reports on the fast lane (RFC 3550 6.2's minimum)."""
_REPORT_EVERY = 16
"""The sender report's counters are brought up to date every this many fast packets."""
_ABS_SEND_TIME_PROBE = 0xA5C3F1

_LARGEST = 1500 - 16
"""The largest RTP packet the fast lane protects in libsrtp's 1,500-byte buffer (room for the
longest SRTP trailer); an Opus packet of 20 ms is far smaller."""
_srtp_protect = _lib.srtp_protect
"""libsrtp 2's ``srtp_protect(ctx, buffer, int *length)``, called without pylibsrtp's
``Session.protect`` wrapper, which copies the packet in and out as bytes."""

# aiortc's sender keeps these private; the RTP loop we run in its place keeps them current.
_SENDER = "_RTCRtpSender__"

NATIVE_CHECK_EVERY = 8
"""With the C loop, the fan-out checks its listeners' lanes (and sends the sender reports that
fell due) every this many packets: 160 ms, as `RtpStream.send` checks a lane."""


def _load_native() -> ModuleType | None:
    """``audio._lane`` bound to pylibsrtp's ``srtp_protect``, or None (logged) where it was
    not built or the libsrtp it would call is not the one it was written for."""
    try:
        import audio._lane as _lane
    except ImportError:
        logger.info("audio._lane is not built: the fast lane runs its Python loop")
        return None
    signature = str(_ffi.typeof(_lib.srtp_protect))
    if signature != "<ctype 'srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)'>":
        logger.warning("pylibsrtp's srtp_protect is %s: the fast lane runs in Python", signature)
        return None
    _lane.bind(int(_ffi.cast("uintptr_t", _ffi.addressof(_lib, "srtp_protect"))))
    return _lane


_native = _load_native()
NATIVE = _native is not None
"""True where the fast lane's C loop is available (`native_send`)."""


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
    at: float
    """When it was sent, on the monotonic clock (when sender reports fall due)."""

    @classmethod
    def of(cls, packet: Packet[Stream]) -> Wire:
        pts = packet.pts or 0
        base = packet.time_base
        offset = pts if base is None or base.denominator == RTP_CLOCK * base.numerator else (
            int(pts * base * RTP_CLOCK)
        )  # fmt: skip
        ntp = ntp_now()
        abs_send_time = ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")
        return cls(bytes(packet), offset, abs_send_time, ntp, time.monotonic())


def ntp_now() -> int:
    """The wall clock as a 64-bit NTP timestamp (aiortc's ``clock.current_ntp_time`` goes
    through datetime objects, several times slower)."""
    now = time.time()
    seconds = int(now)
    return ((seconds + _NTP_EPOCH_OFFSET) << 32) | int((now - seconds) * (1 << 32))


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
        self._fast = fast
        self._sequence = random.randint(0, 0xFFFF) if first_sequence is None else first_sequence
        self.origin = random.getrandbits(32)
        """The RTP timestamp of pts 0."""
        self._packets = 0
        self._fast_packets = 0
        self._send_errors = 0
        self._octets = 0
        self._native: Lane | None = None
        """The C loop's lane while the stream is on it: it counts (and numbers) the packets
        it sends; `_fold` brings them back when the stream leaves it."""
        self._header: bytearray | None = None
        self._template = b""
        """The header as bytes (the fast lane copies it into libsrtp's buffer)."""
        self._size = 0
        self._abs_at = 0
        self._lane: _Lane | None = None
        self._on_fast: Callable[[], None] | None = None
        self._report_due = 0.0
        """When the fast lane sends this stream's next sender report (monotonic)."""
        self._off_lane: asyncio.Event | None = None
        """Set when the stream leaves the fast lane: the report loop takes over again."""
        self.reports = 0
        """Sender reports sent, from either path."""

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
        # Instance attributes shadow the methods; aiortc's send() starts them as its tasks.
        sender._run_rtp = stream._run_rtp  # type: ignore[method-assign]  # aiortc's send() starts it (see above)
        sender._run_rtcp = stream._run_rtcp  # type: ignore[method-assign]  # aiortc's send() starts it (see above)
        return stream

    # -- what both paths count ----------------------------------------------------------

    @property
    def fast(self) -> bool:
        """The room's switch: False keeps (or takes) the stream off the fast lane."""
        return self._fast

    @fast.setter
    def fast(self, value: bool) -> None:
        self._fast = value
        if not value and self._lane is not None:
            self._leave_lane()

    @property
    def sequence(self) -> int:
        """The next sequence number, from either path."""
        native = self._native
        return self._sequence if native is None else native.sequence

    @sequence.setter
    def sequence(self, value: int) -> None:
        self._sequence = value & 0xFFFF
        if self._native is not None:
            self._native.sequence = self._sequence

    @property
    def packets(self) -> int:
        """Packets sent, on either path."""
        native = self._native
        return self._packets + (0 if native is None else native.packets)

    @property
    def fast_packets(self) -> int:
        """Of `packets`, those sent on the fast lane."""
        native = self._native
        return self._fast_packets + (0 if native is None else native.packets)

    @property
    def octets(self) -> int:
        """Payload bytes sent, on either path."""
        native = self._native
        return self._octets + (0 if native is None else native.octets)

    @property
    def send_errors(self) -> int:
        """Fast-lane packets lost on the way out (libsrtp refused, the socket did)."""
        native = self._native
        return self._send_errors + (0 if native is None else native.errors)

    # -- the fast lane ------------------------------------------------------------------

    @property
    def path(self) -> str:
        """``fast`` or ``aiortc``: where the next packet would go."""
        return "fast" if self.is_fast() else "aiortc"

    def is_fast(self) -> bool:
        """True while the next packet may take the fast lane (checked per packet: cheap)."""
        lane = self._lane
        if lane is not None:
            if self._fast and lane.open(self.sender):
                return True
            self._leave_lane()  # then straight onto the new pair's lane, if it has one
        return self._fast and self._header is not None and self._enter()

    def _leave_lane(self) -> None:
        self._lane = None
        if self._native is not None:
            self._fold()
        if self._off_lane is not None:
            self._off_lane.set()

    def native_lane(self, wire: Wire) -> Lane | None:
        """This stream's lane for the C loop (`native_send`) if the fast lane is open for
        it, after the checks and the sender report that `send` would make on this packet;
        None leaves the packet to the aiortc path. The fan-out calls it every
        `NATIVE_CHECK_EVERY` packets and sends on the lane in between."""
        if _native is None or not self.is_fast():
            return None
        lane = self._lane
        assert lane is not None
        native = self._native
        if native is None:
            address = sockaddr(lane.sock.family, lane.addr)
            if address is None:
                return None  # only sendto knows how to write it: aiortc's path
            native = self._native = _native.Lane(
                srtp=int(_ffi.cast("uintptr_t", lane.srtp)),
                sock=lane.sock,
                address=address,
                header=self._template,
                abs_at=self._abs_at,
                sequence=self._sequence,
                origin=self.origin,
            )
        timestamp = self._timestamp(wire)
        if wire.at >= self._report_due:
            self._send_report(lane, timestamp, wire)
        self._report(timestamp, wire.ntp)
        return native

    def _fold(self) -> None:
        """Take back the counts and the sequence number from the C loop's lane, and stop it
        (the fan-out drops it on its next check)."""
        native = self._native
        assert native is not None
        native.active = False
        self._native = None
        self._sequence = native.sequence
        self._packets += native.packets
        self._fast_packets += native.packets
        self._octets += native.octets
        self._send_errors += native.errors

    def send(self, wire: Wire, batch: DatagramBatch | None = None) -> bool:
        """Send one packet on the fast lane if it is open for this stream; False leaves the
        packet to the aiortc path (the caller queues it on the track).

        With a ``batch``, the protected packet waits in libsrtp's buffer, queued on the
        ring, until the caller's ``batch.flush()``, which must come before anything else
        uses this connection's SRTP session (the fan-out flushes at the end of its loop).
        Without one it is sent at once.

        The fan-out calls this once per listener per packet, so it is written flat: the
        header template is copied into libsrtp's own buffer, stamped there, protected in
        place and sent from that buffer, with no bytes object made. A socket error or a
        full socket buffer loses the packet (counted in ``send_errors``), like any UDP loss.
        """
        if self._native is not None:
            self._fold()  # the fan-out stopped using the C loop
        lane = self._lane
        # The lane's full check every 8th packet (160 ms): a stale pair or session for a
        # moment only loses a few packets, and a closed socket is caught below.
        if lane is None or not self._fast or (not self._packets & 7 and not lane.open(self.sender)):
            if not self.is_fast():
                return False
            lane = self._lane
            assert lane is not None
        sequence = self._sequence
        timestamp = self._timestamp(wire)
        view = lane.view
        size = self._size
        end = size + len(wire.payload)
        if end > _LARGEST:
            return False  # too big for libsrtp's buffer with its trailer: aiortc's path
        if batch is not None:
            batch.reuse(lane.buffer)
        if wire.at >= self._report_due:
            self._send_report(lane, timestamp, wire)
        view[:size] = self._template
        _SEQ_TS.pack_into(view, 2, sequence, timestamp)
        if self._abs_at:
            view[self._abs_at : self._abs_at + 3] = wire.abs_send_time
        view[size:end] = wire.payload
        self._sequence = (sequence + 1) & 0xFFFF
        packets = self._packets = self._packets + 1
        self._fast_packets += 1
        self._octets += end - size
        if not packets % _REPORT_EVERY:
            self._report(timestamp, wire.ntp)
        length = lane.length
        length[0] = end
        if _srtp_protect(lane.srtp, lane.cdata, length):
            self._send_errors += 1  # libsrtp refused (replay, key limit); the stream goes on
            return True
        if batch is not None:
            slot = lane.slot
            if slot is None:
                slot = lane.slot = batch.slot(lane.sock, lane.addr, lane.buffer, self._lost)
            # A socket closed under a lane still open (a fatal socket error) has fileno -1:
            # its descriptor may belong to another socket by now.
            if slot is not None and lane.sock.fileno() == slot.fd:
                batch.queue(slot, length[0])
                return True
        try:
            lane.sock.sendto(view[: length[0]], lane.addr)
        except OSError:
            self._send_errors += 1  # lost like any UDP packet; the stream goes on
        return True

    def _send_report(self, lane: _Lane, timestamp: int, wire: Wire) -> None:
        """Send the sender report (SR and SDES) that fell due, from the fan-out's loop; the
        SRTP session's buffer is free (before this packet is stamped into it)."""
        self._report_due = wire.at + FAST_REPORT_SECONDS * (0.5 + random.random())
        try:
            data = lane.dtls._tx_srtp.protect_rtcp(self._report_payload(timestamp, wire.ntp))
            lane.sock.sendto(data, lane.addr)
        except (OSError, ValueError):  # lost like any UDP packet (pylibsrtp: ValueError)
            self._send_errors += 1

    def _report_payload(self, rtp_timestamp: int, ntp: int) -> bytes:
        """SR and SDES for this stream's sender as aiortc writes them, noting what aiortc's
        receiver-report handling reads to estimate the round trip."""
        sender = self.sender
        info = RtcpSenderInfo(
            ntp_timestamp=ntp,
            rtp_timestamp=rtp_timestamp,
            packet_count=self.packets & 0xFFFFFFFF,
            octet_count=self.octets & 0xFFFFFFFF,
        )
        payload = bytes(RtcpSrPacket(ssrc=sender._ssrc, sender_info=info))
        setattr(sender, _SENDER + "lsr", (ntp >> 16) & 0xFFFFFFFF)
        setattr(sender, _SENDER + "lsr_time", time.time())
        cname: str | None = getattr(sender, _SENDER + "cname")
        if cname is not None:
            chunk = RtcpSourceInfo(ssrc=sender._ssrc, items=[(1, cname.encode())])
            payload += bytes(RtcpSdesPacket(chunks=[chunk]))
        self.reports += 1
        return payload

    def _lost(self, _errno: int) -> None:
        """A batched datagram the kernel refused: lost like any UDP packet."""
        self._send_errors += 1

    def _enter(self) -> bool:
        dtls = self.sender.transport
        if dtls._state is not State.CONNECTED or dtls._tx_srtp is None:
            return False
        connection = dtls.transport._connection
        pair = connection._nominated.get(1)
        if pair is None or not _plain_udp(pair):
            return False
        srtp = dtls._tx_srtp
        self._lane = _Lane(
            dtls=dtls,
            nominated=connection._nominated,
            pair=pair,
            addr=pair.remote_addr,
            # asyncio's own socket (private; see the module docstring)
            sock=pair.protocol.transport._sock,  # type: ignore[attr-defined]  # asyncio private
            srtp=srtp._srtp[0],
            cdata=srtp._cdata,
            buffer=int(_ffi.cast("uintptr_t", srtp._cdata)),
            view=memoryview(srtp._buffer),
            length=_ffi.new("int *"),
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
            self._template, self._size = bytes(self._header), len(self._header)
            while True:
                packet = await self.track.recv()
                if not sender._enabled:
                    continue
                wire = Wire.of(packet)
                if self._lane is not None:
                    self._leave_lane()  # a packet on this path: the report loop's turn
                data, timestamp = self._stamp(wire)
                await sender.transport._send_rtp(data)
                self._packets += 1
                self._octets += len(wire.payload)
                self._report(timestamp, wire.ntp)
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            logger.warning("RTP loop failed:\n%s", traceback.format_exc())
        finally:
            self.track.stop()
            exited.set()

    async def _run_rtcp(self) -> None:
        """aiortc's sender-report loop (SR, SDES, BYE at the end) for the aiortc path, every
        0.5-1.5 s as aiortc's; it waits while the stream is on the fast lane, where the
        fan-out's loop sends the reports (`_send_report`)."""
        sender = self.sender
        getattr(sender, _SENDER + "rtcp_started").set()
        self._off_lane = asyncio.Event()
        try:
            while True:
                if self._lane is not None:
                    self._off_lane.clear()
                    await self._off_lane.wait()
                    continue
                await asyncio.sleep(0.5 + random.random())
                if self._lane is not None:
                    continue  # went onto the fast lane meanwhile: its reports are due there
                ntp = getattr(sender, _SENDER + "ntp_timestamp")
                rtp_timestamp = getattr(sender, _SENDER + "rtp_timestamp")
                with contextlib.suppress(ConnectionError):  # DTLS not up (yet): next time
                    await sender.transport._send_rtp(self._report_payload(rtp_timestamp, ntp))
        except asyncio.CancelledError:
            pass
        await sender._send_rtcp([RtcpByePacket(sources=[sender._ssrc])])
        getattr(sender, _SENDER + "rtcp_exited").set()

    def _stamp(self, wire: Wire) -> tuple[bytes, int]:
        header = self._header
        assert header is not None
        timestamp = self._timestamp(wire)
        _SEQ_TS.pack_into(header, 2, self._sequence, timestamp)
        if self._abs_at:
            header[self._abs_at : self._abs_at + 3] = wire.abs_send_time
        self._sequence = (self._sequence + 1) & 0xFFFF
        return bytes(header) + wire.payload, timestamp

    def _timestamp(self, wire: Wire) -> int:
        """The packet's RTP timestamp on this stream (the C loop adds the same origin)."""
        return (self.origin + wire.offset) & 0xFFFFFFFF

    def _report(self, timestamp: int, ntp: int) -> None:
        """Keep the sender report aiortc sends every second true to both paths."""
        sender = self.sender
        setattr(sender, _SENDER + "rtp_timestamp", timestamp)
        setattr(sender, _SENDER + "ntp_timestamp", ntp)
        setattr(sender, _SENDER + "packet_count", self.packets)
        setattr(sender, _SENDER + "octet_count", self.octets)


@dataclass(slots=True)
class _Lane:
    """A stream's way out on the fast lane: the libsrtp session and UDP transport of the
    connection's selected ICE pair, while it stays selected and DTLS stays up."""

    dtls: RTCDtlsTransport
    nominated: dict[int, aioice.ice.CandidatePair]
    """aioice's selected pairs by component, watched for a change of pair."""
    pair: aioice.ice.CandidatePair
    addr: tuple[str, int]
    sock: socket.socket
    """The pair's UDP socket, written to directly (a full buffer loses the packet)."""
    srtp: Any
    """libsrtp's ``srtp_t`` of the DTLS transport's sending session (pylibsrtp's)."""
    cdata: Any
    """That session's packet buffer (``char[1500]``), which ``srtp_protect`` works in."""
    buffer: int
    """That buffer's address (the ring sends from it)."""
    view: memoryview
    length: Any
    """An ``int *`` for ``srtp_protect``'s in/out packet length."""
    slot: Slot | None = None
    """The lane's entry on the fan-out's `DatagramBatch`, made on its first batched send."""

    def open(self, sender: RTCRtpSender) -> bool:
        return (
            self.nominated.get(1) is self.pair
            and self.dtls is sender.transport
            and self.dtls._state is State.CONNECTED
            and sender._enabled
        )


def native_send(lanes: list[Lane], wire: Wire, batch: DatagramBatch | None) -> int:
    """Send ``wire`` on every lane of ``lanes`` (each from a stream's `native_lane`) with the
    C loop, in one io_uring call on ``batch`` or with ``sendto`` (OSError: the ring failed;
    this packet is lost on the lanes not sent yet). Returns how many lanes were no longer
    active (their streams left the fast lane since the caller's last check)."""
    assert _native is not None, "native_lane makes no lane without the C loop"
    ring = None if batch is None else batch.native
    counts: tuple[int, int, int] = _native.send(
        lanes, wire.payload, wire.offset, wire.abs_send_time, ring
    )
    sent, failed, idle = counts
    if batch is not None:
        batch.counted(sent, failed)
    return idle


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
