"""audio.uring: many sockets' datagrams in one io_uring call, reported failures, and the
fallback to sendto where the kernel will not give us a ring."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import socket
from collections.abc import Iterator

import pytest

from audio import uring
from audio.uring import DatagramBatch, Slot
from tests.audio.conftest import thread_ring


@pytest.fixture
def batch() -> Iterator[DatagramBatch]:
    thread_ring()  # skips loudly where there is no io_uring
    ring = DatagramBatch.open()
    assert ring is not None
    yield ring
    ring.close()


def _pair(count: int) -> tuple[list[socket.socket], list[socket.socket]]:
    receivers, senders = [], []
    for _ in range(count):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(2.0)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.bind(("127.0.0.1", 0))
        tx.setblocking(False)
        receivers.append(rx)
        senders.append(tx)
    return receivers, senders


def test_one_flush_sends_every_sockets_datagram_from_its_own_port(batch: DatagramBatch) -> None:
    count = 40  # more than one ring's worth is tested below
    receivers, senders = _pair(count)
    buffers = [ctypes.create_string_buffer(1500) for _ in range(count)]
    slots: list[Slot] = []
    for rx, tx, buffer in zip(receivers, senders, buffers, strict=True):
        slot = batch.slot(tx, rx.getsockname(), ctypes.addressof(buffer))
        assert slot is not None
        slots.append(slot)
    for round_ in range(3):
        for index, (slot, buffer) in enumerate(zip(slots, buffers, strict=True)):
            payload = f"round {round_} datagram {index}".encode()
            ctypes.memmove(buffer, payload, len(payload))
            batch.queue(slot, len(payload))
        assert batch.flush() == 0
        for index, (rx, tx) in enumerate(zip(receivers, senders, strict=True)):
            data, source = rx.recvfrom(2048)
            assert data == f"round {round_} datagram {index}".encode()
            assert source == tx.getsockname()  # the listener sees its ICE pair's port
    assert batch.sent == 1 + 3 * count  # and the probe
    for sock in (*receivers, *senders):
        sock.close()


def test_a_batch_larger_than_the_ring_and_a_slot_queued_twice_lose_nothing() -> None:
    ring = DatagramBatch(entries=8)
    receivers, senders = _pair(1)
    rx, tx = receivers[0], senders[0]
    buffer = ctypes.create_string_buffer(64)
    other = [ctypes.create_string_buffer(b"%d" % n, 8) for n in range(20)]
    try:
        slots = [ring.slot(tx, rx.getsockname(), ctypes.addressof(b)) for b in other]
        for slot, data in zip(slots, other, strict=True):
            assert slot is not None
            ring.queue(slot, len(data.value))
        twice = ring.slot(tx, rx.getsockname(), ctypes.addressof(buffer))
        assert twice is not None
        ctypes.memmove(buffer, b"first", 5)
        ring.queue(twice, 5)
        ring.reuse(ctypes.addressof(buffer))  # the first must be on its way before we write
        ctypes.memmove(buffer, b"second", 6)
        ring.queue(twice, 6)
        assert ring.flush() == 0
        got = [rx.recv(64) for _ in range(22)]
        assert got == [b"%d" % n for n in range(20)] + [b"first", b"second"]
    finally:
        ring.close()
        rx.close()
        tx.close()


def test_a_failed_send_is_reported_and_the_others_still_go(batch: DatagramBatch) -> None:
    receivers, senders = _pair(2)
    buffer = ctypes.create_string_buffer(b"hello", 16)
    failures: list[int] = []
    good = batch.slot(senders[0], receivers[0].getsockname(), ctypes.addressof(buffer))
    # Broadcast without SO_BROADCAST: the kernel refuses this one send (EACCES).
    bad = batch.slot(senders[1], ("255.255.255.255", 9), ctypes.addressof(buffer), failures.append)
    assert good is not None and bad is not None
    batch.queue(bad, 5)
    batch.queue(good, 5)
    assert batch.flush() == 1
    assert failures == [errno.EACCES]
    assert receivers[0].recv(64) == b"hello"
    for sock in (*receivers, *senders):
        sock.close()


def test_what_the_ring_cannot_send_is_left_to_sendto(batch: DatagramBatch) -> None:
    blocking = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet.setblocking(False)
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    v6.setblocking(False)
    try:
        # A blocking socket could leave a send pending after flush returns.
        assert batch.slot(blocking, ("127.0.0.1", 9), 0) is None
        assert batch.slot(quiet, ("localhost", 9), 0) is None  # names are sendto's to resolve
        assert batch.slot(v6, ("fe80::1", 9), 0) is None  # needs a scope id
        assert batch.slot(v6, ("::1", 9), 0) is not None
        assert batch.slot(v6, ("127.0.0.1", 9), 0) is not None  # v4-mapped
    finally:
        for sock in (blocking, quiet, v6):
            sock.close()


def test_without_io_uring_open_says_so_and_gives_none(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refused(number: int, *args: int | None) -> int:
        raise OSError(errno.EPERM, "Operation not permitted (a seccomp profile)")

    monkeypatch.setattr(uring, "_syscall", refused)
    with caplog.at_level(logging.INFO, logger="audio.uring"):
        assert DatagramBatch.open() is None
    assert "io_uring unavailable" in caplog.text and "sendto" in caplog.text


def test_a_forked_child_gets_its_own_ring(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = thread_ring()
    pid = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: pid + 1)  # as in a forked child
    child = uring.for_this_thread()
    assert child is not None and child is not parent and child.fd != parent.fd
    assert uring.for_this_thread() is child
    child.close()
    monkeypatch.undo()
    uring._local.pid, uring._local.batch = pid, parent  # the parent's own again
    assert uring.for_this_thread() is parent


def test_a_signal_during_the_call_is_retried(
    batch: DatagramBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    receivers, senders = _pair(1)
    buffer = ctypes.create_string_buffer(b"again", 16)
    slot = batch.slot(senders[0], receivers[0].getsockname(), ctypes.addressof(buffer))
    assert slot is not None
    real = uring._syscall
    interrupted: list[int] = []

    def once_interrupted(number: int, *args: int | None) -> int:
        if number == uring._ENTER and not interrupted:
            interrupted.append(number)
            raise OSError(errno.EINTR, "Interrupted system call")  # as InterruptedError
        return real(number, *args)

    monkeypatch.setattr(uring, "_syscall", once_interrupted)
    batch.queue(slot, 5)
    assert batch.flush() == 0
    assert interrupted and receivers[0].recv(64) == b"again"
    for sock in (*receivers, *senders):
        sock.close()
