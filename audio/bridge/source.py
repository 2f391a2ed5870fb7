"""Room → Discord: the room's mix without Discord, as a `discord.AudioSource` of Opus packets.

The mixer pushes the Discord voice's mix-minus into `DiscordOutbound` on the event loop
every 20 ms; discord.py's player thread pulls `RoomSource.read()` on its own 20 ms clock.
The two clocks drift, so the queue is short and trimmed from the front (latency stays
bounded), and an empty queue yields an Opus silence frame: empty bytes would end playback.
"""

from __future__ import annotations

import collections
from typing import Final

import discord
from av.packet import Packet
from av.stream import Stream

from audio.fanout import PacketTrack

OPUS_SILENCE: Final = b"\xf8\xff\xfe"
"""One 20 ms Opus silence frame (the one discord.py itself sends)."""

MAX_QUEUED: Final = 3
"""Packets allowed to wait for the player (60 ms); older ones are dropped."""


class DiscordOutbound(PacketTrack):
    """The Discord voice's outbound track: a thread-safe queue of Opus payloads.

    ``deque.append`` and ``popleft`` are atomic, so the mixer (event loop) and the player
    (its own thread) need no lock.
    """

    def __init__(self, *, max_queue: int = MAX_QUEUED) -> None:
        super().__init__(max_queue=max_queue)
        self._frames: collections.deque[bytes] = collections.deque(maxlen=max_queue)

    def push(self, packet: Packet[Stream]) -> bool:
        if self.readyState != "live":
            return False
        dropped = len(self._frames) == self._frames.maxlen
        self._frames.append(bytes(packet))
        if dropped:
            self.dropped += 1
        return dropped

    def take(self) -> bytes | None:
        """The oldest waiting payload, or None (player thread)."""
        try:
            payload = self._frames.popleft()
        except IndexError:
            return None
        self.sent += 1
        return payload

    def stop(self) -> None:
        super().stop()
        self._frames.clear()


class RoomSource(discord.AudioSource):
    """What the bot plays into the channel: one Opus packet per `read()`, never empty."""

    def __init__(self, outbound: DiscordOutbound) -> None:
        self.outbound = outbound
        self.silences = 0

    def is_opus(self) -> bool:
        return True

    def read(self) -> bytes:
        payload = self.outbound.take()
        if payload is None:
            self.silences += 1
            return OPUS_SILENCE
        return payload

    def cleanup(self) -> None:
        """discord.py calls this when playback ends; the bridge owns the track's lifetime."""
