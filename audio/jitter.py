"""Our playout buffer for one incoming Opus RTP stream.

aiortc's receiver keeps a fixed 16-packet buffer released after 4 packets, and after a single
lost packet it stalls and then stays ~280 ms behind (DESIGN.md, "Audio"). A room mixes several
speakers on one 20 ms clock, so a speaker who falls behind stays behind for everyone. This
buffer is pulled once per mixer tick and never waits for a missing packet past its slot:

* packets are put in by RTP sequence number (16-bit, unwrapped), so reordering inside the
  window is repaired and duplicates are ignored;
* playout starts once ``target_frames`` packets are buffered; each `pop` returns the packet
  for the current slot, or `Slot.LOST` when a later packet is already here (the caller
  conceals with Opus PLC and playout moves on), or `Slot.LOST` without moving on when the
  buffer ran dry (a short "expand", at most ``max_expand`` frames) before going idle;
* a packet whose slot has passed is dropped as late and raises the target a little;
* the target delay adapts between ``min_delay`` and ``max_delay`` from the RFC 3550
  inter-arrival jitter estimate, and extra buffered audio (after an expand, or sender clock
  drift) is skipped a frame at a time, so the delay stays bounded.

The buffer does no I/O and reads no clock: arrival times are passed in, which keeps it
deterministic under test. It is not thread-safe; use it from the event loop only.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final, Literal

FRAME_SECONDS: Final = 0.020
"""Packet duration the buffer assumes: browsers and aiortc send 20 ms Opus packets."""

_TALKSPURT_GAP: Final = 0.25
"""Arrival gaps longer than this start a new talk spurt for the jitter estimate."""


class Slot(enum.Enum):
    """Marker returned by `JitterBuffer.pop` instead of a payload."""

    LOST = "lost"
    """Nothing to play for this slot: conceal one frame."""


Playout = bytes | Literal[Slot.LOST] | None
"""What `JitterBuffer.pop` returns: a payload, a frame to conceal, or None (nothing to mix)."""


class PutResult(enum.Enum):
    """What `JitterBuffer.put` did with a packet, so the caller can count it."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    LATE = "late"
    RESYNC = "resync"


@dataclass(slots=True)
class JitterStats:
    """Counters since creation (not reset by `JitterBuffer.reset`)."""

    received: int = 0
    played: int = 0
    lost: int = 0
    """Slots concealed because their packet had not arrived when a later one had."""
    late: int = 0
    """Packets dropped because their slot had already been played or concealed."""
    duplicates: int = 0
    expanded: int = 0
    """Frames concealed while the buffer was empty, holding the playout point."""
    accelerated: int = 0
    """Packets skipped to bring the delay back down to the target."""
    overflow: int = 0
    resyncs: int = 0


