"""An origin and an edge over a real NATS server, for the audio edge tests: two registries
in this process, each with its own NATS connection (as two nodes would have)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from nats.aio.client import Client as NATS

from audio import Admission, Room, RoomRegistry
from audio.edges import EdgeLink, NatsLink, OriginLink
from audio.metrics import AudioMetrics
from tests.audio.rtc_harness import Client
from tests.services import ensure_nats
from tests.waiting import eventually

ORIGIN_URL = "http://origin.test"
EDGE_URL = "http://edge.test"


@dataclass
class Nodes:
    """An origin and an edge, each a registry with its own NATS connection."""

    space: int
    origin: RoomRegistry
    edge: RoomRegistry
    origin_link: OriginLink
    edge_link: EdgeLink
    clients: list[Client] = field(default_factory=list)

    def admission(self, key: str, role: str, *, ticket: str | None = "auto") -> Admission:
        return Admission(
            ticket_id=f"ticket-{key}" if ticket == "auto" else ticket,
            space_id=self.space,
            identity_key=key,
            display_name=key.title(),
            role=role,
        )

    async def join(self, room: Room, key: str, role: str, *, tone: int | None = None) -> Client:
        """A connected aiortc client in ``room``."""
        client = Client(key, tone=tone)
        self.clients.append(client)
        ticket = None if role == "host" else "auto"
        await client.accept(
            await room.join(*(await client.offer()), self.admission(key, role, ticket=ticket))
        )
        await eventually(lambda: client.pc.connectionState == "connected", what=f"{key} connected")
        return client


@asynccontextmanager
async def linked(registry: RoomRegistry) -> AsyncIterator[RoomRegistry]:
    """``registry`` with its NATS link connected; closes both on the way out."""
    link = registry.link
    assert isinstance(link, NatsLink)
    await link.connect(ensure_nats())
    try:
        yield registry
    finally:
        await registry.aclose()
        await link.aclose()


@asynccontextmanager
async def nats_nodes(metrics: AudioMetrics) -> AsyncIterator[Nodes]:
    origin_link = OriginLink(NATS(), public_url=ORIGIN_URL)
    edge_link = EdgeLink(NATS(), public_url=EDGE_URL)
    # A Space id of our own: other test runs may share this NATS server.
    nodes = Nodes(
        space=random.randrange(10**6, 10**9),
        origin=RoomRegistry(metrics=metrics, link=origin_link),
        edge=RoomRegistry(metrics=metrics, link=edge_link),
        origin_link=origin_link,
        edge_link=edge_link,
    )
    async with linked(nodes.origin), linked(nodes.edge):
        try:
            yield nodes
        finally:
            for client in nodes.clients:
                await client.close()
