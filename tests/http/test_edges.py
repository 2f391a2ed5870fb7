"""The whole app's edges against hostile input: ids past 64 bits, oversized bodies
(declared or chunked), on every route that `stagepass run` serves."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.slack.config import MAX_BODY_BYTES as SLACK_BODY_BYTES
from audio.pages import PAGE_BODY_BYTES
from audio.signaling import OFFER_BODY_BYTES
from billing.webhooks import MAX_BODY_BYTES as STRIPE_BODY_BYTES
from bot.http.api import MAX_BODY_BYTES as API_BODY_BYTES
from bot.http.buying import BUY_BODY_BYTES
from bot.http.desk import DESK_BODY_BYTES
from bot.http.mytickets import TICKET_BODY_BYTES
from bot.models import MAX_ID
from bot.settings import Settings
from bot.wiring import Stagepass
from tests.http.conftest import error_of, operator, routes_of
from tests.services import drop_postgres_database, fresh_postgres_database

_PARAM = re.compile(r"\{(\w+)\}")
#: Ids no row can have: zero, negative, one past BIGINT, and far past 64 bits.
BAD_IDS = ("0", "-1", str(MAX_ID + 1), "99999999999999999999", "1" * 40)
#: What each body-taking route is documented to take, at most.
LIMITS = {
    "/api/v1/spaces": API_BODY_BYTES,
    "/api/v1/spaces/{space_id}/cancel": API_BODY_BYTES,
    "/api/v1/spaces/{space_id}/holds": API_BODY_BYTES,
    "/api/v1/tickets/verify": API_BODY_BYTES,
    "/webhooks/stripe": STRIPE_BODY_BYTES,
    "/billing/dev/checkout/{session_id}": 4 * 1024,
    "/rooms/{space_id}/offer": OFFER_BODY_BYTES,
    "/rooms/{space_id}/hand": PAGE_BODY_BYTES,
    "/rooms/{space_id}/stage": PAGE_BODY_BYTES,
    "/rooms/{space_id}/end": PAGE_BODY_BYTES,
    "/rooms/{space_id}/recording": PAGE_BODY_BYTES,
    "/slack/events": SLACK_BODY_BYTES,
    "/spaces/{space_id}/manage/refund": DESK_BODY_BYTES,
    "/spaces/{space_id}/manage/recordings": DESK_BODY_BYTES,
    "/tickets/{ticket_id}/refund": TICKET_BODY_BYTES,
    "/spaces/{space_id}/buy": BUY_BODY_BYTES,
    "/invites/{token}": BUY_BODY_BYTES,
}
#: The TEST MODE Pay button posts an empty form that is never read: a chunked body there is
#: left unread (and the connection closed), so it answers as if it had none.
READS_NO_BODY = {"/billing/dev/checkout/{session_id}"}


def _fill(path: str, value: str) -> str:
    return _PARAM.sub(value, path)


def _id_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [(m, p) for m, p in routes_of(app) if "{space_id}" in p or "{number}" in p]


async def _refuses_bad_ids(app: FastAPI, client: httpx.AsyncClient) -> None:
    routes = _id_routes(app)
    assert len(routes) >= 12  # the API's, the pages', the room's
    for method, path in routes:
        for bad in BAD_IDS:
            url = path.replace("{space_id}", bad).replace("{number}", bad)
            response = await client.request(method, _fill(url, "x"), json={})
            assert response.status_code in {404, 422}, (method, url, response.text)
            if response.headers["content-type"].startswith("application/json"):
                assert error_of(response)["type"] in {"invalid_input", "not_found"}


async def test_every_route_with_an_id_refuses_ids_no_row_can_have(
    full_app: FastAPI, full: httpx.AsyncClient
) -> None:
    await _refuses_bad_ids(full_app, full)


@pytest.mark.postgres
async def test_ids_past_an_integer_column_never_reach_postgres(settings: Settings) -> None:
    """PostgreSQL's INTEGER ids end at 2**31 - 1: one past it failed in the database (a
    500 from the API, the public page and the desk) where SQLite found no row."""
    url, name = fresh_postgres_database()
    settings.database_url = url
    try:
        built = await Stagepass.build(settings)
        try:
            app = built.http_app()
            app.state.ready = True
            async with operator(app) as client:
                await _refuses_bad_ids(app, client)
        finally:
            await built.close()
    finally:
        drop_postgres_database(name)


async def test_the_bounds_are_in_the_openapi_schema(full: httpx.AsyncClient) -> None:
    paths = (await full.get("/openapi.json")).json()["paths"]
    for path in ("/api/v1/spaces/{space_id}", "/rooms/{space_id}/offer"):
        [param] = [
            p
            for op in paths[path].values()
            for p in op.get("parameters", [])
            if p["name"] == "space_id"
        ][:1]
        assert param["schema"]["minimum"] == 1 and param["schema"]["maximum"] == MAX_ID


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(space_id=st.one_of(st.integers(), st.text(min_size=1, max_size=30)))
async def test_any_path_id_is_answered_without_a_server_error(
    full: httpx.AsyncClient, space_id: int | str
) -> None:
    """The app is shared by the examples: these GETs change nothing."""
    segment = quote(str(space_id), safe="") or "x"
    for path in ("/api/v1/spaces/{}", "/rooms/{}/info", "/rooms/{}/me", "/spaces/{}"):
        response = await full.get(path.format(segment))
        assert response.status_code < 500, (path, space_id, response.text)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_BODIES = st.one_of(
    st.binary(max_size=256),
    _JSON.map(lambda value: json.dumps(value).encode()),
    st.dictionaries(
        st.sampled_from(
            [
                "sdp",
                "type",
                "token",
                "up",
                "on",
                "host",
                "buyer",
                "quantity",
                "reason",
                "title",
                "capacity",
            ]
        ),
        _JSON,
        max_size=5,
    ).map(lambda value: json.dumps(value).encode()),
)
_IDS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(min_size=1, max_size=20).map(lambda t: quote(t, safe="")),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    ident=_IDS,
    body=_BODIES,
    kind=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "text/plain", ""]
    ),
)
async def test_any_id_and_body_on_any_route_is_answered_without_a_server_error(
    full_app: FastAPI,
    full: httpx.AsyncClient,
    data: st.DataObject,
    ident: str,
    body: bytes,
    kind: str,
) -> None:
    """Every route of the whole app, with hypothesis choosing the route, its ids and its
    body: whatever it is, the answer is not a 5xx."""
    method, path = data.draw(st.sampled_from(routes_of(full_app)))
    url = _fill(path, ident or "x")
    headers = {"Content-Type": kind} if kind else {}
    content = body if method in {"POST", "PUT", "PATCH"} else None
    response = await full.request(method, url, content=content, headers=headers)
    assert response.status_code < 500, (method, url, body[:80], response.text[:300])


def test_every_route_that_takes_a_body_has_a_limit(full_app: FastAPI) -> None:
    posts = {p for m, p in routes_of(full_app) if m in {"POST", "PUT", "PATCH"}}
    assert posts == set(LIMITS), "a new route that reads a body needs a max_body_size"
    assert LIMITS["/rooms/{space_id}/offer"] <= 80 * 1024  # an SDP offer is a few kB
    assert LIMITS["/webhooks/stripe"] == 64 * 1024


async def _chunks(total: int, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_past_its_route_limit_is_413_before_any_token_check(
    full: httpx.AsyncClient, chunked: bool
) -> None:
    for path, limit in LIMITS.items():
        if chunked and path in READS_NO_BODY:
            continue
        url = _fill(path, "1")
        size = limit + 1
        content = _chunks(size) if chunked else b"x" * size
        # no operator token, no ticket: the size is refused first
        response = await full.post(url, content=content, headers={"Authorization": ""})
        assert response.status_code == 413, (url, response.status_code, response.text)
        assert error_of(response)["type"] == "content_too_large"
        assert response.headers["connection"] == "close"
        assert "x-request-id" in response.headers


async def test_a_body_within_its_limit_is_read(full: httpx.AsyncClient) -> None:
    """Just under the limit is not refused for its size (it fails on what it says; that
    it fails well is the business of each route's own tests)."""
    for path, limit in LIMITS.items():
        response = await full.post(_fill(path, "1"), content=b"{" + b" " * (limit - 1))
        assert response.status_code != 413, (path, response.text)


#: Header values no client of ours sends: bytes that are not UTF-8, and 8 kB credentials.
HOSTILE_HEADERS: list[dict[bytes, bytes]] = [
    {b"Authorization": b"Bearer \xff\xfe", b"X-Request-ID": b"\xff" * 80},
    {b"Authorization": b"Bearer " + b"A" * 8000},
    {b"Cookie": b"stagepass_session=\xff\xfe; other=\x80"},
    {b"Cookie": b"stagepass_session=" + b"A" * 8000},
    {b"Content-Type": b"\xff/\xfe; charset=\xff", b"Range": b"bytes=\xff-"},
    {b"Stripe-Signature": b"t=\xff,v1=\xfe", b"X-Slack-Request-Timestamp": b"9" * 40},
]


@pytest.mark.parametrize("headers", HOSTILE_HEADERS, ids=range(len(HOSTILE_HEADERS)))
async def test_header_values_that_are_not_utf8_or_huge_get_no_server_error(
    full_app: FastAPI, full: httpx.AsyncClient, headers: dict[bytes, bytes]
) -> None:
    for method, path in routes_of(full_app):
        url = _fill(path, "1")
        response = await full.request(method, url, content=b"{}", headers=headers)
        assert response.status_code < 500, (method, url, headers, response.text[:300])
