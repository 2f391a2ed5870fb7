"""Audio edges over a real NATS server: an origin registry mixes, an edge registry (another
"node" in this process, with its own NATS connection) relays the listener mix to its own
aiortc listeners; the stage is refused on the edge; the edge follows its listeners."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from audio import Admission, Unauthorized, make_router
from audio.edges import CLOSED, MIX, EdgeLink, OriginLink, decode, encode_closed, encode_mix
from audio.install import nats_link
from audio.metrics import AudioMetrics
from bot.errors import ConfigError
from bot.settings import load_settings
from tests.audio.nats_nodes import ORIGIN_URL, Nodes, nats_nodes
from tests.audio.rtc_harness import Client, dominant_frequency, holds
from tests.waiting import eventually

pytestmark = [pytest.mark.nats]

HEARD = 0.15


@pytest.fixture
async def nodes(metrics: AudioMetrics) -> AsyncIterator[Nodes]:
    async with nats_nodes(metrics) as nodes:
        yield nodes


def hears(client: Client, frequency: int) -> bool:
    return client.probe.share(frequency) > HEARD


async def test_a_listener_on_the_edge_hears_the_speaker_on_the_origin(nodes: Nodes) -> None:
    origin_room = await nodes.origin.open(nodes.space)
    await nodes.join(origin_room, "host", "host", tone=440)

    relay = await nodes.edge.joinable(nodes.space)
    assert relay is not None and relay.listeners_only
    assert relay.origin_url == ORIGIN_URL
    listener = await nodes.join(relay, "ann", "listener")

    await eventually(lambda: hears(listener, 440), what="the edge listener hears 440 Hz")
    assert dominant_frequency(listener.probe.window(0.1)) == 440
    # It came over NATS: the origin has no listener of its own, the edge counted the packets.
    assert origin_room.listener_count == 0
    stats = nodes.edge_link.stats(nodes.space)
    assert stats is not None and stats.received > 0
    assert nodes.origin_link.published >= stats.received


@pytest.fixture
async def edge_http(nodes: Nodes) -> AsyncIterator[httpx.AsyncClient]:
    """The edge's signaling router, with a gate that admits by token: ``role:key``."""

    class TokenGate:
        async def admit(self, space_id: int, token: str) -> Admission:
            role, _, key = token.partition(":")
            if not key:
                raise Unauthorized("Open this room from your ticket link.")
            staff = role != "listener" or key.startswith("mod")
            return nodes.admission(key, role, ticket=None if staff else "auto")

    app = FastAPI()
    app.include_router(make_router(nodes.edge, TokenGate()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://edge.test"
    ) as http:
        yield http


OfferFn = Callable[[str], Awaitable[httpx.Response]]


@pytest.fixture
def offer(nodes: Nodes, edge_http: httpx.AsyncClient) -> OfferFn:
    async def _offer(token: str) -> httpx.Response:
        client = Client(token.replace(":", "-"), tone=880)
        nodes.clients.append(client)
        sdp, kind = await client.offer()
        return await edge_http.post(
            f"/rooms/{nodes.space}/offer", json={"sdp": sdp, "type": kind, "token": token}
        )

    return _offer


async def test_the_edge_refuses_the_stage_and_names_the_origin(
    nodes: Nodes, offer: OfferFn
) -> None:
    assert (await offer("listener:ann")).status_code == 404  # no origin has the room open
    await nodes.origin.open(nodes.space)

    for token in ("host:hal", "cohost:cy", "speaker:sam", "listener:mod-mo"):
        response = await offer(token)
        assert response.status_code == 409, (token, response.text)
        error = response.json()["error"]  # the app's envelope, with the origin for the page
        assert error["type"] == "origin_only" and error["origin"] == ORIGIN_URL
        assert "origin" in error["message"] and ORIGIN_URL in error["message"]
    assert (await offer("listener:ann")).status_code == 200
    relay = nodes.edge.get(nodes.space)
    assert relay is not None and list(relay) == ["ann"]


async def test_the_edge_subscribes_while_it_has_listeners(nodes: Nodes) -> None:
    origin_room = await nodes.origin.open(nodes.space)
    await nodes.join(origin_room, "host", "host", tone=440)
    relay = await nodes.edge.joinable(nodes.space)
    assert relay is not None
    assert not nodes.edge_link.subscribed(nodes.space)  # open, but nobody listens yet

    await nodes.join(relay, "ann", "listener")
    bob = await nodes.join(relay, "bob", "listener")
    await eventually(lambda: nodes.edge_link.subscribed(nodes.space), what="subscribed")
    await eventually(lambda: hears(bob, 440), what="bob hears the origin")

    await relay.remove("ann")
    await holds(
        lambda: nodes.edge_link.subscribed(nodes.space), duration=0.3, what="one listener left"
    )
    await relay.remove("bob")
    await eventually(lambda: not nodes.edge_link.subscribed(nodes.space), what="unsubscribed")

    # NATS itself stops sending: once a round trip to the server (which has the UNSUB
    # behind it) is done, whatever it sent before has been read, and nothing more comes.
    await nodes.edge_link.nc.flush()
    stats = nodes.edge_link.nc.stats
    quiet = stats["in_msgs"]
    await holds(lambda: stats["in_msgs"] == quiet, duration=0.5, what="no mix reaches the edge")

    carl = await nodes.join(relay, "carl", "listener")
    await eventually(lambda: hears(carl, 440), what="a new listener resubscribes the edge")


async def test_closing_the_origin_room_closes_the_relay(nodes: Nodes) -> None:
    await nodes.origin.open(nodes.space)
    relay = await nodes.edge.joinable(nodes.space)
    assert relay is not None
    await nodes.join(relay, "ann", "listener")
    await eventually(lambda: nodes.edge_link.subscribed(nodes.space), what="subscribed")

    await nodes.origin.close(nodes.space)
    await eventually(lambda: relay.closed, what="the relay closed with its origin")
    await eventually(lambda: not nodes.edge_link.subscribed(nodes.space), what="unsubscribed")
    assert nodes.edge.get(nodes.space) is None
    assert await nodes.edge.joinable(nodes.space) is None


def test_mix_messages_round_trip() -> None:
    from audio.opus import OpusEncoder

    packet = OpusEncoder().encode(bytes(1920), 7 * 960)[0]
    message = decode(encode_mix(packet, 12.5))
    assert (message.kind, message.sequence, message.sent_at) == (MIX, 7, 12.5)
    assert message.payload == bytes(packet)
    assert message.packet().pts == 7 * 960
    assert decode(encode_closed(1.0)).kind == CLOSED
    with pytest.raises(ValueError):
        decode(b"\x01\x00")
    with pytest.raises(ValueError):
        decode(bytes([9]) + bytes(12))


def test_an_edge_needs_a_nats_url() -> None:
    with pytest.raises(ConfigError, match="STAGEPASS_AUDIO_NATS_URL"):
        load_settings(audio_node="edge")
    settings = load_settings(audio_nats_url="nats://127.0.0.1:4222", audio_node="edge")
    assert settings.audio_node == "edge"


async def test_an_origin_shutting_down_closes_the_edges_relays(nodes: Nodes) -> None:
    await nodes.origin.open(nodes.space)
    relay = await nodes.edge.joinable(nodes.space)
    assert relay is not None
    await nodes.join(relay, "ann", "listener")
    await eventually(lambda: nodes.edge_link.subscribed(nodes.space), what="subscribed")

    # What `LiveAudio.run` does on stop: close every room, then the link (which must still
    # send the rooms' CLOSED messages it queued).
    await nodes.origin.aclose()
    await nodes.origin_link.aclose()
    await eventually(lambda: relay.closed, what="the relay closed with its origin")


def test_the_settings_choose_the_nats_link() -> None:
    assert nats_link(load_settings()) is None
    origin = nats_link(load_settings(audio_nats_url="nats://127.0.0.1:4222", public_url=ORIGIN_URL))
    assert isinstance(origin, OriginLink) and not origin.relays
    edge = nats_link(load_settings(audio_nats_url="nats://127.0.0.1:4222", audio_node="edge"))
    assert isinstance(edge, EdgeLink) and edge.relays
