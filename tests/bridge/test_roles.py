"""The room's side of the bridge: one external voice, and the people behind it listed and
given roles like anyone else (the Discord side: tests/discord/test_bridge_roles.py)."""

from __future__ import annotations

import pytest

from audio.admission import Role
from audio.bridge import VOICE_KEY
from audio.bridge.speakers import Presence, Seat, bridged_participant
from audio.errors import NotInRoom, RoleChangeError, RoomClosed
from audio.fanout import PacketTrack
from audio.jitter import JitterBuffer
from audio.room import BridgedParticipant, Room
from bot.core import Core
from bot.models import BridgeMode, Space, SpaceStatus

BOB = "discord:1:22"


def listed(room: Room, key: str = BOB) -> tuple[str, bool, str] | None:
    found = [p for p in room.state().participants if p.identity_key == key]
    return (found[0].role, found[0].muted, found[0].via) if found else None


async def test_external_voice_joins_and_leaves_the_mix(room: Room) -> None:
    room.add_external_voice(VOICE_KEY, JitterBuffer(), PacketTrack())
    assert room._mixer.has_voice(VOICE_KEY)
    room.remove_external_voice(VOICE_KEY)
    room.remove_external_voice(VOICE_KEY)  # idempotent
    assert not room._mixer.has_voice(VOICE_KEY)
    await room.close()
    with pytest.raises(RoomClosed):
        room.add_external_voice(VOICE_KEY, JitterBuffer(), PacketTrack())


async def test_bridged_people_are_listed_and_follow_promotions_and_mutes(room: Room) -> None:
    room.put_bridged(BridgedParticipant(BOB, "bob", "discord"))
    assert listed(room) == ("listener", False, "discord")
    assert room.state().listener_count == 1
    room.set_speaker(BOB, True)
    assert listed(room) == ("speaker", False, "discord")
    assert room.state().stage[0].display_name == "bob"
    bob = room.bridged(BOB)
    assert bob is not None and bob.mixed
    room.set_muted(BOB, True)
    assert listed(room) == ("speaker", True, "discord") and not bob.mixed
    room.set_muted(BOB, False)
    room.set_speaker(BOB, False)
    assert listed(room) == ("listener", False, "discord") and not bob.mixed
    assert await room.remove(BOB)
    assert listed(room) is None and room.bridged(BOB) is None
    with pytest.raises(NotInRoom):
        room.set_speaker(BOB, True)


async def test_a_bridged_host_stays_on_stage(room: Room) -> None:
    room.put_bridged(BridgedParticipant(BOB, "alice", "discord", role=Role.HOST))
    room.set_speaker(BOB, True)
    with pytest.raises(RoleChangeError):
        room.set_speaker(BOB, False)
    assert listed(room) == ("host", False, "discord")
    assert room.drop_bridged(BOB) and not room.drop_bridged(BOB)


async def test_a_closed_room_lists_nobody(room: Room) -> None:
    room.put_bridged(BridgedParticipant(BOB, "bob", "discord"))
    await room.close()
    room.put_bridged(BridgedParticipant("discord:1:33", "carol", "discord"))
    assert room.state().participants == ()


@pytest.mark.parametrize(
    ("stage", "suppress", "mute", "seat", "role", "muted"),
    [
        (True, False, False, Seat(), Role.SPEAKER, False),  # a Stage speaker
        (True, True, False, Seat(may_speak=True), Role.LISTENER, False),  # suppressed
        (True, True, False, Seat(role=Role.HOST), Role.HOST, False),
        (True, False, True, Seat(), Role.SPEAKER, True),  # server-muted
        (True, False, False, Seat(muted=True), Role.SPEAKER, True),  # muted on the stage
        (False, False, False, Seat(), Role.LISTENER, False),  # voice channel: no right
        (False, False, False, Seat(may_speak=True), Role.SPEAKER, False),
        (False, False, False, Seat(role=Role.COHOST), Role.COHOST, False),
    ],
)
def test_discord_state_and_seat_make_the_room_role(
    stage: bool, suppress: bool, mute: bool, seat: Seat, role: Role, muted: bool
) -> None:
    presence = Presence(22, "bob", stage, suppress, mute)
    participant = bridged_participant(BOB, presence, seat)
    assert (participant.role, participant.muted, participant.via) == (role, muted, "discord")
    assert participant.mixed == (role.on_stage and not muted)


@pytest.mark.parametrize(
    ("chosen", "global_on", "mode"),
    [
        (BridgeMode.DEFAULT, False, BridgeMode.OFF),
        (BridgeMode.DEFAULT, True, BridgeMode.LISTEN),
        (BridgeMode.SPEAK, False, BridgeMode.SPEAK),
        (BridgeMode.OFF, True, BridgeMode.OFF),
    ],
)
def test_the_space_setting_defaults_to_discord_voice_bridge(
    core: Core, chosen: BridgeMode, global_on: bool, mode: BridgeMode
) -> None:
    core.ctx.settings = core.settings.model_copy(update={"discord_voice_bridge": global_on})
    space = Space(
        community_id="shell:local",
        host_id=1,
        title="Bridged",
        duration_minutes=60,
        status=SpaceStatus.SCHEDULED,
        price_minor=0,
        currency="usd",
        capacity=10,
        voice_bridge=chosen,
    )
    assert core.spaces.bridge_mode(space) == mode
