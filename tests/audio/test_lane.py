"""The fast lane's C loop (audio/_lane.c) on its own: every datagram it sends is byte for
byte what libsrtp makes of the packet `RtpStream` would stamp, through sendto and through
io_uring; a lane it must not send on sends nothing; bad arguments are refused."""

from __future__ import annotations

import ctypes
import gc
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from pylibsrtp import Policy, Session
from pylibsrtp._binding import ffi

from audio import fastlane, uring
from audio.fastlane import Wire
from tests.audio.conftest import thread_ring

if not fastlane.NATIVE:
    pytest.skip(
        "audio._lane IS NOT BUILT (no C compiler?): the fast lane's C loop is untested",
        allow_module_level=True,
    )

from audio import _lane

KEY = bytes(range(30))
HEADER = bytes.fromhex("90 6f 0000 00000000 11223344 bede0002 10 61 22 000000 00".replace(" ", ""))
"""Marker, payload type 111, SSRC 0x11223344, two one-byte extensions: mid "a" and a 3-byte
abs-send-time (at offset 19), padded to a word."""
ABS_AT = 19


def _session(profile: int = Policy.SRTP_PROFILE_AES128_CM_SHA1_80) -> Session:
    return Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))


def _srtp_t(session: Session) -> int:
    return int(ffi.cast("uintptr_t", session._srtp[0]))


class Listener:
    """One listener: a receiving socket, the server's sending socket and a lane between."""

    def __init__(self, sequence: int, origin: int, *, header: bytes = HEADER, abs_at: int = ABS_AT):
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.bind(("127.0.0.1", 0))
        self.rx.settimeout(2.0)
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tx.bind(("127.0.0.1", 0))
        self.tx.setblocking(False)
        self.session = _session()
        self.twin = _session()
        """The same keys, protecting what the lane should have sent."""
        address = uring.sockaddr(socket.AF_INET, self.rx.getsockname())
        assert address is not None
        self.header, self.abs_at, self.origin = header, abs_at, origin
        self.lane = _lane.Lane(
            srtp=_srtp_t(self.session), sock=self.tx, address=address, header=header,
            abs_at=abs_at, sequence=sequence, origin=origin,
        )  # fmt: skip

    def expected(self, sequence: int, wire: Wire) -> bytes:
        packet = bytearray(self.header)
        struct.pack_into("!HI", packet, 2, sequence, (self.origin + wire.offset) & 0xFFFFFFFF)
        if self.abs_at:
            packet[self.abs_at : self.abs_at + 3] = wire.abs_send_time
        return self.twin.protect(bytes(packet) + wire.payload)

    def received(self) -> bytes:
        return self.rx.recv(2048)

    def nothing_waiting(self) -> bool:
        self.rx.setblocking(False)
        try:
            self.rx.recv(2048)
        except BlockingIOError:
            return True
        finally:
            self.rx.settimeout(2.0)
        return False

    def close(self) -> None:
        self.rx.close()
        self.tx.close()


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    made = [
        Listener(65_534, 0xFFFF_FF00),  # both wrap within the packets sent
        Listener(7, 12_345, header=b"\x80" + HEADER[1:12], abs_at=0),  # no extensions
        Listener(40_000, 0),
    ]
    yield made
    for listener in made:
        listener.close()


def _wire(tick: int, size: int = 120) -> Wire:
    return Wire(
        payload=bytes((tick + i) & 0xFF for i in range(size)),
        offset=tick * 960,
        abs_send_time=(tick * 4099).to_bytes(3, "big"),
        ntp=0,
        at=0.0,
    )


def _ring(sending: str) -> tuple[int, ...] | None:
    return thread_ring().native if sending == "io_uring" else None


@pytest.mark.parametrize("sending", ["io_uring", "sendto"])
def test_every_datagram_is_what_libsrtp_makes_of_the_stamped_packet(
    listeners: list[Listener], sending: str
) -> None:
    starts = [listener.lane.sequence for listener in listeners]
    ring = _ring(sending)
    batch = uring.for_this_thread()
    before = 0 if batch is None else batch.sent
    for tick in range(5):
        wire = _wire(tick)
        sent, failed, idle = _lane.send([x.lane for x in listeners], wire.payload, wire.offset,
                                        wire.abs_send_time, ring)  # fmt: skip
        assert (sent, failed, idle) == ((3, 0, 0) if ring else (0, 0, 0))
        for listener, start in zip(listeners, starts, strict=True):
            sequence = (start + tick) & 0xFFFF
            assert listener.received() == listener.expected(sequence, wire), (
                f"tick {tick}, sequence {sequence}"
            )
    for listener, start in zip(listeners, starts, strict=True):
        lane = listener.lane
        assert (lane.packets, lane.octets, lane.errors) == (5, 600, 0)
        assert lane.sequence == (start + 5) & 0xFFFF
    if batch is not None:
        assert batch.sent == before  # send() reports what it sent; native_send counts it
        # The ring's own Python sends go on from where the C loop left the submission tail.
        payload = ctypes.create_string_buffer(b"after the C loop")
        receiver = listeners[0]
        slot = batch.slot(receiver.tx, receiver.rx.getsockname(), ctypes.addressof(payload))
        assert slot is not None
        batch.queue(slot, len(payload.value))
        assert batch.flush() == 0
        assert receiver.received() == payload.value


