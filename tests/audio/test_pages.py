"""The room page and its endpoints on the real app, and the core's events driving the room."""

from __future__ import annotations

import re

from audio import Role, Room
from bot.actors import UserRef
from tests.audio.conftest import HOST, World
from tests.waiting import eventually


def role_of(room: Room, key: str) -> str | None:
    session = room.session(key)
    return None if session is None else session.role.value


def muted(room: Room, key: str) -> bool:
    session = room.session(key)
    return session is not None and session.muted


async def test_the_page_is_self_contained_and_locked_down(world: World) -> None:
    page = await world.http.get(f"/rooms/{world.space_id}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert '<h1 id="room-title">Night radio</h1>' in html
    assert 'Hosted by <strong id="host-name">Hal</strong>' in html
    assert '<script src="/audio/room.js" defer></script>' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from elsewhere
    assert "<script>" not in html  # no inline script (CSP would block it)
    for asset, kind in (("room.js", "text/javascript"), ("room.css", "text/css")):
        response = await world.http.get(f"/audio/{asset}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
        assert "http://" not in response.text and "https://" not in response.text
    assert (await world.http.get("/audio/secrets.txt")).status_code == 404


async def test_unknown_rooms_get_a_404_page(world: World) -> None:
    for path in ("/rooms/999", "/rooms/abc", "/rooms/%3Cscript%3E"):
        page = await world.http.get(path)
        assert page.status_code == 404, path
        assert "There is no such Space" in page.text and "<script" not in page.text


async def test_info_is_public_and_carries_the_start_and_server_time(world: World) -> None:
    body = (await world.http.get(f"/rooms/{world.space_id}/info")).json()
    assert body["title"] == "Night radio" and body["host_name"] == "Hal"
    assert body["status"] == "live"
    assert body["starts_at"].startswith("2030-01-01T14:00:00")  # the test clock + 2 h
    assert body["now"].startswith("2030-01-01T12:00:00")
    assert (await world.http.get("/rooms/999/info")).status_code == 404


async def test_me_needs_a_ticket_and_tells_the_role(world: World) -> None:
    url = f"/rooms/{world.space_id}/me"
    assert (await world.http.get(url)).status_code == 401
    assert (await world.http.get(url, headers={"Authorization": "Bearer x.y"})).status_code == 401
    ann = await world.ticket("ann")
    me = (await world.http.get(url, headers=ann.bearer)).json()
    assert me == {
        "display_name": "Ann",
        "role": "listener",
        "muted": False,
        "hand_raised": False,
        "can_record": False,
        "runs_stage": False,
        "ice_servers": [],
    }
    host = (await world.http.get(url, headers=world.host.bearer)).json()
    assert host["role"] == "host" and host["can_record"] is True and host["runs_stage"] is True


async def test_raising_and_lowering_a_hand(world: World) -> None:
    ann = await world.ticket("ann")
    url = f"/rooms/{world.space_id}/hand"
    response = await world.http.post(url, json={"up": True}, headers=ann.bearer)
    assert response.status_code == 200 and response.json() == {"up": True}
    queue = (await world.core.stage.state(world.space_id)).queue
    assert [seat.identity.user_id for seat in queue] == ["ann"]
    again = await world.http.post(url, json={"up": True}, headers=ann.bearer)
    assert again.status_code == 200 and again.json() == {"up": True}  # a retry is harmless
    await world.core.bus.drain()
    me = (await world.http.get(f"/rooms/{world.space_id}/me", headers=ann.bearer)).json()
    assert me["hand_raised"] is True

    response = await world.http.post(url, json={"up": False}, headers=ann.bearer)
    assert response.json() == {"up": False}
    assert (await world.core.stage.state(world.space_id)).queue == []


async def test_hands_are_for_ticket_holders_in_the_live_room(world: World) -> None:
    url = f"/rooms/{world.space_id}/hand"
    assert (await world.http.post(url, json={"up": True})).status_code == 401
    response = await world.http.post(url, json={"up": True}, headers=world.host.bearer)
    assert response.status_code == 409  # the host is on stage already
    assert response.json()["error"]["message"] == "You are already on stage."
    ann = await world.ticket("ann")
    for loose in ("yes please", "true", 1):  # JSON true or false only
        response = await world.http.post(url, json={"up": loose}, headers=ann.bearer)
        assert response.status_code == 422, loose
    assert (await world.core.stage.state(world.space_id)).queue == []
    await world.core.spaces.end(HOST, world.space_id)
    await world.core.bus.drain()
    response = await world.http.post(url, json={"up": True}, headers=ann.bearer)
    assert response.status_code == 403


async def test_stage_events_drive_the_room(world: World) -> None:
    """Promote, mute, demote, remove and refund reach a connected session within 200 ms."""
    core, space_id = world.core, world.space_id
    ann = await world.ticket("ann")
    bob = await world.ticket("bob")
    await world.join(world.host, tone=440)
    await world.join(ann)
    await world.join(bob)
    room = world.room()

    await core.stage.promote(HOST, space_id, UserRef("ann"))
    await eventually(lambda: role_of(room, ann.key) == Role.SPEAKER, what="promoted")

    await core.stage.mute(HOST, space_id, UserRef("ann"))
    await eventually(lambda: muted(room, ann.key), what="muted")
    await core.stage.mute(HOST, space_id, UserRef("ann"), muted=False)
    await eventually(lambda: not muted(room, ann.key), what="unmuted")
    await core.stage.demote(HOST, space_id, UserRef("ann"))
    await eventually(lambda: role_of(room, ann.key) == Role.LISTENER, what="demoted")

    await core.stage.remove(HOST, space_id, UserRef("ann"))
    await eventually(lambda: ann.key not in room, what="removed")

    assert bob.ticket_id is not None
    await core.tickets.close(bob.ticket_id, refunded=True, reason="Refunded")
    await eventually(lambda: bob.key not in room, what="refunded ticket dropped")

    state = (await world.http.get(f"/rooms/{space_id}/state", headers=world.host.bearer)).json()
    assert [p["display_name"] for p in state["participants"]] == ["Hal"]
    assert state["listener_count"] == 0 and state["recording"] is False


async def test_cohosts_join_the_stage_and_the_end_closes_the_room(world: World) -> None:
    cy = await world.ticket("cy")
    await world.join(cy)
    room = world.room()
    await world.core.spaces.set_cohost(HOST, world.space_id, UserRef("cy", "Cy"), add=True)
    await eventually(lambda: role_of(room, cy.key) == Role.SPEAKER, what="co-host on stage")
    await world.core.spaces.end(HOST, world.space_id)
    await eventually(lambda: world.audio.registry.get(world.space_id) is None, what="room closed")
    assert room.closed


async def test_a_rejoin_keeps_a_moderators_mute(world: World) -> None:
    sam = await world.ticket("sam")
    await world.core.stage.promote(HOST, world.space_id, UserRef("sam"))
    await world.core.stage.mute(HOST, world.space_id, UserRef("sam"))
    await world.core.bus.drain()
    await world.join(sam, tone=1_000)
    assert role_of(world.room(), sam.key) == Role.SPEAKER and muted(world.room(), sam.key)


async def test_background_job_reconciles_rooms_with_live_spaces(world: World) -> None:
    audio = world.audio
    await audio.registry.close(world.space_id)  # as if the start happened elsewhere
    await audio.reconcile()
    assert audio.registry.get(world.space_id) is not None
    await world.core.spaces.end(HOST, world.space_id)  # and the end is missed:
    await world.core.bus.drain()
    await audio.registry.open(world.space_id)
    await audio.reconcile()
    assert audio.registry.get(world.space_id) is None
