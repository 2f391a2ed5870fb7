"""The shared-encode fan-out: one packet object for every listener, slow listeners shed
their own oldest packets and never hold the publisher back."""

from __future__ import annotations

import asyncio
import fractions

import pytest
from aiortc.mediastreams import MediaStreamError
from av.packet import Packet
from av.stream import Stream

from audio.fanout import Fanout, PacketTrack


def packet(n: int) -> Packet[Stream]:
    p = Packet(bytes([0x78, n % 256]))
    p.pts = n * 960
    p.time_base = fractions.Fraction(1, 48_000)
    return p


async def test_every_listener_gets_the_same_packet_object() -> None:
    fanout = Fanout()
    tracks = [PacketTrack() for _ in range(3)]
    for track in tracks:
        fanout.subscribe(track)
    sent = packet(1)
    assert fanout.publish(sent) == (3, 0)
    for track in tracks:
        assert await track.recv() is sent


async def test_slow_listener_drops_its_oldest_packets_without_blocking_others() -> None:
    fanout = Fanout()
    slow, fast = PacketTrack(max_queue=3), PacketTrack(max_queue=3)
    fanout.subscribe(slow)
    fanout.subscribe(fast)
    dropped = 0
    for n in range(10):
        _, lost = fanout.publish(packet(n))
        dropped += lost
        assert (await fast.recv()).pts == n * 960
    assert dropped == 7
    assert slow.dropped == 7
    # The first recv() starts from the newest packet (stale backlog is not worth sending).
    assert (await slow.recv()).pts == 9 * 960


async def test_recv_waits_for_a_packet_and_stop_wakes_it() -> None:
    track = PacketTrack()
    waiting = asyncio.create_task(track.recv())
    await asyncio.sleep(0)
    assert not waiting.done()
    assert not track.push(packet(1))
    assert (await waiting).pts == 960

    waiting = asyncio.create_task(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await waiting


async def test_ended_tracks_are_forgotten_by_the_fanout() -> None:
    fanout = Fanout()
    track = PacketTrack()
    fanout.subscribe(track)
    track.stop()
    assert fanout.publish(packet(1)) == (0, 0)
    assert len(fanout) == 0