def test_a_lane_that_must_not_send_sends_nothing(listeners: list[Listener]) -> None:
    idle, closed, open_ = listeners
    idle.lane.active = False
    closed.tx.close()  # a socket closed under a lane not yet checked
    wire = _wire(1)
    lanes = [x.lane for x in listeners]
    assert _lane.send(lanes, wire.payload, wire.offset, wire.abs_send_time, None) == (0, 0, 1)
    assert open_.received() == open_.expected(40_000, wire)
    assert idle.lane.packets == 0 and idle.nothing_waiting()
    assert closed.lane.errors == 1 and closed.nothing_waiting()
    assert open_.lane.errors == 0


def test_a_packet_too_big_for_the_buffer_is_lost_not_overflowed(listeners: list[Listener]) -> None:
    wire = _wire(0, size=_lane.LARGEST)  # with any header, past the buffer's room
    _lane.send([x.lane for x in listeners], wire.payload, wire.offset, wire.abs_send_time, None)
    for listener in listeners:
        assert listener.lane.errors == 1 and listener.lane.packets == 0
        assert listener.nothing_waiting()


def test_a_failing_ring_raises_oserror(listeners: list[Listener]) -> None:
    thread_ring()  # a loud skip without io_uring
    ring = uring.DatagramBatch()  # its own: a failed ring is retired, never used again
    read, write = os.pipe()
    try:
        os.dup2(read, ring.fd)  # the kernel refuses io_uring_enter on a pipe
        wire = _wire(0)
        with pytest.raises(OSError):
            _lane.send([x.lane for x in listeners], wire.payload, wire.offset,
                       wire.abs_send_time, ring.native)  # fmt: skip
    finally:
        ring.close()
        os.close(read)
        os.close(write)
    for listener in listeners:
        assert listener.nothing_waiting()


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"header": b"\x80" * 11}, ValueError),  # shorter than an RTP header
        ({"header": b"\x80" * 129}, ValueError),
        ({"abs_at": 11}, ValueError),
        ({"abs_at": len(HEADER) - 2}, ValueError),
        ({"sequence": 65_536}, ValueError),
        ({"srtp": 0}, ValueError),
        ({"address": b""}, ValueError),
    ],
)
def test_a_lane_refuses_what_would_write_out_of_bounds(
    arguments: dict[str, Any], error: type[Exception]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        address = uring.sockaddr(socket.AF_INET, ("127.0.0.1", 9))
        good: dict[str, Any] = {
            "srtp": 1, "sock": sock, "address": address, "header": HEADER, "abs_at": ABS_AT,
            "sequence": 0, "origin": 0,
        }  # fmt: skip
        _lane.Lane(**good)
        with pytest.raises(error):
            _lane.Lane(**{**good, **arguments})
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        _lane.Lane(**{**good, "sock": closed})


def test_send_refuses_what_is_not_a_list_of_lanes(listeners: list[Listener]) -> None:
    wire = _wire(0)
    lanes = [x.lane for x in listeners]
    with pytest.raises(TypeError):
        _lane.send(tuple(lanes), wire.payload, 0, wire.abs_send_time, None)  # type: ignore[arg-type]  # the point
    with pytest.raises(TypeError):
        _lane.send([*lanes, object()], wire.payload, 0, wire.abs_send_time, None)  # type: ignore[list-item]  # the point
    with pytest.raises(TypeError):
        _lane.send(lanes, wire.payload, 0, b"\x00\x00", None)
    with pytest.raises(ValueError):
        _lane.send(lanes, wire.payload, 0, wire.abs_send_time, (1, 0, 0, 0, 0, 0, 0, 0, 0))


def test_python_code_run_during_send_cannot_pull_a_lane_from_under_it() -> None:
    """send() calls each socket's fileno(); a lane dropped by the caller's list meanwhile is
    still sent from (the kernel reads its msghdr until the batch goes out)."""
    receivers = [Listener(0, 0) for _ in range(3)]
    lanes: list[_lane.Lane] = []

    class Meddling(socket.socket):
        def fileno(self) -> int:
            lanes.clear()  # the only references to the other lanes
            gc.collect()
            return super().fileno()

    meddling = Meddling(socket.AF_INET, socket.SOCK_DGRAM)
    meddling.setblocking(False)
    try:
        for index, receiver in enumerate(receivers):
            address = uring.sockaddr(socket.AF_INET, receiver.rx.getsockname())
            assert address is not None
            sock = meddling if index == 0 else receiver.tx
            lane = _lane.Lane(_srtp_t(receiver.session), sock, address, HEADER, ABS_AT, 5, 0)
            lanes.append(lane)
        lanes.append(lanes[0])  # two copies of the meddling one, so it meddles late too
        wire = _wire(3)
        batch = uring.for_this_thread()
        ring = None if batch is None else batch.native
        _lane.send(lanes, wire.payload, wire.offset, wire.abs_send_time, ring)
        assert lanes == []
        for receiver in receivers[1:]:
            assert receiver.received() == receiver.expected(5, wire)
    finally:
        meddling.close()
        for receiver in receivers:
            receiver.close()
