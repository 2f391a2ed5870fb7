"""The bridge in a DAVE (end-to-end encrypted) voice channel, discord.py negotiating for real.

discord.py (unmodified, with davey) joins a voice channel of the local fake Discord, whose
voice gateway answers SELECT_PROTOCOL with DAVE protocol version 1 and then runs the MLS
group as Discord does (`tests.discord.fake_discord.dave.DaveGateway`): the bot's key package,
the external sender's Add proposal, a fake user's commit, the welcome, transition ready
and execute. Fake users with their own davey sessions then speak through the fake UDP
endpoint, DAVE-encrypted and transport-sealed; the room hears them through the bridge,
also after the epoch changes (someone joins, someone leaves), after a voice resume and
after the bot is disconnected and joins again. The bot's own audio is DAVE-encrypted by
discord.py and opened by a fake user's session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import davey
import discord

from audio.bridge import BridgeVoiceClient, VoiceBridge, on_stage
from audio.bridge.source import OPUS_SILENCE
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
from tests.bridge.tones import decode_all, dominant, opus_tone
from tests.discord.fake_discord import Channel, FakeDiscord, Guild, Member
from tests.discord.fake_discord.dave import DaveGateway
from tests.discord.fake_discord.state import VOICE
from tests.discord.fake_discord.voice import FakeVoice

ALICE_TONE, CAROL_TONE, ROOM_TONE = 660.0, 1000.0, 440.0
TONES = (ALICE_TONE, CAROL_TONE, ROOM_TONE)


async def anyone_speaks(member: discord.Member) -> Seat:
    """The Space lets everyone in the voice channel speak."""
    return Seat(admitted=True, may_speak=True)


@dataclass
class World:
    fake: FakeDiscord
    voice: FakeVoice
    guild: Guild
    place: Channel
    alice: Member
    bob: Member
    carol: Member
    room: Room
    bridge: VoiceBridge
    listener: PacketTrack
    channel: discord.VoiceChannel

    @property
    def dave(self) -> DaveGateway:
        assert self.voice.dave is not None
        return self.voice.dave

    def bot_session(self) -> davey.DaveSession | None:
        client = self.channel.guild.voice_client
        return client.dave_session() if isinstance(client, BridgeVoiceClient) else None

    def bot_in_epoch(self) -> bool:
        """The bot is a member of the group in the gateway's current epoch, ready to decrypt."""
        session = self.bot_session()
        return (
            session is not None
            and session.ready
            and self.fake.bot.id in self.dave.members
            and session.epoch == self.dave.epoch
        )

    async def hear(self, member: Member, ssrc: int, tone: float, frames: int = 25) -> bytes:
        """``member`` speaks ``frames`` frames of ``tone``; what the room's listener got."""
        stats = self.bridge.receiver.stats
        count, failed = handled(self.bridge) + frames, stats.dave_failed
        self.listener._queue.clear()
        await self.voice.speak_as(member, ssrc, opus_tone(tone, frames))
        await heard_from_discord(self.bridge, count)
        assert stats.dave_failed == failed, "a DAVE frame failed to decrypt"
        return drain(self.listener)


@contextlib.asynccontextmanager
async def world() -> AsyncIterator[World]:
    async with (
        FakeDiscord() as fake,
        FakeVoice(fake, dave=True) as voice,
        RoomRegistry() as rooms,
    ):
        with fake.installed():
            guild = fake.add_guild("HQ")
            place = fake.add_channel(guild, "Lounge", VOICE)
            alice, bob, carol = (fake.add_member(guild, n) for n in ("alice", "bob", "carol"))
            client = discord.Client(
                intents=discord.Intents(guilds=True, voice_states=True, members=True),
                connector=voice.connector(),
            )
            runner = asyncio.create_task(client.start(fake.token), name="test-discord-client")
            stop = asyncio.Event()
            bridging: asyncio.Task[None] | None = None
            try:
                await fake.until(lambda: client.is_ready() and client.get_guild(guild.id))
                for member in (alice, bob):  # in the call, end to end encrypted, before the bot
                    await fake.join_voice(guild, member, place)
                    await voice.dave_join(member, place.id)
                channel = client.get_channel(place.id)
                assert isinstance(channel, discord.VoiceChannel)
                await fake.until(lambda: alice.user.id in channel.voice_states)
                room = await rooms.open(1)
                bridge = VoiceBridge(room, on_stage(channel), seats=anyone_speaks)
                bridging = asyncio.create_task(bridge.run(channel, stop), name="test-bridge")
                listener = PacketTrack(max_queue=500)
                room._mixer.listeners.subscribe(listener)
                w = World(
                    fake, voice, guild, place, alice, bob, carol, room, bridge, listener, channel
                )
                await fake.until(
                    lambda: bridge.playing and voice.bot_address is not None, what="voice"
                )
                await fake.until(w.bot_in_epoch, what="the bot in the DAVE group")
                yield w
                assert w.dave.errors == [] and w.dave.invalid == []
            finally:
                stop.set()
                if bridging is not None:
                    await bridging
                await client.close()
                await runner


