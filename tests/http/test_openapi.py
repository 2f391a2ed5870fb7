"""The OpenAPI document tells the truth: statuses, security, bounds, and OPTIONS."""

from __future__ import annotations

from typing import Any

import httpx

from bot.models import MAX_ID
from bot.settings import Settings
from tests.http.conftest import space_body


async def _schema(client: httpx.AsyncClient) -> dict[str, Any]:
    schema: dict[str, Any] = (await client.get("/openapi.json")).json()
    return schema


async def test_options_answers_every_method_of_the_path(full: httpx.AsyncClient) -> None:
    spaces = await full.options("/api/v1/spaces")
    assert spaces.status_code == 204
    assert spaces.headers["allow"] == "GET, POST, OPTIONS"
    assert (await full.options("/api/v1/spaces/3")).headers["allow"] == "GET, OPTIONS"
    wrong = await full.delete("/api/v1/spaces")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, POST, OPTIONS"
    assert (await full.options("/no/such/path")).status_code == 404


async def test_error_statuses_are_documented(full: httpx.AsyncClient) -> None:
    paths = (await _schema(full))["paths"]

    def codes(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert {"400", "401", "409", "413", "422"} <= codes("/api/v1/spaces", "post")
    assert {"400", "404", "409", "413"} <= codes("/api/v1/spaces/{space_id}/holds", "post")
    assert {"404", "409"} <= codes("/api/v1/spaces/{space_id}/cancel", "post")
    assert {"401", "403", "404", "409", "413", "422"} <= codes("/rooms/{space_id}/offer", "post")
    assert {"401", "403", "404"} <= codes("/rooms/{space_id}/state", "get")


async def test_room_routes_declare_the_ticket_token(full: httpx.AsyncClient) -> None:
    schema = await _schema(full)
    assert schema["components"]["securitySchemes"]["TicketToken"]["scheme"] == "bearer"
    for path, method in (("/rooms/{space_id}/offer", "post"), ("/rooms/{space_id}/state", "get")):
        assert schema["paths"][path][method]["security"] == [{"TicketToken": []}]
    operator = schema["paths"]["/api/v1/spaces"]["post"]["security"]
    assert operator == [{"HTTPBearer": []}]


async def test_bodies_show_the_deployments_limits(
    full: httpx.AsyncClient, settings: Settings
) -> None:
    models = (await _schema(full))["components"]["schemas"]
    space = models["SpaceCreate"]["properties"]
    assert space["title"]["minLength"] == 1
    assert space["title"]["maxLength"] == settings.max_title_length
    assert space["capacity"]["minimum"] == 1
    assert space["capacity"]["maximum"] == settings.max_tickets
    assert space["price_minor"]["minimum"] == 0
    assert space["description"]["maxLength"] == 2000
    quantity = models["HoldCreate"]["properties"]["quantity"]
    assert quantity["minimum"] == 1 and quantity["maximum"] == settings.max_per_buyer


async def test_the_bounds_are_the_cores(full: httpx.AsyncClient, settings: Settings) -> None:
    """Just past each documented bound is refused as the schema says (422)."""
    for overrides in (
        {"title": "x" * (settings.max_title_length + 1)},
        {"capacity": 0},
        {"capacity": settings.max_tickets + 1},
        {"price_minor": -1},
        {"description": "x" * 2001},
    ):
        response = await full.post("/api/v1/spaces", json=space_body(**overrides))
        assert response.status_code == 422, (overrides, response.text)
    paths = (await _schema(full))["paths"]
    [param] = paths["/rooms/{space_id}/state"]["get"]["parameters"]
    assert param["schema"]["maximum"] == MAX_ID
