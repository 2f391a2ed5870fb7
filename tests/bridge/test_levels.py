"""Discord users' levels in the room's state: measured per user from the decoded audio the
bridge mixes, with the mixer's own meter, and shown only for users who are mixed.

A real `Room` (its mixer stepped by hand) and a real `VoiceBridge` attached to it; the
channel is a stand-in with just what the `Roster` reads. Fake users' Opus packets go
straight into the bridge's per-user jitter buffers (the receive path has its own tests).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from audio.bridge import VOICE_KEY, VoiceBridge, rtp
from audio.bridge.receive import DiscordVoices, Received
from audio.bridge.speakers import Seat
from audio.fanout import PacketTrack
from audio.mixer import SPEAKING_LEVEL, Mixer
from audio.opus import FRAME_SAMPLES, OpusEncoder
from audio.room import ParticipantState, Room
from tests.bridge.tones import opus_tone, tone

GUILD = 7
ALICE, BOB, CAROL = 11, 22, 33
"""Alice speaks a tone; Bob too, but Discord does not let him speak (suppressed); Carol is
admitted and sends digital silence."""
NAMES = {ALICE: "alice", BOB: "bob", CAROL: "carol"}


def opus_silence(frames: int) -> list[bytes]:
    encoder = OpusEncoder(bitrate=64_000, fec=False)
    return [
        bytes(p)
        for i, pcm in enumerate(tone(440.0, frames, amplitude=0.0))
        for p in encoder.encode(pcm, i * FRAME_SAMPLES)
    ]


def channel_of(*user_ids: int) -> Any:
    """What the `Roster` reads of a voice channel: voice states, and the guild's members."""
    channel = SimpleNamespace(id=1234, voice_states={})
    members = {
        user_id: SimpleNamespace(bot=False, display_name=NAMES[user_id]) for user_id in user_ids
    }
    channel.guild = SimpleNamespace(id=GUILD, get_member=members.get)
    channel.voice_states = {
        user_id: SimpleNamespace(channel=channel, suppress=False, mute=False)
        for user_id in user_ids
    }
    return channel


async def may_speak(member: Any) -> Seat:
    return Seat(admitted=True, may_speak=True)


def key(user_id: int) -> str:
    return f"discord:{GUILD}:{user_id}"


class Bridged:
    def __init__(self, room: Room, discord_admits: set[int]) -> None:
        self.room = room
        self.bridge = VoiceBridge(room, discord_admits.__contains__, seats=may_speak)
        self.clock = 0.0
        self.sequences: dict[int, int] = {}

    def send(self, user_id: int, payload: bytes) -> None:
        sequence = self.sequences.get(user_id, 0)
        self.sequences[user_id] = sequence + 1
        packet = rtp.RtpPacket(
            sequence=sequence, timestamp=sequence * FRAME_SAMPLES, ssrc=user_id, payload=payload
        )
        self.bridge.inbound.put_received(Received(user_id, packet), self.clock)

    def tick(self) -> None:
        self.clock += 0.020
        self.room._mixer.step()

    def seen(self, user_id: int) -> ParticipantState:
        (found,) = [p for p in self.room.state().participants if p.identity_key == key(user_id)]
        return found


async def test_a_discord_user_speaking_shows_as_speaking_and_others_do_not(room: Room) -> None:
    h = Bridged(room, discord_admits={ALICE, CAROL})
    h.bridge.attach()
    await h.bridge.follow(channel_of(ALICE, BOB, CAROL))
    assert all(h.seen(u).role == "speaker" for u in (ALICE, BOB, CAROL))
    assert not any(h.seen(u).speaking for u in (ALICE, BOB, CAROL))

    frames = zip(opus_tone(660.0, 25), opus_tone(1000.0, 25), opus_silence(25), strict=True)
    for to_alice, to_bob, to_carol in frames:
        h.send(ALICE, to_alice)
        h.send(BOB, to_bob)
        h.send(CAROL, to_carol)
        h.tick()

    alice = h.seen(ALICE)
    assert alice.speaking and alice.level > 0.1  # a 0.3 full-scale sine: RMS about 0.21
    assert alice.via == "discord"
    bob = h.seen(BOB)  # his audio is pulled and decoded, but not mixed
    assert not bob.speaking and bob.level == 0.0
    carol = h.seen(CAROL)
    assert not carol.speaking and carol.level < SPEAKING_LEVEL
    # The bridge's one voice in the mixer is metered as a whole, as before.
    assert room._mixer.levels()[VOICE_KEY] > 0.1

    # Alice goes quiet: her meter falls as a WebRTC speaker's does, down to 0.
    for _ in range(30):
        h.tick()
    assert not h.seen(ALICE).speaking and h.seen(ALICE).level < SPEAKING_LEVEL
    for _ in range(30):
        h.tick()
    assert h.bridge.inbound.levels()[ALICE] == 0.0


async def test_a_mute_on_the_room_side_silences_the_meter_at_once(room: Room) -> None:
    h = Bridged(room, discord_admits={ALICE})
    h.bridge.attach()
    await h.bridge.follow(channel_of(ALICE))
    for payload in opus_tone(660.0, 10):
        h.send(ALICE, payload)
        h.tick()
    assert h.seen(ALICE).speaking

    room.set_muted(key(ALICE), True)  # before the bridge's next tick
    assert not h.seen(ALICE).speaking and h.seen(ALICE).level == 0.0
    room.set_muted(key(ALICE), False)
    for payload in opus_tone(660.0, 5):
        h.send(ALICE, payload)
        h.tick()
    assert h.seen(ALICE).speaking


async def test_levels_go_with_the_bridge_when_it_detaches(room: Room) -> None:
    h = Bridged(room, discord_admits={ALICE})
    h.bridge.attach()
    await h.bridge.follow(channel_of(ALICE))
    for payload in opus_tone(660.0, 10):
        h.send(ALICE, payload)
        h.tick()
    assert h.bridge.levels()[key(ALICE)] > 0.1
    room.remove_external_voice(VOICE_KEY)
    assert not h.seen(ALICE).speaking and h.seen(ALICE).level == 0.0


def test_discord_voices_meter_each_admitted_user_with_the_mixers_rule() -> None:
    voices = DiscordVoices({ALICE}.__contains__)
    mixer = Mixer(name="levels")
    mixer.add_voice("discord:bridge", voices, PacketTrack(max_queue=100))
    clock = 0.0
    for i, (from_alice, from_bob) in enumerate(
        zip(opus_tone(660.0, 20), opus_tone(1000.0, 20), strict=True)
    ):
        for user_id, payload in ((ALICE, from_alice), (BOB, from_bob)):
            packet = rtp.RtpPacket(sequence=i, timestamp=i * 960, ssrc=user_id, payload=payload)
            voices.put_received(Received(user_id, packet), clock)
        clock += 0.020
        mixer.step()
    levels = voices.levels()
    assert levels[ALICE] == pytest.approx(0.21, abs=0.03)
    assert levels[BOB] == 0.0
    voices.reset()
    assert voices.levels() == {ALICE: 0.0, BOB: 0.0}
