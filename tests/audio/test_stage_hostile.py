"""The room's stage routes (GET/POST /rooms/{id}/stage, POST /rooms/{id}/end) against
hostile input: ids no Space has, missing, forged, expired, overlong and other Spaces'
tokens, a listener's ticket, bodies huge, malformed or of the wrong type. Each answer is a
4xx with an error that says what is wrong, never a 500, and nothing changes: no stage
event, the hands and speakers and the Space's status as they were."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from audio.pages import PAGE_BODY_BYTES
from audio.signaling import MAX_TOKEN_CHARS
from bot.clock import ManualClock
from bot.events import SpaceEnded, StageChanged
from bot.models import MAX_ID, SpaceStatus
from bot.services.spaces import SpaceDraft
from tests.audio.conftest import HOST, Person, World
from tests.http.conftest import error_of

ROUTES = (("GET", "stage"), ("POST", "stage"), ("POST", "end"))
BAD_IDS = ("0", "-1", "abc", "1.5", "%20", str(MAX_ID + 1), "1" * 40)


class Watch:
    """What must not change: stage events, the stage, the Space's status."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.events: list[object] = []
        world.core.bus.subscribe(StageChanged, self._seen)
        world.core.bus.subscribe(SpaceEnded, self._seen)

    async def _seen(self, event: StageChanged | SpaceEnded) -> None:
        self.events.append(event)

    @contextlib.asynccontextmanager
    async def unchanged(self) -> AsyncIterator[None]:
        """The block changes nothing: no stage event, same stage, same status."""
        before = await self.snapshot()
        yield
        await self.world.core.bus.drain()
        assert self.events == []
        assert await self.snapshot() == before

    async def snapshot(self) -> tuple[object, ...]:
        core, space_id = self.world.core, self.world.space_id
        state = await core.stage.state(space_id)
        space = await core.spaces.get(space_id)
        return (
            space.status,
            [s.identity.key for s in state.queue],
            [(s.identity.key, s.seat.muted) for s in state.speakers],
        )


