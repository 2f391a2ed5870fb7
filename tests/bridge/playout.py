"""Waiting for audio to come out of the room: on what was sent, never for a fixed time.

The fakes speak in real time (a packet per 20 ms) because the code under test runs on the
event loop's clock: the mixer pulls every jitter buffer once per 20 ms tick, and a buffer
fed faster than that skips ahead. What a test waits for afterwards is that every packet
sent has been played out (the mixer publishes a frame in the tick that pops it), with the
generous deadline of `tests.waiting.eventually`.
"""

from __future__ import annotations

import asyncio
import struct

import discord

from audio.bridge import VOICE_KEY, VoiceBridge
from audio.bridge.source import MAX_QUEUED
from audio.fanout import PacketTrack
from audio.jitter import JitterBuffer
from audio.room import Room
from tests.bridge.tones import decode_all, opus_tone
from tests.discord.fake_discord.voice import FakeVoice
from tests.waiting import eventually


def handled(bridge: VoiceBridge) -> int:
    """Packets the bridge has taken from Discord (the first of a stream may beat SPEAKING
    to the bot and count as an unknown SSRC)."""
    stats = bridge.receiver.stats
    return stats.packets + stats.unknown_ssrc


async def speak_into(buffer: JitterBuffer, tone: float, frames: int) -> None:
    """Put `frames` Opus packets of `tone` into `buffer` (a browser speaker's) at a live
    stream's pace: the mixer plays in real time."""
    loop = asyncio.get_running_loop()
    for i, payload in enumerate(opus_tone(tone, frames)):
        buffer.put(i, i * 960, payload, loop.time())
        await asyncio.sleep(0.020)


def drain(track: PacketTrack) -> bytes:
    """What a listener's track holds, decoded to PCM (and taken out of it)."""
    return decode_all([bytes(track._queue.popleft()) for _ in range(len(track._queue))])


async def played_out(*buffers: JitterBuffer, what: str) -> None:
    """Wait until every packet put into `buffers` has been played out by the mixer."""
    await eventually(lambda: all(b.buffered == 0 for b in buffers), what=what)


async def heard_from_discord(bridge: VoiceBridge, count: int) -> None:
    """Wait until the bridge has taken `count` packets from Discord in all and the room's
    mixer has played every one of them."""
    await eventually(lambda: handled(bridge) >= count, what=f"{count} packets at the bridge")
    await played_out(bridge.inbound, what="the Discord speakers' packets played out")


async def discord_quiet(room: Room) -> None:
    """Wait until the room hears nothing from Discord any more (its meter has decayed to
    0, after some 40 ticks of silence)."""
    mixer = room._mixer
    await eventually(
        lambda: mixer.levels().get(VOICE_KEY, 0.0) == 0.0, what="Discord quiet in the room"
    )


async def reached_discord(guild: discord.Guild, voice: FakeVoice) -> None:
    """Wait until everything the room's mixer has handed the bot so far has reached the
    fake voice server: the player takes at most `MAX_QUEUED` more frames from the queue
    (plus one it may be sending now), so a later RTP sequence number arriving means all
    of them have (loopback UDP keeps the order)."""
    client = guild.voice_client
    assert isinstance(client, discord.VoiceClient)
    last = (client.sequence + 1 + MAX_QUEUED) % 65536

    def arrived() -> bool:
        if not voice.bot_packets:
            return False
        sequence: int = struct.unpack_from(">H", voice.bot_packets[-1][0], 2)[0]
        return (sequence - last) % 65536 < 32768

    await eventually(arrived, what="the room's audio at the fake Discord")