async def test_discordpy_negotiates_dave_and_the_room_hears_the_encrypted_speaker() -> None:
    async with world() as w:
        session = w.bot_session()
        assert session is not None and w.voice.session is not None and w.voice.session.dave
        assert sorted(w.dave.members) == sorted([w.alice.user.id, w.bob.user.id, w.fake.bot.id])
        assert session.own_leaf_index == w.dave.leaf_of(w.fake.bot.id)
        assert w.dave.executed  # the bot said it was ready; the transition was executed
        heard = await w.hear(w.alice, 111, ALICE_TONE, 50)
        assert len(heard) > 30 * 1920
        assert dominant(heard, TONES) == ALICE_TONE
        assert w.bridge.receiver.stats.undecryptable == 0


async def test_the_bots_audio_is_end_to_end_encrypted_and_opens_for_discord_users() -> None:
    async with world() as w:
        browser = JitterBuffer()
        w.room._mixer.add_voice("browser", browser, PacketTrack(max_queue=500))
        w.voice.bot_packets.clear()
        w.voice.undecryptable = 0
        await speak_into(browser, ROOM_TONE, 50)
        await played_out(browser, what="the browser's packets played out")
        await reached_discord(w.channel.guild, w.voice)
        assert len(w.voice.bot_packets) >= 40
        assert w.voice.undecryptable == 0  # every packet opened with alice's DAVE session
        sound = decode_all([body for _, body in w.voice.bot_packets if body != OPUS_SILENCE])
        assert dominant(sound, TONES) == ROOM_TONE


async def test_epoch_changes_while_bridged_keep_the_room_hearing() -> None:
    async with world() as w:
        epoch = w.dave.epoch
        # Carol joins the call: add, commit, welcome; the bot moves to the new epoch.
        await w.fake.join_voice(w.guild, w.carol, w.place)
        await w.voice.dave_join(w.carol, w.place.id)
        assert w.dave.epoch == epoch + 1
        await w.fake.until(w.bot_in_epoch, what="the bot in carol's epoch")
        assert dominant(await w.hear(w.carol, 333, CAROL_TONE), TONES) == CAROL_TONE
        assert dominant(await w.hear(w.alice, 111, ALICE_TONE), TONES) == ALICE_TONE
        # Bob leaves: a Remove proposal; the bot, alice and carol race to commit it.
        await w.voice.dave_leave(w.bob)
        await w.fake.until(lambda: w.dave.epoch == epoch + 2, what="bob's removal")
        await w.fake.until(w.bot_in_epoch, what="the bot after bob left")
        assert w.bob.user.id not in w.dave.members
        assert dominant(await w.hear(w.alice, 111, ALICE_TONE), TONES) == ALICE_TONE


async def test_the_bot_is_welcomed_again_after_voice_reconnects() -> None:
    async with world() as w:
        # The voice server drops the socket (4015); discord.py's resume waits for a voice
        # server update that does not come, so the bridge joins again after its stall
        # timeout: the gateway removes the old leaf and welcomes the new key package.
        connections, epoch = w.voice.resumes + w.voice.identifies, w.dave.epoch
        await w.voice.kick(4015)
        await w.fake.until(lambda: w.voice.resumes + w.voice.identifies > connections, what="back")
        await w.fake.until(w.bot_in_epoch, what="the bot back in the group")
        assert w.dave.epoch > epoch
        assert dominant(await w.hear(w.alice, 111, ALICE_TONE), TONES) == ALICE_TONE
        # A moderator disconnects the bot: it joins again, as a new member of the group.
        identifies, epoch = w.voice.identifies, w.dave.epoch
        await w.voice.disconnect_bot(w.guild)
        await w.fake.until(lambda: w.voice.identifies > identifies, what="a rejoin")
        await w.fake.until(lambda: w.dave.epoch > epoch and w.bot_in_epoch())
        await w.fake.until(lambda: w.voice.bot_address is not None)
        assert sorted(w.dave.members) == sorted([w.alice.user.id, w.bob.user.id, w.fake.bot.id])
        assert dominant(await w.hear(w.alice, 111, ALICE_TONE), TONES) == ALICE_TONE
