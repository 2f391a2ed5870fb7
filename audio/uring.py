"""Many UDP datagrams, each from its own socket, handed to the kernel in one system call.

The fast lane sends the room's packet to every listener from that listener's own ICE socket
(aioice binds one per connection), so ``sendmmsg``, which batches the datagrams of one
socket, cannot batch them. Linux's io_uring can: every datagram is one ``IORING_OP_SENDMSG``
entry on a submission ring shared with the kernel, and one ``io_uring_enter`` sends them all.
Measured here (150 listeners in two processes, one burst every 20 ms as the mixer sends, CPU
per datagram including the loopback delivery the sender pays for): ``sendto`` 6.4-6.8 us,
one io_uring batch 4.1-4.2 us.

This is the smallest ring that does that, on the raw system calls (``io_uring_setup``,
``io_uring_enter``) through ctypes and two ``mmap``s: PyPI's liburing binding marks its send
functions "coded but not tested", and a ring that only ever sends needs a few dozen lines.

* Every socket must be non-blocking (asyncio's are). io_uring then tries each send at once,
  inside ``io_uring_enter``, and a full socket buffer comes back as ``EAGAIN`` instead of a
  send left pending: when ``flush`` returns, the kernel has copied every datagram and the
  buffers are free again (a datagram lost to a full buffer is lost, as UDP loses it).
* A `Slot` is one socket and destination with its ``msghdr``, ``iovec`` and address built
  once; each datagram only sets the iovec's length and copies the slot's 64-byte entry into
  the ring.
* `DatagramBatch.open` returns None where io_uring is missing or forbidden (not Linux, a
  kernel before 5.6, ``kernel.io_uring_disabled``, a container's seccomp profile): the
  caller sends with ``sendto`` instead. It also sends one datagram to itself first, so a
  ring the kernel accepts but does not honour is not used.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import ipaddress
import logging
import mmap
import os
import socket
import struct
import sys
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

_SETUP, _ENTER = 425, 426
"""io_uring_setup and io_uring_enter: the same numbers on every Linux architecture."""
_OP_SENDMSG = 9
_OFF_SQES = 0x10000000
_FEAT_SINGLE_MMAP = 1
_MAP_POPULATE = 0x8000
_MSG_DONTWAIT = 0x40
_ENTRIES = 512
"""Submission ring size: a larger batch is sent in several calls."""

_SQE = struct.Struct("=BBHiQQIIQHHiQQ")
_SQE_SIZE = 64
"""``struct io_uring_sqe`` (64 bytes) as far as a SENDMSG uses it: opcode, flags, ioprio, fd,
off, addr (the msghdr), len (1), msg_flags, user_data, buf_index, personality, file_index,
addr3, padding."""
_CQE = struct.Struct("=Qi")
"""The head of ``struct io_uring_cqe``: user_data, res."""
_CQE_SIZE = 16


class _Iovec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("length", ctypes.c_size_t))


class _Msghdr(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(_Iovec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    )


class Slot:
    """One socket and destination, ready to send the bytes at ``buffer`` (its first
    ``length`` bytes, set per datagram with `DatagramBatch.queue`)."""

    __slots__ = ("_keep", "buffer", "entry", "fd", "iov", "key", "on_failure")

    def __init__(
        self, key: int, fd: int, buffer: int, address: bytes, on_failure: Callable[[int], None]
    ) -> None:
        name = ctypes.create_string_buffer(address, len(address))
        iov = _Iovec(buffer, 0)
        header = _Msghdr(ctypes.addressof(name), len(address), ctypes.pointer(iov), 1)
        self._keep = (name, header)
        """The C structures the kernel reads through the entry's pointers."""
        self.iov = iov
        self.fd = fd
        self.buffer = buffer
        self.key = key
        self.on_failure = on_failure
        """Called with the errno of a datagram the kernel refused (it is lost)."""
        self.entry = _SQE.pack(
            _OP_SENDMSG, 0, 0, fd, 0, ctypes.addressof(header), 1, _MSG_DONTWAIT, key,
            0, 0, 0, 0, 0,
        )  # fmt: skip