def refused(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The response is a 4xx (one of `statuses`, if given) with an error saying why."""
    where = (response.request.method, str(response.request.url), response.text[:300])
    assert 400 <= response.status_code < 500, where
    if statuses:
        assert response.status_code in statuses, where
    error = error_of(response)
    assert isinstance(error["message"], str) and error["message"].strip(), where
    return error


def url(space_id: int | str, route: str) -> str:
    return f"/rooms/{space_id}/{route}"


async def call(
    world: World,
    method: str,
    route: str,
    *,
    space_id: int | str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request; POSTs carry a well-formed body unless the caller gives one."""
    target = url(world.space_id if space_id is None else space_id, route)
    if method == "POST" and not {"json", "content", "data"} & set(kwargs):
        well_formed = {"action": "mute", "who": "discord:guild1:nobody"}
        kwargs["json"] = {"confirm": True} if route == "end" else well_formed
    return await world.http.request(method, target, headers=headers, **kwargs)


@pytest.fixture
async def watched(world: World) -> tuple[World, Person, Watch]:
    """The live Space with ann's hand raised and bob promoted; the watch set up after."""
    ann, bob = await world.ticket("ann"), await world.ticket("bob")
    raised = await world.http.post(
        f"/rooms/{world.space_id}/hand", json={"up": True}, headers=ann.bearer
    )
    assert raised.status_code == 200, raised.text
    promoted = await world.http.post(
        url(world.space_id, "stage"),
        json={"action": "promote", "who": bob.key},
        headers=world.host.bearer,
    )
    assert promoted.status_code == 200, promoted.text
    await world.core.bus.drain()
    return world, ann, Watch(world)


async def test_ids_no_space_has_are_refused(watched: tuple[World, Person, Watch]) -> None:
    world, _ann, watch = watched
    async with watch.unchanged():
        for method, route in ROUTES:
            for bad in BAD_IDS:
                response = await call(world, method, route, space_id=bad, headers=world.host.bearer)
                refused(response, 404, 422)
            # a Space id that could exist but does not: the host's pass is not for it
            response = await call(world, method, route, space_id=999, headers=world.host.bearer)
            refused(response, 401, 403, 404)


async def test_bad_forged_and_overlong_tokens_are_refused(
    watched: tuple[World, Person, Watch],
) -> None:
    world, ann, watch = watched
    async with watch.unchanged():
        token = world.host.token
        forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        payload, _, signature = token.partition(".")
        altered = payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + signature
        headers: list[dict[str, str]] = [
            {},
            {"Authorization": ""},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer "},
            {"Authorization": f"Basic {token}"},
            {"Authorization": f"Bearer {forged}"},
            {"Authorization": f"Bearer {altered}"},
            {"Authorization": "Bearer not-a-token"},
            {"Authorization": "Bearer ..."},
            {"Authorization": f"Bearer {token}.{token}"},
            {"Authorization": "Bearer " + "A" * (MAX_TOKEN_CHARS + 1)},
            {"Authorization": f"Bearer {token}" + "A" * MAX_TOKEN_CHARS},
        ]
        for method, route in ROUTES:
            for header in headers:
                refused(await call(world, method, route, headers=header), 401, 403)
            # a listener's own, valid ticket: the stage is for staff only
            refused(await call(world, method, route, headers=ann.bearer), 403)


async def test_another_spaces_pass_is_refused(watched: tuple[World, Person, Watch]) -> None:
    world, _ann, watch = watched
    core = world.core
    other = await core.spaces.create(
        HOST,
        SpaceDraft(
            title="Another night",
            starts_at=core.clock.now() + timedelta(hours=5),
            capacity=5,
        ),
    )
    assert other.id is not None
    identity = await core.identities.ensure(HOST)
    theirs = {"Authorization": f"Bearer {core.tickets.staff_token(other, identity, 'host')}"}
    async with watch.unchanged():
        for method, route in ROUTES:
            refused(await call(world, method, route, headers=theirs), 401, 403)
            # and this Space's pass on the other Space's room
            response = await call(
                world, method, route, space_id=other.id, headers=world.host.bearer
            )
            refused(response, 401, 403, 404, 409)
    assert (await core.spaces.get(other.id)).status == SpaceStatus.SCHEDULED


async def test_huge_malformed_and_mistyped_bodies_are_refused(
    watched: tuple[World, Person, Watch],
) -> None:
    world, ann, watch = watched
    async with watch.unchanged():
        host = world.host.bearer
        community = ann.key.rpartition(":")[0]
        as_json = {"Content-Type": "application/json"}
        raw_bodies: list[tuple[bytes, dict[str, str]]] = [
            (b"", as_json),
            (b"{", as_json),
            (b"[]", as_json),
            (b"null", as_json),
            (b"1e999", as_json),
            (b'"promote"', as_json),
            (b"\xff\xfe\x00garbage", as_json),
            (b"[" * 2000 + b"]" * 2000, as_json),
            (b'{"action": "promote", "who": "' + b"\\ud800" + b'"}', as_json),
            (
                json.dumps({"action": "mute", "who": ann.key}).encode(),
                {"Content-Type": "text/plain"},
            ),
            (b"action=mute&who=x", {"Content-Type": "application/x-www-form-urlencoded"}),
            (
                b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--",
                {"Content-Type": "multipart/form-data; boundary=b"},
            ),
            (b"<stage action='end'/>", {"Content-Type": "application/xml"}),
        ]
        stage_bodies: list[object] = [
            {},
            {"action": "promote"},
            {"who": ann.key},
            {"action": "explode", "who": ann.key},
            {"action": "PROMOTE", "who": ann.key},
            {"action": ["promote"], "who": ann.key},
            {"action": "promote", "who": 12345},
            {"action": "promote", "who": "ab"},
            {"action": "promote", "who": "x" * 201},
            {"action": "promote", "who": ann.key, "also": "end"},
            {"action": "promote", "who": "slack:T1:ann"},  # another community
            {"action": "promote", "who": f"{community}:nobody"},  # nobody in this Space
            {"action": "promote", "who": f"{community}:"},
            {"action": "remove", "who": world.host.key},  # the host is not removed
        ]
        end_bodies: list[object] = [
            {},
            {"confirm": False},
            {"confirm": "true"},
            {"confirm": 1},
            {"confirm": None},
            {"confirm": True, "also": 1},
            [{"confirm": True}],
        ]
        for route in ("stage", "end"):
            too_big = b"{" + b" " * PAGE_BODY_BYTES + b"}"
            refused(await call(world, "POST", route, headers=host, content=too_big), 413)
            for content, content_type in raw_bodies:
                response = await call(
                    world, "POST", route, headers={**host, **content_type}, content=content
                )
                refused(response)
        for body in stage_bodies:
            refused(await call(world, "POST", "stage", headers=host, json=body))
        for body in end_bodies:
            refused(await call(world, "POST", "end", headers=host, json=body), 422)
        for method in ("PUT", "PATCH", "DELETE"):
            for route in ("stage", "end"):
                refused(await call(world, method, route, headers=host), 405)


async def test_an_expired_pass_is_refused(
    watched: tuple[World, Person, Watch], clock: ManualClock
) -> None:
    world, ann, watch = watched
    async with watch.unchanged():
        clock.advance(timedelta(days=30))  # past the Space's end and every pass's expiry
        for method, route in ROUTES:
            for person in (world.host, ann):
                refused(await call(world, method, route, headers=person.bearer), 401, 403, 409)