class JitterBuffer:
    """Reorders one Opus RTP stream and releases one packet per 20 ms pull.

    Delay model: with ``D = target_frames`` the packet played at a tick arrived between
    ``(D - 1) * 20 ms`` and ``D * 20 ms`` earlier, so the defaults (40-60 ms target) give a
    buffer delay of 40-60 ms on a clean network and up to 80 ms on a jittery one.
    """

    def __init__(
        self,
        *,
        min_delay: float = 0.040,
        max_delay: float = 0.060,
        max_expand: int = 3,
        max_excess: int = 5,
        accelerate_after: int = 25,
        capacity: int = 64,
        clock_rate: int = 48_000,
    ) -> None:
        if not 0 < min_delay <= max_delay:
            raise ValueError("need 0 < min_delay <= max_delay")
        self._min_delay = min_delay
        self._max_delay = max_delay
        self._max_expand = max_expand
        self._max_excess = max_excess
        self._accelerate_after = accelerate_after
        self._capacity = capacity
        self._clock_rate = clock_rate
        self.stats = JitterStats()
        self._jitter = 0.0
        self._penalty = 0.0
        self._packets: dict[int, bytes] = {}
        self._highest: int | None = None
        self._next: int | None = None
        self._primed = False
        self._expands = 0
        self._excess_pops = 0
        self._last_timestamp: int | None = None
        self._last_arrival: float | None = None

    # -- inspection ---------------------------------------------------------------------

    @property
    def jitter(self) -> float:
        """RFC 3550 inter-arrival jitter estimate, in seconds."""
        return self._jitter

    @property
    def target_delay(self) -> float:
        """Current target buffer delay in seconds, within [min_delay, max_delay]."""
        wanted = self._min_delay + 3.0 * self._jitter + self._penalty
        return min(self._max_delay, max(self._min_delay, wanted))

    @property
    def target_frames(self) -> int:
        """Frames held (including the one about to play) when playout is on target."""
        return math.floor(self.target_delay / FRAME_SECONDS + 1e-9) + 1

    @property
    def depth(self) -> int:
        """Frames from the playout point to the newest packet received (0 when idle)."""
        if not self._primed or self._next is None or self._highest is None:
            return 0
        return max(0, self._highest - self._next + 1)

    @property
    def buffered(self) -> int:
        """Packets stored and not yet played out (0 once everything received has played)."""
        return len(self._packets)

    @property
    def playing(self) -> bool:
        """True once primed and until the stream goes idle."""
        return self._primed

    # -- input --------------------------------------------------------------------------

    def put(
        self, sequence_number: int, timestamp: int, payload: bytes, arrival: float
    ) -> PutResult:
        """Store one packet that arrived at ``arrival`` (seconds, any monotonic clock)."""
        result = PutResult.STORED
        ext = self._unwrap(sequence_number)
        if self._highest is not None and abs(ext - self._highest) > 4 * self._capacity:
            # The sender restarted or jumped far (new SSRC state, long pause with a seq jump):
            # nothing buffered can be played in order with it any more.
            self._restart()
            self.stats.resyncs += 1
            ext = self._unwrap(sequence_number)
            result = PutResult.RESYNC
        if self._next is not None and ext < self._next:
            self.stats.late += 1
            self._penalty = min(self._max_delay, self._penalty + FRAME_SECONDS)
            return PutResult.LATE
        if ext in self._packets:
            self.stats.duplicates += 1
            return PutResult.DUPLICATE
        self._packets[ext] = payload
        self.stats.received += 1
        self._update_jitter(timestamp, arrival)
        if self._highest is None or ext > self._highest:
            self._highest = ext
        while len(self._packets) > self._capacity:
            oldest = min(self._packets)
            del self._packets[oldest]
            self.stats.overflow += 1
            if self._next is not None and oldest >= self._next:
                self._next = oldest + 1
        return result

    def reset(self) -> None:
        """Forget buffered packets and playout position (e.g. when a speaker is re-mixed).

        Stats and the jitter estimate survive: they describe the network, not the talk spurt.
        """
        self._restart()

    # -- output -------------------------------------------------------------------------

    def pop(self) -> Playout:
        """Release what to play for the current 20 ms slot. Call exactly once per tick."""
        self._penalty = max(0.0, self._penalty - FRAME_SECONDS / 500)
        target = self.target_frames
        if not self._primed and not self._prime(target):
            return None
        assert self._next is not None and self._highest is not None
        depth = self._highest - self._next + 1
        if depth > target + self._max_excess:
            self._skip_to(self._highest - target + 1)
        elif depth > target:
            self._excess_pops += 1
            if self._excess_pops >= self._accelerate_after:
                self._skip_to(self._next + 1)
        else:
            self._excess_pops = 0

        payload = self._packets.pop(self._next, None)
        if payload is not None:
            self._next += 1
            self._expands = 0
            self.stats.played += 1
            return payload
        if self._highest >= self._next:
            # A later packet is here, so this one missed its slot: conceal and move on.
            self._next += 1
            self._expands = 0
            self.stats.lost += 1
            return Slot.LOST
        if self._expands < self._max_expand:
            # Ran dry: conceal without moving the playout point, the packet may be just late.
            self._expands += 1
            self.stats.expanded += 1
            return Slot.LOST
        # The stream paused (DTX, mute, network gone). Go idle; keep _next as the floor so
        # stragglers from before the pause are still dropped as late.
        self._primed = False
        self._expands = 0
        return None

    # -- internals ----------------------------------------------------------------------

    def _prime(self, target: int) -> bool:
        if not self._packets or self._highest is None:
            return False
        first = min(self._packets)
        if self._highest - first + 1 < target:
            return False
        if self._next is not None and first > self._next:
            # Restarting after going idle: the sequence gap was lost, not paused (a pausing
            # sender keeps its sequence numbers contiguous).
            self.stats.lost += first - self._next
        self._primed = True
        self._next = first
        self._expands = 0
        self._excess_pops = 0
        return True

    def _skip_to(self, new_next: int) -> None:
        assert self._next is not None
        for seq in range(self._next, new_next):
            if self._packets.pop(seq, None) is not None:
                self.stats.accelerated += 1
        self._next = new_next
        self._excess_pops = 0

    def _restart(self) -> None:
        self._packets.clear()
        self._highest = None
        self._next = None
        self._primed = False
        self._expands = 0
        self._excess_pops = 0
        self._last_timestamp = None
        self._last_arrival = None

    def _unwrap(self, sequence_number: int) -> int:
        seq = sequence_number & 0xFFFF
        if self._highest is None:
            # Start one wrap up so reordered packets from before the first one stay positive.
            return seq + 0x10000
        delta = ((seq - self._highest) + 0x8000) % 0x10000 - 0x8000
        return self._highest + delta

    def _update_jitter(self, timestamp: int, arrival: float) -> None:
        # RFC 3550 A.8 with 32-bit timestamp differences, so wraparound is harmless.
        if (
            self._last_timestamp is None
            or self._last_arrival is None
            or arrival - self._last_arrival > _TALKSPURT_GAP
        ):
            # First packet, or a new talk spurt after a pause: nothing to compare with.
            self._last_timestamp = timestamp
            self._last_arrival = arrival
            return
        ts_delta = ((timestamp - self._last_timestamp + 0x80000000) % 0x100000000) - 0x80000000
        transit_delta = (arrival - self._last_arrival) - ts_delta / self._clock_rate
        # Clamp so one pause (a muted browser that stops timestamps) cannot pin the target.
        self._jitter += (min(abs(transit_delta), 0.2) - self._jitter) / 16.0
        self._last_timestamp = timestamp
        self._last_arrival = arrival