class DatagramBatch:
    """A submission ring that sends queued datagrams with one ``io_uring_enter``.

    Use it from one thread (the event loop's): `for_this_thread` keeps one per thread.
    """

    def __init__(self, entries: int = _ENTRIES) -> None:
        params = (ctypes.c_uint32 * 30)()
        fd = _syscall(_SETUP, entries, ctypes.addressof(params))
        self.fd = fd
        try:
            if not params[5] & _FEAT_SINGLE_MMAP:
                raise OSError(errno.ENOSYS, "io_uring before Linux 5.4 (no single mapping)")
            sq_entries, cq_entries = params[0], params[1]
            sq_off, cq_off = params[10:20], params[20:30]
            self._ring = mmap.mmap(
                fd,
                max(sq_off[6] + sq_entries * 4, cq_off[5] + cq_entries * _CQE_SIZE),
                mmap.MAP_SHARED | _MAP_POPULATE,
                mmap.PROT_READ | mmap.PROT_WRITE,
                offset=0,
            )
            self._sqes = mmap.mmap(
                fd,
                sq_entries * _SQE_SIZE,
                mmap.MAP_SHARED | _MAP_POPULATE,
                mmap.PROT_READ | mmap.PROT_WRITE,
                offset=_OFF_SQES,
            )
        except BaseException:
            os.close(fd)
            raise
        words = memoryview(self._ring).cast("I")
        self._words = words
        self._sq_tail = sq_off[1] // 4
        self._sq_mask = words[sq_off[2] // 4]
        self._cq_head, self._cq_tail = cq_off[0] // 4, cq_off[1] // 4
        self._cq_mask = words[cq_off[2] // 4]
        self._cqes = cq_off[5]
        for index in range(sq_entries):
            words[sq_off[6] // 4 + index] = index  # entry i sits in slot i, always
        self._entries = sq_entries
        self._view = memoryview(self._sqes)
        self._queued: list[Slot] = []
        self._tail = words[self._sq_tail]
        """The submission tail as we fill it; the kernel's copy moves on `flush`."""
        self._buffers: set[int] = set()
        self._keys = 0
        self.sent = 0
        self.failed = 0
        ring, sqes = _address(self._ring), _address(self._sqes)
        self.native = (
            fd, sq_entries, self._sq_mask, self._cq_mask, sqes,
            ring + sq_off[1], ring + cq_off[0], ring + cq_off[1], ring + cq_off[5],
        )  # fmt: skip
        """The ring as the fast lane's C loop takes it (audio/_lane.c, ``send``): the file
        descriptor, entries, submission and completion masks, then the addresses of the
        entries, the submission tail, the completion head and tail, and the completions. That
        loop queues and sends whole batches itself; `queue` starts from the tail it left."""

    @classmethod
    def open(cls) -> DatagramBatch | None:
        """A working ring, or None (logged once) where io_uring cannot send for us."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            batch = cls()
        except OSError as exc:
            logger.info("io_uring unavailable (%s): the fast lane sends with sendto", exc)
            return None
        try:
            batch._probe()
        except OSError as exc:
            batch.close()
            logger.warning("io_uring did not send a test datagram (%s): using sendto", exc)
            return None
        return batch

    def slot(
        self,
        sock: socket.socket,
        addr: tuple[Any, ...],
        buffer: int,
        on_failure: Callable[[int], None] = lambda code: None,
    ) -> Slot | None:
        """A slot sending from ``sock`` to ``addr`` out of the memory at ``buffer``; None
        when this ring cannot (a blocking socket, an address it does not know how to write):
        send that one with ``sendto``."""
        if sock.getblocking() or sock.type != socket.SOCK_DGRAM:
            return None
        address = sockaddr(sock.family, addr)
        if address is None:
            return None
        self._keys += 1
        return Slot(self._keys, sock.fileno(), buffer, address, on_failure)

    def reuse(self, buffer: int) -> None:
        """Call before writing into ``buffer``: a datagram still queued from it goes first."""
        if buffer in self._buffers:
            self.flush()

    def queue(self, slot: Slot, length: int) -> None:
        """Queue ``length`` bytes of the slot's buffer; sent by the next `flush`. The buffer
        must not change until then (see `reuse`)."""
        queued = self._queued
        if not queued:
            self._tail = self._words[self._sq_tail]  # the C loop may have moved it
        elif len(queued) == self._entries:
            self.flush()
        tail = self._tail
        at = (tail & self._sq_mask) * _SQE_SIZE
        self._view[at : at + _SQE_SIZE] = slot.entry
        slot.iov.length = length
        queued.append(slot)
        self._buffers.add(slot.buffer)
        self._tail = (tail + 1) & 0xFFFFFFFF

    def flush(self) -> int:
        """Send everything queued in one system call; returns how many sends failed.

        Each failure (a full socket buffer, an unreachable peer) goes to its slot's
        ``on_failure``; the datagram is lost, as UDP loses it.
        """
        queued = self._queued
        count = len(queued)
        if not count:
            return 0
        self._words[self._sq_tail] = self._tail  # the kernel sees the new entries from here
        try:
            for _ in range(3):
                try:
                    _syscall(_ENTER, self.fd, count, count, 1, 0, 0)  # 1: IORING_ENTER_GETEVENTS
                    break
                except InterruptedError:
                    continue  # a signal before anything was submitted: the entries wait in the ring
        finally:
            failed = self._reap()
            self._buffers.clear()
        self.counted(count - failed, failed)
        return failed

    def counted(self, sent: int, failed: int) -> None:
        """Count datagrams sent and lost through this ring (here or by the C loop)."""
        self.sent += sent
        self.failed += failed

    def _reap(self) -> int:
        queued = self._queued
        failed = completed = 0
        by_key: dict[int, Slot] | None = None
        words = self._words
        head, tail = words[self._cq_head], words[self._cq_tail]
        while head != tail:
            key, result = _CQE.unpack_from(self._ring, self._cqes + (head & self._cq_mask) * 16)
            head = (head + 1) & 0xFFFFFFFF
            completed += 1
            if result < 0:
                failed += 1
                if by_key is None:
                    by_key = {slot.key: slot for slot in queued}
                slot = by_key.get(key)
                if slot is not None:
                    slot.on_failure(-result)
        words[self._cq_head] = head
        # None left: the kernel completes every non-blocking send before io_uring_enter returns.
        failed += max(0, len(queued) - completed)
        queued.clear()
        return failed

    def close(self) -> None:
        if self.fd < 0:
            return
        self._queued.clear()
        self._view.release()
        self._words.release()
        self._sqes.close()
        self._ring.close()
        os.close(self.fd)
        self.fd = -1

    def _probe(self) -> None:
        """Send one datagram to a socket of our own through the ring, and read it back."""
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
        ):
            rx.bind(("127.0.0.1", 0))
            rx.settimeout(1.0)
            tx.setblocking(False)
            payload = ctypes.create_string_buffer(b"stagepass io_uring probe")
            slot = self.slot(tx, rx.getsockname(), ctypes.addressof(payload))
            assert slot is not None, "a non-blocking UDP socket to 127.0.0.1 always has one"
            self.queue(slot, len(payload.value))
            failures: list[int] = []
            slot.on_failure = failures.append
            self.flush()
            if failures:
                raise OSError(failures[0], os.strerror(failures[0]))
            if rx.recv(64) != payload.value:  # socket.timeout is an OSError
                raise OSError(errno.EIO, "the probe datagram came back changed")


_local = threading.local()


def for_this_thread() -> DatagramBatch | None:
    """This thread's ring, made on first use (None where io_uring cannot be used). It lives
    as long as the thread: one file descriptor and two small mappings. A forked child makes
    its own: a ring shared with the parent would mix both processes' entries."""
    pid = os.getpid()
    if getattr(_local, "pid", None) != pid:
        _local.pid, _local.batch = pid, DatagramBatch.open()
    return _local.batch  # type: ignore[no-any-return]  # threading.local is untyped


def retire(batch: DatagramBatch) -> None:
    """Stop using ``batch`` in this thread (a system call failed in a way a send should not):
    it is closed, and `for_this_thread` answers None from now on, so the fast lane sends with
    ``sendto``."""
    if getattr(_local, "batch", None) is batch:
        _local.batch = None
    batch.close()


def sockaddr(family: int, addr: tuple[Any, ...]) -> bytes | None:
    """``struct sockaddr_in`` / ``sockaddr_in6`` for ``addr`` on a socket of ``family``;
    None for an address only ``sendto`` knows how to write (a host name, a scope id)."""
    try:
        ip = ipaddress.ip_address(addr[0])
    except ValueError:
        return None  # a host name: sendto resolves it, we do not
    port = int(addr[1])
    if family == socket.AF_INET and ip.version == 4:
        return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + ip.packed + bytes(8)
    if family == socket.AF_INET6:
        if ip.version == 4:
            ip = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ip.packed)
        if ip.is_link_local:
            return None  # needs the scope id sendto works out
        flow = int(addr[2]) if len(addr) > 2 else 0
        return (
            struct.pack("=H", socket.AF_INET6)
            + struct.pack("!HI", port, flow)
            + ip.packed
            + struct.pack("=I", 0)
        )
    return None


def _address(mapping: mmap.mmap) -> int:
    """Where ``mapping`` starts in memory (the ctypes view is dropped at once: a buffer
    still exported would stop ``mapping.close()``)."""
    view = ctypes.c_char.from_buffer(mapping)
    try:
        return ctypes.addressof(view)
    finally:
        del view


@functools.cache
def _libc_syscall() -> Any:
    function = ctypes.CDLL(None, use_errno=True).syscall
    function.restype = ctypes.c_long
    return function


def _syscall(number: int, *args: int | None) -> int:
    """``syscall(2)``; every argument passed as a C long (it is variadic: an int would
    leave a register's upper half undefined)."""
    result: int = _libc_syscall()(ctypes.c_long(number), *(ctypes.c_long(a or 0) for a in args))
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{os.strerror(code)} (system call {number})")
    return result
