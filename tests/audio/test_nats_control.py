"""Control messages (`audio.control`) over a real NATS server: a ticket revoked, a person
removed or promoted, a Space ended in one process reaches the rooms of every other one — an
edge's relay, and the origin when it happened in a third process that hosts no room."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS

from audio import Room, RoomRegistry
from audio.control import (
    Action,
    ControlHandler,
    ControlMessage,
    control_subject,
    decode_control,
    encode_control,
)
from audio.edges import EdgeLink, OriginLink
from audio.metrics import AudioMetrics
from bot.actors import UserRef
from bot.core import Core
from bot.settings import Settings
from tests.audio.conftest import HOST, SPACE, JoinFn, build_world, close_world
from tests.audio.nats_nodes import Nodes, linked, nats_nodes
from tests.audio.rtc_harness import Client, holds
from tests.services import ensure_nats
from tests.waiting import eventually

nats = pytest.mark.nats


@pytest.fixture
async def nodes(metrics: AudioMetrics) -> AsyncIterator[Nodes]:
    async with nats_nodes(metrics) as nodes:
        yield nodes


@pytest.fixture
async def worker(metrics: AudioMetrics) -> AsyncIterator[RoomRegistry]:
    """A third process's registry (a webhook worker's): linked to NATS, hosting no room."""
    async with linked(RoomRegistry(metrics=metrics, link=OriginLink(NATS()))) as registry:
        yield registry


async def gone(room: Room, key: str) -> None:
    """``key`` is out of ``room`` and its peer connection closed."""
    session = room.session(key)
    await eventually(lambda: key not in room, what=f"{key} disconnected")
    if session is not None:
        await eventually(lambda: session.pc.connectionState == "closed", what="pc closed")


# --- the message and applying it ------------------------------------------------------


def test_control_messages_round_trip() -> None:
    for message in (
        ControlMessage(Action.TICKET_CLOSED, 42, ticket_id="T-1"),
        ControlMessage(Action.PROMOTED, 42, "discord:g:ann"),
        ControlMessage(Action.ENDED, 42),
    ):
        data = encode_control(message, "node-a")
        assert len(data) < 120 and b" " not in data  # compact
        assert decode_control(data) == ("node-a", message)
    assert control_subject(42) == "stagepass.audio.42.control"
    for bad in (
        b"\x00",
        b"[]",
        b'{"node":"n","action":"explode","space":1}',
        b'{"node":"n","action":"ended","space":"1"}',
        b'{"node":"n","action":"ended","space":true}',
        b'{"action":"ended","space":1}',
        b'{"node":"n","action":"ticket_closed","space":1}',  # which ticket?
        b'{"node":"n","action":"removed","space":1}',  # whom?
        json.dumps({"node": "n", "action": "removed", "space": 1, "who": 5}).encode(),
    ):
        with pytest.raises(ValueError):
            decode_control(bad)


async def test_applying_a_message_twice_changes_nothing_the_second_time(
    registry: RoomRegistry, room: Room, join: JoinFn
) -> None:
    await join("ann", "listener")
    await join("bob", "listener")
    await join("sam", "listener")
    seen: list[ControlMessage] = []
    registry.on_control = seen.append

    revoke = ControlMessage(Action.TICKET_CLOSED, SPACE, ticket_id="ticket-ann")
    assert await registry.apply(revoke)
    assert not await registry.apply(revoke)
    remove = ControlMessage(Action.REMOVED, SPACE, "bob")
    assert await registry.apply(remove)
    assert not await registry.apply(remove)
    promote = ControlMessage(Action.PROMOTED, SPACE, "sam")
    assert await registry.apply(promote)
    assert room.state().stage[0].identity_key == "sam"
    assert not await registry.apply(ControlMessage(Action.PROMOTED, SPACE, "nobody"))
    assert not await registry.apply(ControlMessage(Action.TICKET_CLOSED, 999, ticket_id="x"))
    end = ControlMessage(Action.ENDED, SPACE)
    assert await registry.apply(end)
    assert room.closed and registry.get(SPACE) is None
    assert not await registry.apply(end)
    assert len(seen) == 9  # the hook sees every message, applied or not (the gate forgets)


# --- across processes -----------------------------------------------------------------


@nats
async def test_a_ticket_revoked_in_the_origin_process_disconnects_its_listener_on_the_edge(
    core: Core, settings: Settings, metrics: AudioMetrics
) -> None:
    """The whole path: the origin's core closes a ticket, its `LiveAudio` announces it, the
    edge's registry disconnects the listener it relays to."""
    origin_link = OriginLink(NATS(), public_url="http://origin.test")
    await origin_link.connect(ensure_nats())
    world = await build_world(core, settings, metrics, link=origin_link)
    try:
        async with linked(RoomRegistry(metrics=metrics, link=EdgeLink(NATS()))) as edge:
            ann, bob = await world.ticket("ann"), await world.ticket("bob")
            relay = await edge.joinable(world.space_id)
            assert relay is not None and relay.listeners_only
            clients = []
            for person in (ann, bob):
                admission = await world.audio.gate.admit(world.space_id, person.token)
                client = Client(person.actor.user_id)
                world.clients.append(client)
                await client.accept(await relay.join(*(await client.offer()), admission))
                clients.append(client)
            assert set(relay) == {ann.key, bob.key}

            assert ann.ticket_id is not None
            await core.tickets.close(ann.ticket_id, refunded=True, reason="Refund")
            await core.bus.drain()
            await gone(relay, ann.key)
            assert bob.key in relay

            # A removal on the origin's stage reaches the edge as well.
            await core.stage.remove(HOST, world.space_id, UserRef("bob"))
            await core.bus.drain()
            await gone(relay, bob.key)
    finally:
        await close_world(world)
        await origin_link.aclose()


