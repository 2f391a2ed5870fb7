"""The operator API end to end over ASGI: auth, the free-Space story, bad input, paid holds."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from nacl.signing import VerifyKey

from bot.clock import ManualClock
from bot.core import Core
from bot.services.eligibility import HostEligibility
from bot.tokens import TokenVerifier
from tests.fakes.payments import FakeGateway
from tests.http.conftest import error_of, person, space_body


async def test_api_needs_the_bearer_token(anon: httpx.AsyncClient) -> None:
    missing = await anon.get("/api/v1/spaces")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert error_of(missing)["type"] == "unauthorized"

    wrong = await anon.get("/api/v1/spaces", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer")

    basic = await anon.get("/api/v1/spaces", headers={"Authorization": "Basic dGVzdC10b2tlbg=="})
    assert basic.status_code == 401

    right = await anon.get("/api/v1/spaces", headers={"Authorization": "Bearer test-token"})
    assert right.status_code == 200


async def test_free_space_story(client: httpx.AsyncClient, core: Core) -> None:
    created = await client.post("/api/v1/spaces", json=space_body(capacity=1))
    assert created.status_code == 201, created.text
    space = created.json()
    assert space["title"] == "Ask me anything"
    assert space["starts_at"] == "2030-01-03T16:00:00Z"  # normalised to UTC
    assert space["ends_at"] == "2030-01-03T17:00:00Z"
    assert space["price_minor"] == 0 and space["currency"] == "usd"
    assert space["host"] == person("alice", display_name="Alice")
    assert space["community_id"] == "discord:guild1"
    assert space["status"] == "scheduled" and space["tickets_left"] == 1
    assert space["page_url"] == f"http://stagepass.test/spaces/{space['id']}"
    space_id = space["id"]

    listed = await client.get("/api/v1/spaces")
    assert [s["id"] for s in listed.json()["spaces"]] == [space_id]
    filtered = await client.get("/api/v1/spaces", params={"community": "discord:guild1"})
    assert [s["id"] for s in filtered.json()["spaces"]] == [space_id]
    elsewhere = await client.get("/api/v1/spaces", params={"community": "discord:other"})
    assert elsewhere.json() == {"spaces": []}

    got = await client.get(f"/api/v1/spaces/{space_id}")
    assert got.status_code == 200 and got.json() == space

    held = await client.post(
        f"/api/v1/spaces/{space_id}/holds", json={"buyer": person("bob"), "quantity": 1}
    )
    assert held.status_code == 201, held.text
    hold = held.json()
    assert hold["status"] == "confirmed" and hold["checkout_url"] is None
    assert hold["amount_minor"] == 0 and hold["quantity"] == 1
    [ticket] = hold["tickets"]
    token = ticket["token"]
    assert ticket["status"] == "valid"
    assert ticket["join_url"] == f"http://stagepass.test/rooms/{space_id}#token={token}"

    verified = await client.post("/api/v1/tickets/verify", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json() == {
        "valid": True,
        "ticket_id": ticket["id"],
        "space_id": space_id,
        "holder": person("bob", display_name="bob"),
        "role": "listener",
        "expires_at": "2030-01-04T17:00:00Z",
    }
    other_space = await client.post(
        "/api/v1/tickets/verify", json={"token": token, "space_id": space_id + 1}
    )
    assert other_space.status_code == 401

    mine = await client.get("/api/v1/buyers/discord/guild1/bob/tickets")
    assert mine.status_code == 200
    assert [(t["id"], t["token"]) for t in mine.json()["tickets"]] == [(ticket["id"], token)]

    sold_out = await client.post(
        f"/api/v1/spaces/{space_id}/holds", json={"buyer": person("carol"), "quantity": 1}
    )
    assert sold_out.status_code == 409
    assert error_of(sold_out)["type"] == "sold_out"

    cancelled = await client.post(
        f"/api/v1/spaces/{space_id}/cancel", json={"reason": "Host is ill"}
    )
    assert cancelled.status_code == 200, cancelled.text
    result = cancelled.json()
    assert result["tickets_closed"] == 1 and result["tickets_failed"] == 0
    assert result["space"]["status"] == "cancelled"
    assert result["space"]["cancel_reason"] == "Host is ill"

    revoked = await client.post("/api/v1/tickets/verify", json={"token": token})
    assert revoked.status_code == 403
    assert error_of(revoked) == {
        "type": "permission_denied",
        "message": "This ticket was revoked.",
        "field": None,
    }

    again = await client.post(f"/api/v1/spaces/{space_id}/cancel", json={})
    assert again.status_code == 409 and error_of(again)["type"] == "conflict"

    assert (await client.get("/api/v1/buyers/discord/guild1/bob/tickets")).json() == {"tickets": []}
    closed = await client.get(
        "/api/v1/buyers/discord/guild1/bob/tickets", params={"include_closed": "true"}
    )
    [gone] = closed.json()["tickets"]
    assert gone["status"] == "revoked" and gone["token"] is None and gone["join_url"] is None
    await core.bus.drain()


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"price_minor": -1}, "price_minor", "negative"),
        ({"currency": "xyz"}, "currency", "Unknown currency"),
        ({"capacity": 0}, "capacity", "at least 1 ticket"),
        ({"starts_at": "2029-12-31T12:00:00Z"}, "starts_at", "in the past"),
        ({"starts_at": "2030-01-03T18:00:00"}, "starts_at", "UTC offset"),
        ({"starts_at": "next friday"}, "starts_at", "datetime"),
        ({"title": "x" * 101}, "title", "limit is 100"),
        ({"title": "   "}, "title", "needs a title"),
        ({"capacity": "many"}, "capacity", "integer"),
        ({"duration_minutes": 100_000}, "duration_minutes", "duration"),
        ({"priced": 5}, "priced", "Extra inputs"),
        ({"host": person("has space")}, "host.user_id", "pattern"),
    ],
)
async def test_bad_space_input_is_422(
    client: httpx.AsyncClient, overrides: dict[str, Any], field: str, words: str
) -> None:
    response = await client.post("/api/v1/spaces", json=space_body(**overrides))
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["type"] == "invalid_input"
    assert error["field"] == field
    assert words in error["message"]


async def test_malformed_and_missing_bodies_are_422(client: httpx.AsyncClient) -> None:
    broken = await client.post(
        "/api/v1/spaces", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422 and error_of(broken)["type"] == "invalid_input"

    body = space_body()
    del body["host"]
    missing = await client.post("/api/v1/spaces", json=body)
    assert missing.status_code == 422 and error_of(missing)["field"] == "host"

    bad_id = await client.get("/api/v1/spaces/abc")
    assert bad_id.status_code == 422 and error_of(bad_id)["field"] == "space_id"


async def test_limits_and_lookups(client: httpx.AsyncClient, core: Core) -> None:
    unknown = await client.get("/api/v1/spaces/999")
    assert unknown.status_code == 404
    assert error_of(unknown) == {
        "type": "not_found",
        "message": "There is no Space #999.",
        "field": None,
    }

    too_many = await client.post("/api/v1/spaces", json=space_body(capacity=1_000_000))
    assert too_many.status_code == 422 and error_of(too_many)["type"] == "limit_exceeded"

    space_id = (await client.post("/api/v1/spaces", json=space_body(capacity=5))).json()["id"]
    greedy = await client.post(
        f"/api/v1/spaces/{space_id}/holds", json={"buyer": person("bob"), "quantity": 2}
    )
    assert greedy.status_code == 422 and error_of(greedy)["type"] == "limit_exceeded"
    zero = await client.post(
        f"/api/v1/spaces/{space_id}/holds", json={"buyer": person("bob"), "quantity": 0}
    )
    assert zero.status_code == 422 and error_of(zero)["field"] == "quantity"
    stranger = await client.post(
        f"/api/v1/spaces/{space_id}/holds", json={"buyer": person("bob", community="other")}
    )
    assert stranger.status_code == 404
    host = await client.post(f"/api/v1/spaces/{space_id}/holds", json={"buyer": person("alice")})
    assert host.status_code == 409

    nobody = await client.get("/api/v1/buyers/discord/guild1/nobody/tickets")
    assert nobody.status_code == 200 and nobody.json() == {"tickets": []}
    bad_platform = await client.get("/api/v1/buyers/myspace/guild1/bob/tickets")
    assert bad_platform.status_code == 422 and error_of(bad_platform)["field"] == "platform"

    assert (await client.post("/api/v1/tickets/verify", json={"token": "a.b"})).status_code == 401
    await core.bus.drain()


async def test_host_eligibility_applies(client: httpx.AsyncClient, core: Core) -> None:
    core.spaces.eligibility = HostEligibility(["moderators"])
    refused = await client.post("/api/v1/spaces", json=space_body())
    assert refused.status_code == 403
    assert error_of(refused)["type"] == "permission_denied"


async def test_paid_space_without_billing_is_501(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/spaces", json=space_body(price_minor=500))
    assert response.status_code == 501
    assert error_of(response)["type"] == "not_configured"


async def test_paid_hold_returns_the_checkout_then_refunds_on_cancel(
    client: httpx.AsyncClient, core: Core
) -> None:
    gateway = FakeGateway()
    core.use_payments(gateway)
    created = await client.post(
        "/api/v1/spaces", json=space_body(price_minor=1250, currency="EUR", capacity=3)
    )
    assert created.status_code == 201, created.text
    space = created.json()
    assert (space["price_minor"], space["currency"]) == (1250, "eur")

    held = await client.post(f"/api/v1/spaces/{space['id']}/holds", json={"buyer": person("bob")})
    assert held.status_code == 201, held.text
    hold = held.json()
    assert hold["status"] == "active" and hold["tickets"] == []
    assert hold["checkout_url"] == f"https://pay.test/{hold['id']}"
    assert (hold["amount_minor"], hold["currency"]) == (1250, "eur")
    assert hold["expires_at"] == "2030-01-01T12:30:00Z"

    await core.tickets.confirm(hold["id"], reference="pi_test")
    [ticket] = (await client.get("/api/v1/buyers/discord/guild1/bob/tickets")).json()["tickets"]
    assert ticket["price_minor"] == 1250 and ticket["token"]

    result = (await client.post(f"/api/v1/spaces/{space['id']}/cancel", json={})).json()
    assert result["tickets_closed"] == 1 and gateway.refunded == [ticket["id"]]
    verify = await client.post("/api/v1/tickets/verify", json={"token": ticket["token"]})
    assert verify.status_code == 403 and "refunded" in error_of(verify)["message"]
    await core.bus.drain()


async def test_public_key_verifies_tokens_offline(
    client: httpx.AsyncClient, core: Core, clock: ManualClock
) -> None:
    key = (await client.get("/api/v1/keys/ticket")).json()
    assert key["algorithm"] == "Ed25519"
    space_id = (await client.post("/api/v1/spaces", json=space_body())).json()["id"]
    hold = (
        await client.post(f"/api/v1/spaces/{space_id}/holds", json={"buyer": person("bob")})
    ).json()
    token = hold["tickets"][0]["token"]

    raw = base64.urlsafe_b64decode(key["public_key"] + "=" * (-len(key["public_key"]) % 4))
    claims = TokenVerifier(VerifyKey(raw)).verify(token, now=clock.now())
    assert claims.ticket_id == hold["tickets"][0]["id"] and claims.space_id == space_id
    await core.bus.drain()


async def test_oversized_bodies_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/spaces", json=space_body(description="x" * 70_000))
    assert response.status_code == 413
