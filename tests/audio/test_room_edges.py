"""The room's edges, through the real HTTP app: hostile offers are 422 with nothing left
behind, a Space started by another process opens its room on the first admitted offer, a
moderator's Open-the-room link works, and private ICE candidates can be refused."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from audio.errors import BadOffer
from audio.install import LiveAudio
from audio.metrics import AudioMetrics
from audio.offer import check_offer, private_address
from audio.room import RoomSettings
from audio.session import close_peer
from bot.actors import Actor, UserRef
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.models import Platform
from bot.settings import Settings
from tests.audio.conftest import World, build_world, close_world
from tests.audio.rtc_harness import Client

CHROMIUM_OFFER = (Path(__file__).parent / "chromium_offer.sdp").read_bytes().decode()


class Peers:
    """A peer factory that keeps every peer connection it made."""

    def __init__(self, cls: type[RTCPeerConnection] = RTCPeerConnection) -> None:
        self.cls = cls
        self.made: list[RTCPeerConnection] = []

    def __call__(self, config: RTCConfiguration) -> RTCPeerConnection:
        pc = self.cls(config)
        self.made.append(pc)
        return pc


def released(pc: RTCPeerConnection) -> bool:
    """Closed, with no ICE socket left open. (The ICE transport's state is no proof: a
    closed one reads "failed" once its monitor sees the check list end.)"""
    if pc.signalingState != "closed":
        return False
    for transceiver in pc.getTransceivers():
        for dtls in (transceiver.receiver.transport, transceiver.sender.transport):
            if dtls is not None and dtls.transport._connection._protocols:
                return False
    return True


@pytest.fixture
def peers() -> Peers:
    return Peers()


@pytest.fixture
async def world(
    core: Core, settings: Settings, metrics: AudioMetrics, peers: Peers
) -> AsyncIterator[World]:
    world = await build_world(core, settings, metrics, peer_factory=peers)
    try:
        yield world
    finally:
        await close_world(world)


@pytest.fixture
async def idle_world(core: Core, settings: Settings, metrics: AudioMetrics) -> AsyncIterator[World]:
    """A Space that is scheduled, not live yet."""
    world = await build_world(core, settings, metrics, live=False)
    try:
        yield world
    finally:
        await close_world(world)


async def post_offer(world: World, token: str, sdp: str) -> tuple[int, dict[str, Any]]:
    response = await world.http.post(
        f"/rooms/{world.space_id}/offer", json={"sdp": sdp, "type": "offer", "token": token}
    )
    return response.status_code, response.json()


def message(body: dict[str, Any]) -> str:
    """The message of the app's error envelope."""
    return str(body["error"]["message"])


async def test_a_bundle_group_naming_a_missing_section_is_a_422_before_any_peer(
    world: World, peers: Peers
) -> None:
    ann = await world.ticket("ann")
    hostile = CHROMIUM_OFFER.replace("a=group:BUNDLE 0", "a=group:BUNDLE 7 0")
    status, body = await post_offer(world, ann.token, hostile)
    assert status == 422
    assert "BUNDLE" in message(body)
    assert peers.made == []
    assert ann.key not in world.room()


async def test_the_captured_chromium_offer_is_answered(world: World, peers: Peers) -> None:
    ann = await world.ticket("ann")
    status, body = await post_offer(world, ann.token, CHROMIUM_OFFER)
    assert status == 200, body
    assert body["type"] == "answer"
    assert "a=group:BUNDLE 0" in str(body["sdp"])
    assert ann.key in world.room()


class BrokenPeer(RTCPeerConnection):
    """Fails inside negotiation, after its transports exist, as aiortc did on
    ``a=group:BUNDLE 7 0`` (any offer the checks miss could)."""

    async def setRemoteDescription(self, sessionDescription: RTCSessionDescription) -> None:
        await super().setRemoteDescription(sessionDescription)
        raise AttributeError("'NoneType' object has no attribute 'transport'")


async def test_any_failure_of_negotiation_is_a_422_and_the_peer_is_released(
    core: Core, settings: Settings, metrics: AudioMetrics
) -> None:
    peers = Peers(BrokenPeer)
    world = await build_world(core, settings, metrics, peer_factory=peers)
    try:
        ann = await world.ticket("ann")
        status, body = await post_offer(world, ann.token, CHROMIUM_OFFER)
        assert status == 422
        assert message(body) == "The audio offer could not be answered."
        assert len(peers.made) == 1
        assert released(peers.made[0])
        room = world.room()
        assert ann.key not in room and len(room) == 0
        assert room.state().listener_count == 0
    finally:
        await close_world(world)


async def test_a_space_started_by_another_process_opens_its_room_on_the_first_offer(
    idle_world: World,
) -> None:
    world = idle_world
    ann = await world.ticket("ann")
    # Another process starts the Space: this one's SpaceStarted handler does not open it.
    world.audio.serving = False
    await world.start()
    world.audio.serving = True
    assert world.audio.registry.get(world.space_id) is None

    client = await world.join(ann)
    assert ann.key in world.room()
    assert client.pc.connectionState == "connected"


async def test_no_room_opens_for_an_offer_to_a_space_that_is_not_live(idle_world: World) -> None:
    world = idle_world
    ann = await world.ticket("ann")
    status, _ = await post_offer(world, ann.token, CHROMIUM_OFFER)
    assert status == 403
    assert world.audio.registry.get(world.space_id) is None
    assert not await world.audio.is_live(world.space_id)