@nats
async def test_a_ticket_revoked_by_a_process_without_rooms_reaches_origin_and_edge(
    nodes: Nodes, worker: RoomRegistry
) -> None:
    origin_room = await nodes.origin.open(nodes.space)
    await nodes.join(origin_room, "ola", "listener")
    relay = await nodes.edge.joinable(nodes.space)
    assert relay is not None
    await nodes.join(relay, "ann", "listener")
    await nodes.join(relay, "bob", "listener")

    await worker.announce(ControlMessage(Action.TICKET_CLOSED, nodes.space, ticket_id="ticket-ann"))
    await gone(relay, "ann")
    await worker.announce(ControlMessage(Action.TICKET_CLOSED, nodes.space, ticket_id="ticket-ola"))
    await gone(origin_room, "ola")
    assert list(relay) == ["bob"]
    assert len(worker) == 0  # it only published


@nats
async def test_promotion_removal_and_the_end_reach_the_edge_from_elsewhere(
    nodes: Nodes, worker: RoomRegistry
) -> None:
    origin_room = await nodes.origin.open(nodes.space)
    relay = await nodes.edge.joinable(nodes.space)
    assert relay is not None
    for key in ("ann", "bob", "cy"):
        await nodes.join(relay, key, "listener")

    # Promoted: the edge cannot mix them, so it lets them go (the page rejoins the origin).
    await worker.announce(ControlMessage(Action.PROMOTED, nodes.space, "ann"))
    await gone(relay, "ann")
    await worker.announce(ControlMessage(Action.REMOVED, nodes.space, "bob"))
    await gone(relay, "bob")
    await worker.announce(ControlMessage(Action.MUTED, nodes.space, "cy"))  # nothing to do
    await holds(lambda: "cy" in relay, duration=0.3, what="a mute leaves a listener be")

    await worker.announce(ControlMessage(Action.ENDED, nodes.space))
    await eventually(lambda: origin_room.closed, what="the origin closed its room")
    await eventually(lambda: relay.closed, what="the relay closed")
    assert nodes.origin.get(nodes.space) is None and nodes.edge.get(nodes.space) is None


@nats
async def test_a_node_does_not_apply_its_own_message_again(nodes: Nodes) -> None:
    await nodes.origin.open(nodes.space)
    relay = await nodes.edge.joinable(nodes.space)
    assert relay is not None
    await nodes.join(relay, "ann", "listener")
    on_origin: list[ControlMessage] = []
    on_edge: list[ControlMessage] = []
    nodes.origin.on_control = on_origin.append
    nodes.edge.on_control = on_edge.append

    message = ControlMessage(Action.TICKET_CLOSED, nodes.space, ticket_id="ticket-ann")
    await nodes.origin.announce(message)
    await gone(relay, "ann")
    await holds(lambda: len(on_origin) == 1, duration=0.3, what="the origin applied it once")
    assert on_origin == on_edge == [message]


# --- the wiring: core events become control messages ---------------------------------


class RecordingLink:
    """A `RoomLink` that keeps what it would publish (no NATS)."""

    relays = False

    def __init__(self) -> None:
        self.announced: list[ControlMessage] = []
        self.handler: ControlHandler | None = None

    async def opened(self, room: Room) -> None:
        pass

    async def closed(self, room: Room) -> None:
        pass

    async def locate(self, space_id: int) -> str | None:
        raise NotImplementedError

    async def announce(self, message: ControlMessage) -> None:
        self.announced.append(message)

    def follow(self, handler: ControlHandler) -> None:
        self.handler = handler


async def test_core_events_are_announced_and_other_nodes_messages_forget_the_gate(
    core: Core, settings: Settings, metrics: AudioMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = RecordingLink()
    world = await build_world(core, settings, metrics, link=link)
    try:
        space = world.space_id
        ann, bob = await world.ticket("ann"), await world.ticket("bob")
        assert ann.ticket_id is not None

        # Another node's message: the gate forgets the Space's cached passes first.
        forgotten: list[int] = []
        forget = world.audio.gate.forget

        def noted_forget(space_id: int) -> None:
            forgotten.append(space_id)
            forget(space_id)

        monkeypatch.setattr(world.audio.gate, "forget", noted_forget)
        assert link.handler is not None
        assert not await link.handler(ControlMessage(Action.REMOVED, space, bob.key))
        assert forgotten == [space]

        await core.stage.promote(HOST, space, UserRef("ann"))
        await core.tickets.close(ann.ticket_id, refunded=False, reason="Dispute")
        await core.spaces.end(HOST, space)
        await core.bus.drain()
        assert [(m.action, m.identity_key, m.ticket_id) for m in link.announced] == [
            (Action.PROMOTED, ann.key, ""),
            (Action.TICKET_CLOSED, "", ann.ticket_id),
            (Action.ENDED, "", ""),
        ]
        assert world.audio.registry.get(space) is None  # applied here as well
        assert forgotten == [space] * 4
    finally:
        await close_world(world)
