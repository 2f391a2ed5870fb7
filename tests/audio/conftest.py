"""Fixtures for the audio room tests: offline loopback ICE, a registry with its own metrics
registry, and aiortc clients that are always closed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aioice.ice
import pytest
from prometheus_client import CollectorRegistry

from audio import Admission, Room, RoomRegistry
from audio.metrics import AudioMetrics
from tests.audio.rtc_harness import Client, eventually

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
