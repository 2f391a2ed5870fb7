"""The JSON API's side of no seat hoarding (tests/test_hoarding.py has the rules): a claim
too fast is a 429 with Retry-After, and a Space shows its held seats apart from sold ones."""

from __future__ import annotations

import httpx

from bot.core import Core
from tests.fakes.payments import FakeGateway
from tests.http.conftest import error_of, person, space_body


async def test_the_api_answers_429_with_retry_after(client: httpx.AsyncClient, core: Core) -> None:
    space = (await client.post("/api/v1/spaces", json=space_body(capacity=10))).json()
    url = f"/api/v1/spaces/{space['id']}/holds"
    answers = [
        await client.post(url, json={"buyer": person("bob"), "quantity": 1}) for _ in range(6)
    ]
    assert [a.status_code for a in answers] == [201, 422, 422, 422, 422, 429]
    limited = answers[-1]
    assert limited.headers["Retry-After"] == "12"
    error = error_of(limited)
    assert error["type"] == "rate_limited" and "Try again in 12 seconds" in error["message"]
    spec = (await client.get("/openapi.json")).json()
    documented = spec["paths"]["/api/v1/spaces/{space_id}/holds"]["post"]["responses"]
    assert "Retry-After" in documented["429"]["headers"]
    await core.bus.drain()


async def test_the_api_shows_held_apart_from_sold(client: httpx.AsyncClient, core: Core) -> None:
    core.use_payments(FakeGateway())
    body = space_body(price_minor=500, capacity=4, per_buyer_limit=2)
    space = (await client.post("/api/v1/spaces", json=body)).json()
    url = f"/api/v1/spaces/{space['id']}"
    hold = await client.post(f"{url}/holds", json={"buyer": person("bob"), "quantity": 2})
    assert hold.status_code == 201, hold.text
    shown = (await client.get(url)).json()
    assert (shown["sold"], shown["held"], shown["tickets_left"]) == (0, 2, 2)
    await core.tickets.confirm(hold.json()["id"], reference="pi_bob")
    shown = (await client.get(url)).json()
    assert (shown["sold"], shown["held"], shown["tickets_left"]) == (2, 0, 2)
    await core.bus.drain()
