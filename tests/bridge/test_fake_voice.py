"""The bridge against the local fake Discord, voice side included, over real sockets.

discord.py (unmodified) joins a Stage through the fake's gateway, does the voice
handshake over TLS, IP discovery over UDP and negotiates a transport mode; fake users then
speak through the fake UDP endpoint, sealed with that mode. DAVE is off: Stage channels
are exempt from it, and a local fake cannot form DAVE's MLS group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import discord

from audio.bridge import VOICE_KEY, DiscordBridges, VoiceBridge, on_stage
from audio.bridge.speakers import Seat
from audio.fanout import PacketTrack
from audio.jitter import JitterBuffer
from audio.registry import RoomRegistry
from audio.room import Room
from tests.bridge.playout import (
    drain,
    handled,
    heard_from_discord,
    played_out,
    reached_discord,
    speak_into,
)
from tests.bridge.tones import decode_all, dominant, opus_tone, power
from tests.discord.fake_discord import STAGE, Channel, FakeDiscord, Guild, Member
from tests.discord.fake_discord.voice import FakeVoice
from tests.waiting import PATIENCE

ALICE_TONE, BOB_TONE, ROOM_TONE = 660.0, 1000.0, 440.0
TONES = (ALICE_TONE, BOB_TONE, ROOM_TONE)


@dataclass
class World:
    fake: FakeDiscord
    voice: FakeVoice
    guild: Guild
    stage: Channel
    alice: Member
    bob: Member
    room: Room
    bridge: VoiceBridge
    listener: PacketTrack
    rooms: RoomRegistry
    channel: discord.StageChannel


@contextlib.asynccontextmanager
async def world(
    *,
    bridged: bool = True,
    join_timeout: float = 10.0,
    stall_timeout: float = 2.0,
    check_interval: float = 0.25,
) -> AsyncIterator[World]:
    """A fake Discord with a Stage (alice speaks, bob listens), a room, and the bridge
    running between them; the timeouts go to `VoiceBridge`."""
    async with FakeDiscord() as fake, FakeVoice(fake) as voice, RoomRegistry() as rooms:
        with fake.installed():
            guild = fake.add_guild("HQ")
            stage = fake.add_channel(guild, "Stage", STAGE)
            alice, bob = fake.add_member(guild, "alice"), fake.add_member(guild, "bob")
            client = discord.Client(
                intents=discord.Intents(guilds=True, voice_states=True),
                connector=voice.connector(),
            )
            runner = asyncio.create_task(client.start(fake.token), name="test-discord-client")
            stop = asyncio.Event()
            bridging: asyncio.Task[None] | None = None
            try:
                await fake.until(lambda: client.is_ready() and client.get_guild(guild.id))
                await fake.join_voice(guild, alice, stage)
                await fake.join_voice(guild, bob, stage)
                await fake.set_suppress(guild, alice, False)  # alice speaks, bob listens
                channel = client.get_channel(stage.id)
                assert isinstance(channel, discord.StageChannel)
                await fake.until(lambda: alice.user.id in channel.voice_states)
                room = await rooms.open(1)
                bridge = VoiceBridge(
                    room,
                    on_stage(channel),
                    join_timeout=join_timeout,
                    stall_timeout=stall_timeout,
                    check_interval=check_interval,
                )
                if bridged:
                    bridging = asyncio.create_task(bridge.run(channel, stop), name="test-bridge")
                    await fake.until(
                        lambda: bridge.playing and voice.bot_address is not None, what="voice"
                    )
                listener = PacketTrack(max_queue=500)
                room._mixer.listeners.subscribe(listener)
                yield World(
                    fake, voice, guild, stage, alice, bob, room, bridge, listener, rooms, channel
                )
            finally:
                stop.set()
                if bridging is not None:
                    await bridging
                await client.close()
                await runner


async def test_discord_speaker_is_heard_in_the_room_and_suppressed_member_is_not() -> None:
    async with world() as w:
        assert (
            w.voice.session is not None
            and w.voice.session.mode == "aead_xchacha20_poly1305_rtpsize"
        )  # discord.py has no AES-GCM
        count = handled(w.bridge) + 100
        await asyncio.gather(
            w.voice.speak_as(w.alice, 111, opus_tone(ALICE_TONE, 50)),
            w.voice.speak_as(w.bob, 222, opus_tone(BOB_TONE, 50)),
        )
        await heard_from_discord(w.bridge, count)
        heard = drain(w.listener)
        assert len(heard) > 30 * 1920
        assert dominant(heard, TONES) == ALICE_TONE
        assert power(heard, BOB_TONE) < power(heard, ALICE_TONE) / 1000
        assert w.bridge.receiver.stats.undecryptable == 0


async def test_room_tone_reaches_discord_as_opus_without_discord_echo() -> None:
    async with world() as w:
        browser = JitterBuffer()
        w.room._mixer.add_voice("browser", browser, PacketTrack(max_queue=500))
        w.voice.bot_packets.clear()
        count = handled(w.bridge) + 50
        await asyncio.gather(
            speak_into(browser, ROOM_TONE, 50),
            w.voice.speak_as(w.alice, 111, opus_tone(ALICE_TONE, 50)),
        )
        await heard_from_discord(w.bridge, count)
        await played_out(browser, what="the browser's packets played out")
        await reached_discord(w.channel.guild, w.voice)
        payloads = [body for _, body in w.voice.bot_packets]
        assert w.voice.undecryptable == 0
        assert len(payloads) >= 40 and all(payloads)
        sound = decode_all([p for p in payloads if p != b"\xf8\xff\xfe"])
        assert dominant(sound, TONES) == ROOM_TONE
        assert power(sound, ALICE_TONE) < power(sound, ROOM_TONE) / 1000  # nobody's echo
        assert w.room._mixer.has_voice(VOICE_KEY)


async def test_bridge_recovers_from_a_forced_voice_disconnect() -> None:
    """Back long before discord.py's connect timeout (here far beyond the test's patience)
    could end: by discord.py's resume, or else by the bridge's own stall check."""
    async with world(join_timeout=10 * PATIENCE) as w:
        await w.voice.kick(4015)
        await w.fake.until(
            lambda: (
                w.voice.resumes + w.voice.identifies > 1
                and w.bridge.connected
                and w.voice.session is not None
                and bool(w.voice.session.key)
            ),
            what="the bridge back with a session key",
        )
        w.listener._queue.clear()
        count = handled(w.bridge) + 25
        await w.voice.speak_as(w.alice, 111, opus_tone(ALICE_TONE, 25))
        await heard_from_discord(w.bridge, count)
        assert dominant(drain(w.listener), TONES) == ALICE_TONE


async def test_bridge_rejoins_after_being_disconnected() -> None:
    """At its next check, not after a connect timeout (here beyond the test's patience)."""
    async with world(join_timeout=10 * PATIENCE) as w:
        identifies = w.voice.identifies
        await w.voice.disconnect_bot(w.guild)
        await w.fake.until(lambda: w.voice.identifies > identifies and w.bridge.connected)
        await w.fake.until(lambda: w.voice.bot_address is not None)
        w.listener._queue.clear()
        count = handled(w.bridge) + 25
        await w.voice.speak_as(w.alice, 333, opus_tone(ALICE_TONE, 25))
        await heard_from_discord(w.bridge, count)
        assert dominant(drain(w.listener), TONES) == ALICE_TONE


async def _everyone(space_id: int, member: discord.Member) -> Seat:
    return Seat(admitted=True)


async def test_bridges_start_and_stop_per_space() -> None:
    async with world(bridged=False) as w:
        bridges = DiscordBridges(w.rooms)
        bridges.seats = _everyone  # what the Discord adapter sets: the Space's rule
        bridge = await bridges.start(w.room.space_id, w.channel)
        assert await bridges.start(w.room.space_id, w.channel) is bridge
        await w.fake.until(lambda: bridge.playing and w.voice.bot_address is not None)
        assert w.room._mixer.has_voice(VOICE_KEY)
        count = handled(bridge) + 25
        await w.voice.speak_as(w.alice, 111, opus_tone(ALICE_TONE, 25))
        await heard_from_discord(bridge, count)
        assert dominant(drain(w.listener), TONES) == ALICE_TONE
        assert await bridges.stop(w.room.space_id)
        assert not w.room._mixer.has_voice(VOICE_KEY)
        assert w.channel.guild.voice_client is None
        assert not await bridges.stop(w.room.space_id)
        await bridges.aclose()
