"""Fixtures for the audio room tests: offline loopback ICE, a registry with its own metrics
registry, aiortc clients that are always closed, and a `World`: a whole Stagepass with the
audio room installed on a live Space."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import aioice.ice
import httpx
import pytest
from aiortc import RTCPeerConnection
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from adapters.shell.chat import Chat
from audio import Admission, Room, RoomRegistry, fastlane, uring
from audio.install import LiveAudio, attach
from audio.metrics import AudioMetrics
from audio.registry import RoomLink
from audio.room import PeerFactory, RoomSettings
from audio.uring import DatagramBatch
from bot.actors import Actor
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.http import create_app
from bot.models import Platform, Space
from bot.services.spaces import SpaceDraft
from bot.settings import Settings
from bot.wiring import Stagepass
from tests.audio.rtc_harness import Client
from tests.serving import serve_asgi
from tests.waiting import eventually

SPACE = 7


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice never offers loopback candidates; offer 127.0.0.1 only, so tests stay offline."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
def metrics_registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(metrics_registry: CollectorRegistry) -> AudioMetrics:
    return AudioMetrics(metrics_registry)


@pytest.fixture
async def registry(metrics: AudioMetrics) -> AsyncIterator[RoomRegistry]:
    async with RoomRegistry(metrics=metrics) as registry:
        yield registry


@pytest.fixture
async def room(registry: RoomRegistry) -> Room:
    return await registry.open(SPACE)


JoinFn = Callable[..., Awaitable[Client]]


@pytest.fixture
async def join(room: Room) -> AsyncIterator[JoinFn]:
    """``await join(key, role, tone=None, ticket=...)``: a connected client in ``room``."""
    clients: list[Client] = []

    async def _join(
        key: str,
        role: str,
        *,
        tone: int | None = None,
        ticket: str | None = "auto",
        connect: bool = True,
    ) -> Client:
        client = Client(key, tone=tone)
        clients.append(client)
        admission = Admission(
            ticket_id=f"ticket-{key}" if ticket == "auto" else ticket,
            space_id=SPACE,
            identity_key=key,
            display_name=key.title(),
            role=role,
        )
        await client.accept(await room.join(*(await client.offer()), admission))
        if connect:
            await eventually(
                lambda: client.pc.connectionState == "connected", what=f"{key} connected"
            )
        return client

    yield _join
    for client in clients:
        await client.close()


# --- a whole Stagepass with the audio room installed ------------------------------------


@dataclass
class Person:
    actor: Actor
    token: str
    ticket_id: str | None = None

    @property
    def key(self) -> str:
        return self.actor.key

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    """A Stagepass with `audio.install` attached, a Space (live unless asked otherwise), its
    host, ticket holders and an HTTP client on the real app."""

    core: Core
    stagepass: Stagepass
    audio: LiveAudio
    app: FastAPI
    http: httpx.AsyncClient
    space: Space
    host: Person
    people: dict[str, Person] = field(default_factory=dict)
    clients: list[Client] = field(default_factory=list)

    @property
    def space_id(self) -> int:
        assert self.space.id is not None
        return self.space.id

    async def ticket(self, name: str, space: Space | None = None) -> Person:
        """A ticket holder named ``name`` (a free ticket, its room token)."""
        space = space or self.space
        actor = Actor(Platform.DISCORD, "guild1", name, name.title())
        reservation = await self.core.tickets.reserve(actor, space.id or 0)
        person = Person(actor, reservation.tokens[0], reservation.tickets[0].id)
        self.people[name] = person
        return person

    async def staff(self, actor: Actor, role: str) -> Person:
        identity = await self.core.identities.ensure(actor)
        return Person(actor, self.core.tickets.staff_token(self.space, identity, role))

    async def start(self) -> None:
        await self.core.spaces.start(self.host.actor, self.space_id, confirm=True)
        await self.core.bus.drain()

    def room(self) -> Room:
        room = self.audio.registry.get(self.space_id)
        assert room is not None, "the room is not open"
        return room

    async def join(self, person: Person, *, tone: int | None = None) -> Client:
        """An aiortc client that joins through POST /rooms/{id}/offer and connects."""
        client = Client(person.actor.user_id, tone=tone)
        self.clients.append(client)
        sdp, kind = await client.offer()
        response = await self.http.post(
            f"/rooms/{self.space_id}/offer", json={"sdp": sdp, "type": kind, "token": person.token}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        await client.accept((body["sdp"], body["type"]))
        await eventually(
            lambda: client.pc.connectionState == "connected", what=f"{person.key} connected"
        )
        return client


HOST = Actor(Platform.DISCORD, "guild1", "hal", "Hal")


async def build_world(
    core: Core,
    settings: Settings,
    metrics: AudioMetrics,
    *,
    live: bool = True,
    peer_factory: PeerFactory = RTCPeerConnection,
    link: RoomLink | None = None,
    room_settings: RoomSettings | None = None,
) -> World:
    dispatcher = Dispatcher(core)
    stagepass = Stagepass(settings, core, dispatcher, services={"chat": Chat(core, dispatcher)})
    audio = await attach(
        stagepass,
        live=LiveAudio(
            core,
            registry=RoomRegistry(
                metrics=metrics, peer_factory=peer_factory, link=link, settings=room_settings
            ),
        ),
    )
    assert audio is not None
    audio.serving = True  # as if `run` were running: SpaceStarted opens the room
    app = create_app(
        core, api_token="test-token", routers=stagepass.routers, registry=CollectorRegistry()
    )
    app.state.ready = True
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://room.test")
    space = await core.spaces.create(
        HOST,
        SpaceDraft(
            title="Night radio",
            starts_at=core.clock.now() + timedelta(hours=2),
            capacity=20,
            duration_minutes=60,
        ),
    )
    host_identity = await core.identities.ensure(HOST)
    host = Person(HOST, core.tickets.staff_token(space, host_identity, "host"))
    world = World(core, stagepass, audio, app, http, space, host)
    if live:
        await world.start()
    return world


@pytest.fixture
async def world(core: Core, settings: Settings, metrics: AudioMetrics) -> AsyncIterator[World]:
    """A live Space with the audio room installed (no ticket holders yet)."""
    world = await build_world(core, settings, metrics)
    try:
        yield world
    finally:
        await close_world(world)


async def close_world(world: World) -> None:
    for client in world.clients:
        await client.close()
    await world.http.aclose()
    await world.core.bus.drain()
    await world.audio.registry.aclose()


@pytest.fixture
async def scheduled(core: Core, settings: Settings, metrics: AudioMetrics) -> AsyncIterator[World]:
    """A Space two hours ahead, not started, with the rooms' job running (as `run` does):
    the room opens on SpaceStarted."""
    world = await build_world(core, settings, metrics, live=False)
    stop = asyncio.Event()
    job = asyncio.get_running_loop().create_task(world.audio.run(stop), name="audio-rooms")
    try:
        yield world
    finally:
        stop.set()
        await asyncio.wait_for(job, 15)
        await close_world(world)


@pytest.fixture
async def base_url(scheduled: World) -> AsyncIterator[str]:
    """`scheduled`'s app served on 127.0.0.1 for a real browser."""
    async with serve_asgi(scheduled.app) as base:
        yield base


def thread_ring() -> DatagramBatch:
    """This thread's io_uring ring, or a loud skip where the machine has none."""
    ring = uring.for_this_thread()
    if ring is None:
        pytest.skip("NO io_uring ON THIS MACHINE: the batched fast lane is untested here")
    return ring


LOOPS = ["c", "python"]
"""The fast lane's two loops: its C loop (audio/_lane.c) and the Python one."""


def use_loop(room: Room, loop: str) -> None:
    """Run ``room``'s fast lane on the C loop ("c"; a loud skip where it was not built) or
    on the Python loop ("python")."""
    if loop == "c" and not fastlane.NATIVE:
        pytest.skip("audio._lane IS NOT BUILT (no C compiler?): the fast lane's C loop is untested")
    room.fanout.native = loop == "c"
