"""Shared-encode fan-out: one Opus packet per tick, handed as-is to every listener's sender.

aiortc's `RTCRtpSender` encodes each track it is given on its own, so N listeners behind a
`MediaRelay` cost N Opus encodes per tick (DESIGN.md: 50 listeners overloaded 2 cores). When
a track's ``recv()`` returns an `av.Packet` instead of a frame, the sender only packetizes
it (``Encoder.pack``): the mixer encodes once and the same packet object goes to every
listener, which costs about a tenth of the CPU.

Each listener has its own `PacketTrack` with a small bounded queue. The mixer never waits for
a sender: if a listener's sender falls behind (slow event loop turn, congested socket), the
oldest queued packet is dropped, so one slow listener cannot hold the room back or grow
memory.

A track whose `RtpStream` is on the fast lane (`audio.fastlane`) is not queued at all:
`Fanout.publish` sends its copy of the packet at once, from the same loop; with the fast
lane's C loop, for all such tracks in one call, going through the tracks in Python only every
`NATIVE_CHECK_EVERY` packets or when the set of tracks changed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import TYPE_CHECKING

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.packet import Packet
from av.stream import Stream

from audio import fastlane, uring
from audio.fastlane import NATIVE_CHECK_EVERY, RtpStream, Wire

if TYPE_CHECKING:
    from audio._lane import Lane

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_PACKETS = 5
"""Per-listener queue bound: 100 ms of audio."""


class PacketTrack(MediaStreamTrack):
    """An outgoing audio track fed with encoded Opus packets (``recv()`` returns `av.Packet`).

    One per peer. The room moves it between the listener `Fanout` and the mixer's per-speaker
    mix-minus stream without touching the sender: all streams share one pts timeline, so the
    RTP timestamps the sender derives stay continuous across the move.
    """

    kind = "audio"

    def __init__(self, *, max_queue: int = DEFAULT_QUEUE_PACKETS) -> None:
        super().__init__()
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._queue: collections.deque[Packet[Stream]] = collections.deque(maxlen=max_queue)
        self._waiter: asyncio.Future[None] | None = None
        self._started = False
        self.sent = 0
        self.dropped = 0
        self.stream: RtpStream | None = None
        """The sender's RTP stream, once the room attached one; the fan-out sends on its fast
        lane when it can."""

    def discard(self) -> None:
        """Forget what is queued (the stream went onto the fast lane: it would come late)."""
        self.dropped += len(self._queue)
        self._queue.clear()

    def push(self, packet: Packet[Stream]) -> bool:
        """Queue a packet without ever blocking; True if the oldest queued one was dropped."""
        if self.readyState != "live":
            return False
        queue = self._queue
        dropped = len(queue) == queue.maxlen
        queue.append(packet)
        if dropped:
            self.dropped += 1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return dropped

    async def recv(self) -> Packet[Stream]:
        """Next packet for aiortc's sender; raises MediaStreamError once the track stops."""
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self._queue:
                break
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        if not self._started:
            # Packets queued before DTLS came up are stale: start from the newest one.
            self._started = True
            while len(self._queue) > 1:
                self._queue.popleft()
        self.sent += 1
        return self._queue.popleft()

    def stop(self) -> None:
        """End the track; a pending ``recv()`` wakes up and raises MediaStreamError."""
        super().stop()
        self._queue.clear()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Fanout:
    """The set of tracks that receive the listener mix; `publish` hands each the same packet."""

    def __init__(self, *, batch_sends: bool = True, native: bool = fastlane.NATIVE) -> None:
        # dict keeps insertion order, so delivery order is stable and predictable.
        self._tracks: dict[PacketTrack, None] = {}
        self.native = native
        """Send on the fast lane with its C loop (`fastlane.native_send`); False, or no C
        loop built: `RtpStream.send` for each listener."""
        self._lanes: list[Lane] = []
        """The C loop's lanes of the tracks on the fast lane, as of the last check."""
        self._queued: list[PacketTrack] = []
        """The other live tracks, as of the last check: their packets go to the queue."""
        self._waiting: list[RtpStream] = []
        """Of those, the streams the fast lane is not open for yet (DTLS still coming up):
        asked every packet, so a listener goes onto it as soon as the Python loop would."""
        self._ticks = 0
        self._stale = True
        """The tracks changed since the last check: the next `publish` checks them."""
        self.fast = 0
        """Listeners served on the fast lane by the last `publish`; the rest queued."""
        self.busy = 0.0
        """Thread CPU seconds spent in `publish` so far (the fan-out's own cost)."""
        self.batch_sends = batch_sends
        """Send each tick's fast-lane datagrams in one io_uring call where the kernel lets
        us (`audio.uring`); False, or no io_uring: one ``sendto`` each."""

    def __len__(self) -> int:
        return len(self._tracks)

    def __contains__(self, track: object) -> bool:
        return track in self._tracks

    def subscribe(self, track: PacketTrack) -> None:
        """Start delivering the listener mix to ``track`` (idempotent)."""
        self._tracks[track] = None
        self._stale = True

    def unsubscribe(self, track: PacketTrack) -> None:
        """Stop delivering to ``track`` (idempotent)."""
        self._tracks.pop(track, None)
        self._stale = True

    def publish(self, packet: Packet[Stream]) -> tuple[int, int]:
        """Give ``packet`` to every live subscriber, on the fast lane where it is open;
        returns (delivered, dropped-oldest).

        Tracks that have ended (their peer closed) are forgotten here, so a vanished listener
        costs nothing after its first missed tick (with the C loop: after its next check).
        """
        started = time.thread_time()
        if self.native and fastlane.NATIVE:
            delivered, dropped = self._publish_native(packet)
        else:
            delivered, dropped = self._publish(packet)
        self.busy += time.thread_time() - started
        return delivered, dropped

    def _publish_native(self, packet: Packet[Stream]) -> tuple[int, int]:
        wire = Wire.of(packet)
        self._ticks += 1
        if (
            self._stale
            or not self._ticks % NATIVE_CHECK_EVERY
            or any(stream.is_fast() for stream in self._waiting)
        ):
            self._check(wire)
        lanes = self._lanes
        if lanes:
            batch = uring.for_this_thread() if self.batch_sends else None
            try:
                if fastlane.native_send(lanes, wire, batch):
                    self._stale = True  # a stream left the fast lane: its track is queued next
            except OSError:
                assert batch is not None, "sendto's failures are counted, never raised"
                self._retire(batch, len(lanes))
        dropped = 0
        for track in self._queued:
            if track.push(packet):
                dropped += 1
        self.fast = len(lanes)
        return len(lanes) + len(self._queued), dropped

    def _check(self, wire: Wire) -> None:
        """Sort the live tracks into those on the fast lane (their C loop lanes, after each
        stream's own checks) and the rest; forget the ended ones."""
        lanes: list[Lane] = []
        queued: list[PacketTrack] = []
        waiting: list[RtpStream] = []
        for track in self._live():
            stream = track.stream
            lane = None if stream is None or not stream.fast else stream.native_lane(wire)
            if lane is not None:
                lanes.append(lane)
                continue
            queued.append(track)
            # Not open yet (DTLS coming up): asked again every packet. One open for which
            # no C lane could be made (an address only sendto writes) is not waiting.
            if stream is not None and stream.fast and not stream.is_fast():
                waiting.append(stream)
        self._lanes, self._queued, self._waiting, self._stale = lanes, queued, waiting, False

    def _live(self) -> list[PacketTrack]:
        """The live tracks; those that ended (their peer closed) are forgotten."""
        live = [track for track in self._tracks if track.readyState == "live"]
        if len(live) != len(self._tracks):
            self._tracks = dict.fromkeys(live)
        return live

    def _publish(self, packet: Packet[Stream]) -> tuple[int, int]:
        """`publish` without the C loop: each fast-lane listener's `RtpStream.send`."""
        self._stale = True  # the C loop's lists are not kept up to date here
        delivered = dropped = fast = 0
        wire: Wire | None = None
        batch: uring.DatagramBatch | None = None
        for track in self._live():
            stream = track.stream
            if stream is not None and stream.fast:
                if wire is None:
                    wire = Wire.of(packet)
                    if self.batch_sends:
                        batch = uring.for_this_thread()
                if stream.send(wire, batch):
                    fast += 1
                    delivered += 1
                    continue
            if track.push(packet):
                dropped += 1
            delivered += 1
        if batch is not None:
            try:
                batch.flush()
            except OSError:
                self._retire(batch, fast)
        self.fast = fast
        return delivered, dropped

    @staticmethod
    def _retire(batch: uring.DatagramBatch, datagrams: int) -> None:
        logger.warning(
            "io_uring failed to send %d datagrams; the fast lane sends with sendto from now on",
            datagrams,
            exc_info=True,
        )
        uring.retire(batch)
