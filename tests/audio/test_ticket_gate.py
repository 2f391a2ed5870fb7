"""The core's Gate: real tokens, tickets, Spaces and stage rows decide who gets in, and as what.

The HTTP tests count peer connections: a refused token must never make the server build one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from audio import Forbidden, Role, Unauthorized
from audio.metrics import AudioMetrics
from audio.ticket_gate import TicketGate
from bot.actors import Actor, UserRef
from bot.core import Core
from bot.models import Platform
from bot.services.spaces import SpaceDraft
from bot.settings import Settings
from tests.audio.conftest import HOST, World, build_world, close_world
from tests.audio.rtc_harness import Client, PeerSpy


async def refusal(world: World, token: str) -> type[Exception]:
    with pytest.raises((Unauthorized, Forbidden)) as caught:
        await world.audio.gate.admit(world.space_id, token)
    return caught.type


async def test_a_ticket_holder_is_admitted_as_a_listener(world: World) -> None:
    ann = await world.ticket("ann")
    admission = await world.audio.gate.admit(world.space_id, ann.token)
    assert admission.identity_key == ann.key == "discord:guild1:ann"
    assert admission.display_name == "Ann"
    assert admission.role == Role.LISTENER and not admission.muted
    assert admission.ticket_id == ann.ticket_id


async def test_forged_and_missing_tokens_are_unauthorized(world: World) -> None:
    ann = await world.ticket("ann")
    body, _, signature = ann.token.partition(".")
    forged = f"{body}.{signature[::-1]}"
    for token in ("", "   ", "not-a-token", forged):
        assert await refusal(world, token) is Unauthorized


async def test_a_revoked_or_refunded_ticket_is_forbidden(world: World) -> None:
    ann = await world.ticket("ann")
    await world.audio.gate.admit(world.space_id, ann.token)  # cached as admitted
    assert ann.ticket_id is not None
    await world.core.tickets.close(ann.ticket_id, refunded=False, reason="Chargeback")
    await world.core.bus.drain()  # TicketClosed makes the gate forget its cached pass
    assert await refusal(world, ann.token) is Forbidden


async def test_a_ticket_for_another_space_is_forbidden(world: World) -> None:
    other = await world.core.spaces.create(
        HOST,
        SpaceDraft(
            title="Other", starts_at=world.core.clock.now() + timedelta(hours=5), capacity=5
        ),
    )
    await world.core.spaces.start(HOST, other.id or 0, confirm=True)
    oz = await world.ticket("oz", space=other)
    assert await refusal(world, oz.token) is Forbidden
    admission = await world.audio.gate.admit(other.id or 0, oz.token)  # fine for its own
    assert admission.space_id == other.id


async def test_a_space_that_is_not_live_is_forbidden(
    core: Core, settings: Settings, metrics: AudioMetrics
) -> None:
    world = await build_world(core, settings, metrics, live=False)
    try:
        ann = await world.ticket("ann")
        with pytest.raises(Forbidden, match="not started"):
            await world.audio.gate.admit(world.space_id, ann.token)
        await world.start()
        await world.audio.gate.admit(world.space_id, ann.token)
        await core.spaces.end(HOST, world.space_id)
        await core.bus.drain()
        with pytest.raises(Forbidden, match="ended"):
            await world.audio.gate.admit(world.space_id, ann.token)
        # ... but a ticket still opens the replay of an ended Space
        found = await world.audio.gate.check(world.space_id, ann.token, live=False)
        assert found.identity.user_id == "ann"
    finally:
        await close_world(world)


async def test_a_removed_participant_is_forbidden(world: World) -> None:
    ann = await world.ticket("ann")
    await world.audio.gate.admit(world.space_id, ann.token)
    await world.core.stage.remove(HOST, world.space_id, UserRef("ann"))
    await world.core.bus.drain()
    with pytest.raises(Forbidden, match="removed"):
        await world.audio.gate.admit(world.space_id, ann.token)


async def test_roles_come_from_the_space_and_its_stage(world: World) -> None:
    core, space_id = world.core, world.space_id
    gate = world.audio.gate
    host = await gate.admit(space_id, world.host.token)
    assert host.role == Role.HOST and host.ticket_id is None and host.display_name == "Hal"

    await core.spaces.set_cohost(HOST, space_id, UserRef("cora", "Cora"), add=True)
    cora = await world.staff(Actor(Platform.DISCORD, "guild1", "cora", "Cora"), "cohost")
    assert (await gate.admit(space_id, cora.token)).role == Role.COHOST

    mod = await world.staff(Actor(Platform.DISCORD, "guild1", "mo", "Mo"), "moderator")
    assert (await gate.admit(space_id, mod.token)).role == Role.LISTENER  # runs the stage

    sam = await world.ticket("sam")
    await core.stage.promote(HOST, space_id, UserRef("sam"))
    await core.stage.mute(HOST, space_id, UserRef("sam"))
    await core.bus.drain()
    admission = await gate.admit(space_id, sam.token)
    assert admission.role == Role.SPEAKER and admission.muted  # promoted earlier, muted


async def test_passes_are_cached_until_the_space_changes(world: World) -> None:
    now = [0.0]
    gate = TicketGate(world.core, cache_seconds=5, clock=lambda: now[0])
    ann = await world.ticket("ann")
    first = await gate.check(world.space_id, ann.token)
    assert await gate.check(world.space_id, ann.token) is first
    now[0] = 6.0
    assert await gate.check(world.space_id, ann.token) is not first  # expired
    cached = await gate.check(world.space_id, ann.token)
    gate.forget(world.space_id)
    assert await gate.check(world.space_id, ann.token) is not cached


@pytest.fixture
async def spied(
    core: Core, settings: Settings, metrics: AudioMetrics
) -> AsyncIterator[tuple[World, PeerSpy]]:
    spy = PeerSpy()
    world = await build_world(core, settings, metrics, peer_factory=spy)
    try:
        yield world, spy
    finally:
        await close_world(world)


async def test_refused_offers_never_create_a_peer(spied: tuple[World, PeerSpy]) -> None:
    world, spy = spied
    ann = await world.ticket("ann")
    bob = await world.ticket("bob")
    assert bob.ticket_id is not None
    await world.core.tickets.close(bob.ticket_id, refunded=True, reason="Refunded")
    cy = await world.ticket("cy")
    await world.core.stage.remove(HOST, world.space_id, UserRef("cy"))
    await world.core.bus.drain()
    client = Client("browser")
    try:
        sdp, kind = await client.offer()
        cases = {"forged": 401, "": 401, bob.token: 403, cy.token: 403}
        for token, status in cases.items():
            response = await world.http.post(
                f"/rooms/{world.space_id}/offer", json={"sdp": sdp, "type": kind, "token": token}
            )
            assert response.status_code == status, (token, response.text)
            assert response.json()["error"]["message"]
        # the same ticket holder, at the wrong Space's door
        response = await world.http.post(
            f"/rooms/{world.space_id + 1}/offer",
            json={"sdp": sdp, "type": kind, "token": ann.token},
        )
        assert response.status_code == 403
        assert spy.created == 0
        response = await world.http.post(
            f"/rooms/{world.space_id}/offer", json={"sdp": sdp, "type": kind, "token": ann.token}
        )
        assert response.status_code == 200 and spy.created == 1
    finally:
        await client.close()
