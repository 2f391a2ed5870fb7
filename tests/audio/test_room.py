"""End to end over loopback: aiortc clients send tones into a room and we check, by
frequency, who hears whom."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from prometheus_client import CollectorRegistry

from audio import Admission, NotInRoom, RoleChangeError, Room, RoomRegistry, RoomSettings
from audio.metrics import AudioMetrics
from tests.audio.conftest import SPACE, JoinFn
from tests.audio.rtc_harness import Client, dominant_frequency, holds
from tests.waiting import eventually

HEARD = 0.15  # share of received energy at a tone's frequency (three tones: ~1/3 each)
SILENT = 0.01


def hears(client: Client, frequency: int) -> bool:
    return client.probe.share(frequency) > HEARD


def deaf_to(client: Client, frequency: int) -> bool:
    return client.probe.share(frequency) < SILENT


async def test_listener_hears_the_hosts_tone_and_the_host_not_itself(join: JoinFn) -> None:
    host = await join("host", "host", tone=440, ticket=None)
    listener = await join("ann", "listener")
    await eventually(lambda: hears(listener, 440), what="listener hears 440 Hz")
    assert dominant_frequency(listener.probe.window(0.1)) == 440
    assert deaf_to(host, 440)  # the host gets the mix without their own voice


async def test_muted_speaker_is_not_heard_until_unmuted(room: Room, join: JoinFn) -> None:
    await join("host", "host", tone=440, ticket=None)
    await join("sam", "speaker", tone=1_000)
    listener = await join("ann", "listener")
    await eventually(lambda: hears(listener, 440) and hears(listener, 1_000), what="both")

    room.set_muted("sam", True)
    await eventually(lambda: deaf_to(listener, 1_000), what="muted speaker gone")
    await holds(
        lambda: deaf_to(listener, 1_000) and hears(listener, 440),
        duration=0.5,
        what="muted speaker stays out, host stays in",
    )

    room.set_muted("sam", False)
    await eventually(lambda: hears(listener, 1_000), what="unmuted speaker back")


async def test_unpromoted_listener_is_never_mixed_and_demotion_stops_it(
    room: Room, join: JoinFn
) -> None:
    await join("host", "host", tone=440, ticket=None)
    talker = await join("max", "listener", tone=1_500)  # a listener with a live microphone
    listener = await join("ann", "listener")
    await eventually(lambda: hears(listener, 440), what="host heard")
    await holds(lambda: deaf_to(listener, 1_500), duration=0.6, what="listener mic not mixed")
    session = room.session("max")
    assert session is not None and session.packets_in > 0  # accepted, just not mixed

    room.set_speaker("max", True)
    await eventually(lambda: hears(listener, 1_500), what="promoted listener heard")
    await eventually(lambda: deaf_to(talker, 1_500) and hears(talker, 440), what="mix-minus")

    room.set_speaker("max", False)
    await eventually(lambda: deaf_to(listener, 1_500), what="demoted speaker gone")
    await holds(lambda: deaf_to(listener, 1_500), duration=0.5, what="demoted stays out")
    assert room.state().listener_count == 2


async def test_second_join_with_the_same_ticket_closes_the_first(room: Room, join: JoinFn) -> None:
    await join("host", "host", tone=440, ticket=None)
    first = await join("ann", "listener", ticket="T-1")
    old_session = room.session("ann")
    second = await join("ann-phone", "listener", ticket="T-1")

    assert "ann" not in room and "ann-phone" in room
    assert old_session is not None and old_session.pc.connectionState == "closed"
    await eventually(
        lambda: first.pc.connectionState in ("closed", "failed"),
        what="first client sees its session end",
    )
    await eventually(lambda: hears(second, 440), what="second session hears the room")


async def test_revoked_ticket_and_removed_participant_are_disconnected(
    room: Room, join: JoinFn
) -> None:
    await join("ann", "listener", ticket="T-1")
    await join("bob", "listener", ticket="T-2")
    assert await room.revoke_ticket("T-1")
    assert not await room.revoke_ticket("T-1")
    assert await room.remove("bob")
    assert not await room.remove("bob")
    assert len(room) == 0


async def test_role_changes_are_checked(room: Room, join: JoinFn) -> None:
    await join("host", "host", ticket=None)
    with pytest.raises(RoleChangeError):
        room.set_speaker("host", False)
    room.set_speaker("host", True)  # already on stage: nothing to do
    with pytest.raises(NotInRoom):
        room.set_muted("ghost", True)


async def test_metrics_follow_the_room(
    registry: RoomRegistry, metrics_registry: CollectorRegistry, room: Room, join: JoinFn
) -> None:
    await join("host", "host", tone=440, ticket=None)
    listener = await join("ann", "listener")
    await eventually(lambda: hears(listener, 440), what="tone")
    labels = {"room": str(SPACE)}

    def value(name: str) -> float | None:
        return metrics_registry.get_sample_value(name, labels)

    assert value("stagepass_audio_listeners") == 1
    assert value("stagepass_audio_speakers") == 1
    assert (value("stagepass_audio_packets_sent_total") or 0) > 10
    assert (value("stagepass_audio_mixer_tick_lateness_seconds_count") or 0) > 10
    await registry.close(SPACE)
    assert value("stagepass_audio_listeners") is None


async def test_peers_get_only_the_configured_ice_servers_and_close_cleanly(
    metrics: AudioMetrics,
) -> None:
    configs: list[RTCConfiguration] = []

    def spy(config: RTCConfiguration) -> RTCPeerConnection:
        configs.append(config)
        return RTCPeerConnection(config)

    registry = RoomRegistry(metrics=metrics, peer_factory=spy)
    room = await registry.open(SPACE)
    client = Client("ann")
    try:
        admission = Admission("T", SPACE, "ann", "Ann", "listener")
        await client.accept(await room.join(*(await client.offer()), admission))
        assert [c.iceServers for c in configs] == [[]]  # never a public STUN server
    finally:
        await client.close()
        await registry.aclose()
    leftovers = [
        t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(("room-", "mixer-"))
    ]
    assert leftovers == []
    assert room.closed and not room.state().mixer_running


async def test_a_peer_that_never_connects_is_dropped(metrics: AudioMetrics) -> None:
    settings = RoomSettings(connect_timeout=0.3, watch_interval=0.1)
    async with RoomRegistry(metrics=metrics, settings=settings) as registry:
        room = await registry.open(SPACE)
        client = Client("gone")
        try:
            admission = Admission("T", SPACE, "gone", "Gone", "listener")
            await room.join(*(await client.offer()), admission)  # the answer is never used
            assert "gone" in room
            await eventually(lambda: "gone" not in room, what="stale session dropped")
        finally:
            await client.close()