async def test_a_moderator_who_starts_a_space_can_open_the_room(idle_world: World) -> None:
    world, core = idle_world, idle_world.core
    moderator = Actor(Platform.DISCORD, "guild1", "mo", "Mo", is_moderator=True)
    reply = await Dispatcher(core).handle(moderator, f"/space start {world.space_id} confirm:yes")
    await core.bus.drain()
    assert not reply.error, reply.text
    (button,) = [b for b in reply.buttons if b.label == "Open the room"]
    assert button.url is not None
    token = button.url.split("#token=", 1)[1]

    me = await world.http.get(
        f"/rooms/{world.space_id}/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "listener"  # moderators run the stage from chat
    status, body = await post_offer(world, token, CHROMIUM_OFFER)
    assert status == 200, body
    assert moderator.key in world.room()


async def test_a_cohost_who_starts_a_space_gets_a_cohost_pass(world: World) -> None:
    """The same rule for co-hosts (who are not moderators): their pass names them."""
    core = world.core
    cohost = Actor(Platform.DISCORD, "guild1", "cora", "Cora")
    space = world.space
    await core.spaces.set_cohost(
        world.host.actor, world.space_id, UserRef(cohost.user_id, cohost.display_name), True
    )
    token = await core.tickets.staff_pass(cohost, space)
    verified = await core.tickets.verify_token(token)
    assert verified.claims.role == "cohost"

    stranger = Actor(Platform.DISCORD, "guild1", "stan", "Stan")
    with pytest.raises(Exception, match="host pass"):
        await core.tickets.staff_pass(stranger, space)


@pytest.mark.parametrize(
    ("host", "private"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.9", True),
        ("192.168.1.1", True),
        ("169.254.1.1", True),
        ("::1", True),
        ("fd00::2", True),
        ("fe80::1", True),
        ("0.0.0.0", True),
        ("224.0.0.251", True),
        ("1b4f1a2e-7d6c-4a5e-9f1d-0c2b3a4d5e6f.local", True),
        ("8.8.8.8", False),
        ("2001:4860:4860::8888", False),
    ],
)
def test_private_addresses(host: str, private: bool) -> None:
    assert private_address(host) is private


def test_private_candidates_are_left_out_only_when_asked() -> None:
    public = CHROMIUM_OFFER.replace("192.0.2.2 48500", "8.8.8.8 48500")
    assert check_offer(public, "offer") == public
    kept = check_offer(public, "offer", deny_private_ice=True)
    assert [line for line in kept.split("\r\n") if line.startswith("a=candidate:")] == [
        "a=candidate:3911739262 1 udp 2122063615 8.8.8.8 48500 typ host generation 0 network-id 1"
    ]
    assert kept.endswith("\r\n") and "\n" not in kept.replace("\r\n", "")


async def test_the_room_refuses_private_candidates_where_the_setting_says_so(
    core: Core, metrics: AudioMetrics, settings: Settings
) -> None:
    world = await build_world(
        core, settings, metrics, room_settings=RoomSettings(deny_private_ice=True)
    )
    try:
        room = world.room()
        ann = await world.ticket("ann")
        client = Client("ann")
        world.clients.append(client)
        sdp, _ = await client.offer()
        status, body = await post_offer(world, ann.token, sdp)
        assert status == 200, body
        session = room.session(ann.key)
        assert session is not None
        remote = session.pc.remoteDescription
        assert remote is not None and "a=candidate:" not in remote.sdp
    finally:
        await close_world(world)


def test_the_setting_reaches_the_rooms(
    settings: Settings, core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not LiveAudio(core).registry.room_settings.deny_private_ice
    monkeypatch.setenv("STAGEPASS_ROOM_DENY_PRIVATE_ICE", "true")
    assert Settings().room_deny_private_ice
    denying = settings.model_copy(update={"room_deny_private_ice": True})
    monkeypatch.setattr(core.ctx, "settings", denying)
    assert LiveAudio(core).registry.room_settings.deny_private_ice


async def test_a_peer_that_aiortc_cannot_close_still_has_its_transports_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What aiortc leaves after a failed BUNDLE: a transceiver without its transport, so
    `RTCPeerConnection.close` raises. `close_peer` stops what is left and does not raise."""
    caplog.set_level(logging.INFO, logger="audio.session")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())  # gathered: its ICE socket is open
    dtls = transceiver.sender.transport
    assert dtls.transport._connection._protocols
    transceiver.receiver.setTransport(None)  # type: ignore[arg-type]  # no transport: the edge under test

    await close_peer(pc)
    assert "closing a peer connection failed" in caplog.text
    assert pc.signalingState == "closed"
    assert not dtls.transport._connection._protocols


@pytest.mark.parametrize(
    "candidate",
    [
        "1 1 udp 1 0.0.0.0 5000 typ host",
        "1 1 udp 1 255.255.255.255 5000 typ host",
        "1 1 udp 1 224.0.0.251 5353 typ host",
        "1 1 udp 1 :: 5000 typ host",
        "1 1 udp 1 127.0.0.1 0 typ host",
        "1 1 udp 1 stun.example.org 3478 typ host",
        "1 3 udp 1 127.0.0.1 5000 typ host",
        "1 1 udp 1 127.0.0.1 5000 typ bogus",
    ],
)
def test_candidates_the_room_would_never_send_to_are_refused(candidate: str) -> None:
    offer = CHROMIUM_OFFER.replace("a=ice-ufrag:", f"a=candidate:{candidate}\r\na=ice-ufrag:", 1)
    with pytest.raises(BadOffer, match="ICE candidate"):
        check_offer(offer, "offer")
