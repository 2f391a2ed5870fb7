"""A NUL character (U+0000) in a request: PostgreSQL stores none, so text carrying one
failed deep in the work with a 500 (a claim's NUL buyer also cost its claim batch a failed
transaction before the batcher decided its claims one by one). Refused up front now: a 422
naming the body's field, or saying the address has one. On SQLite, and on PostgreSQL where
the 500s were."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

from bot.clock import ManualClock
from bot.core import Core
from bot.db import Database
from bot.http import create_app
from bot.http.middleware import NUL_IN_ADDRESS
from bot.http.schemas import NUL_MESSAGE
from bot.settings import Settings
from tests.http.conftest import TOKEN, error_of, operator, person, space_body

BODIES = [
    ("/api/v1/spaces", space_body(title="a\x00b"), "title"),
    ("/api/v1/spaces", space_body(description="\x00"), "description"),
    ("/api/v1/spaces", space_body(host=person("al\x00ice")), "host.user_id"),
    ("/api/v1/spaces", space_body(host=person("alice", community="g\x00")), "host.community"),
    ("/api/v1/spaces", space_body(host=person("alice", display_name="\x00")), "host.display_name"),
    ("/api/v1/spaces/1/holds", {"buyer": person("b\x00b")}, "buyer.user_id"),
    ("/api/v1/spaces/1/holds", {"buyer": person("bob"), "invite": "a\x00"}, "invite"),
    ("/api/v1/spaces/1/cancel", {"reason": "\x00"}, "reason"),
    ("/api/v1/tickets/verify", {"token": "\x00"}, "token"),
]
ADDRESSES = [
    "/api/v1/spaces?community=%00",
    "/api/v1/spaces?community=discord:g%00",
    "/api/v1/buyers/discord/g/%00/tickets",
    "/api/v1/buyers/discord/%00/bob/tickets",
    "/spaces/1%00",
    "/invites/%00",
]


async def refuses_nul(client: httpx.AsyncClient) -> None:
    made = await client.post("/api/v1/spaces", json=space_body())
    assert made.status_code == 201, made.text
    for path, body, field in BODIES:
        refused = await client.post(path, json=body)
        assert refused.status_code == 422, (path, field, refused.text)
        error = error_of(refused)
        assert (error["field"], error["message"]) == (field, f"{field}: {NUL_MESSAGE}")
    for path in ADDRESSES:
        refused = await client.get(path)
        assert refused.status_code == 422, (path, refused.text)
        assert error_of(refused)["message"] == NUL_IN_ADDRESS
        assert "x-request-id" in refused.headers
    held = await client.post("/api/v1/spaces/1/holds", json={"buyer": person("bob")})
    assert held.status_code == 201, held.text  # the claims after them go through
    listed = await client.get("/api/v1/spaces", params={"community": "discord:guild1"})
    assert [s["title"] for s in listed.json()["spaces"]] == ["Ask me anything"]


async def test_a_nul_character_is_refused_before_the_work_begins(
    client: httpx.AsyncClient,
) -> None:
    await refuses_nul(client)


@pytest.fixture
async def pg_client(settings: Settings, pg_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    core = Core.build(settings, db=pg_db, clock=ManualClock())
    app = create_app(core, api_token=TOKEN, registry=CollectorRegistry())
    try:
        async with operator(app) as client:
            yield client
    finally:
        await core.tickets.claims.close()
        await core.bus.close()


@pytest.mark.postgres
async def test_a_nul_character_is_refused_before_postgres_sees_it(
    pg_client: httpx.AsyncClient,
) -> None:
    await refuses_nul(pg_client)
