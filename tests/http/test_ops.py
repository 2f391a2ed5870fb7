"""Health, metrics, request ids, the error envelope for the unexpected, and OpenAPI."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from bot.core import Core
from bot.errors import ConfigError, SoldOut, UserError
from bot.http import create_app
from bot.http.errors import snake_case, status_for
from bot.tokens import InvalidToken
from tests.http.conftest import BASE_URL, TOKEN, person, space_body


async def test_health_is_503_until_ready(app: FastAPI, anon: httpx.AsyncClient) -> None:
    starting = await anon.get("/healthz")
    assert starting.status_code == 503 and starting.json() == {"status": "starting"}
    app.state.ready = True
    ready = await anon.get("/healthz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok"}


async def test_metrics_count_requests_by_route_template_and_domain_events(
    client: httpx.AsyncClient, core: Core, registry: CollectorRegistry
) -> None:
    space_id = (await client.post("/api/v1/spaces", json=space_body())).json()["id"]
    for _ in range(2):
        await client.get(f"/api/v1/spaces/{space_id}")
    await client.get("/api/v1/spaces/4242")
    await client.get("/no/such/path/123")
    await client.post(f"/api/v1/spaces/{space_id}/holds", json={"buyer": person("bob")})
    await core.bus.drain()

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    route = "/api/v1/spaces/{space_id}"
    assert value("stagepass_http_requests_total", method="GET", route=route, status="200") == 2
    assert value("stagepass_http_requests_total", method="GET", route=route, status="404") == 1
    assert (
        value("stagepass_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    )
    assert value("stagepass_http_request_duration_seconds_count", method="GET", route=route) == 3
    assert value("stagepass_tickets_issued_total") == 1
    assert value("stagepass_holds_created_total") == 1
    assert value("stagepass_space_transitions_total", transition="announced") == 1

    text = (await client.get("/metrics")).text
    assert f'route="/api/v1/spaces/{space_id}"' not in text  # templates, never raw paths
    for name in (
        "stagepass_http_requests_total",
        "stagepass_http_request_duration_seconds",
        "stagepass_http_requests_in_flight",
        "stagepass_http_unhandled_errors_total",
        "stagepass_tickets_issued_total",
        "stagepass_tickets_closed_total",
        "stagepass_holds_created_total",
        "stagepass_holds_released_total",
        "stagepass_space_transitions_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


async def test_metrics_serve_the_default_registry(core: Core) -> None:
    app = create_app(core, api_token=TOKEN)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "python_info" in response.text  # the default collectors
    assert "stagepass_http_requests_total" in response.text


async def test_watching_the_bus_twice_counts_once(core: Core, registry: CollectorRegistry) -> None:
    create_app(core, api_token=TOKEN, registry=registry)
    app = create_app(core, api_token=TOKEN, registry=registry)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        await client.post("/api/v1/spaces", json=space_body())
    await core.bus.drain()
    assert (
        registry.get_sample_value("stagepass_space_transitions_total", {"transition": "announced"})
        == 1
    )


async def test_unexpected_errors_are_a_logged_generic_500(
    core: Core, registry: CollectorRegistry
) -> None:
    boom = APIRouter()

    @boom.get("/boom/{n}")
    async def explode(n: int) -> None:
        raise RuntimeError("database password is hunter2")

    app = create_app(core, api_token=TOKEN, routers=[boom], registry=registry)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        with capture_logs() as logs:
            response = await client.get("/boom/1", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "internal_error" and error["field"] is None
    assert "hunter2" not in response.text
    assert error["request_id"] == "req-42" == response.headers["x-request-id"]
    [entry] = [e for e in logs if e["log_level"] == "error"]
    assert entry["request_id"] == "req-42" and entry["route"] == "/boom/{n}"
    assert isinstance(entry["exc_info"], RuntimeError)
    assert (
        registry.get_sample_value(
            "stagepass_http_requests_total",
            {"method": "GET", "route": "/boom/{n}", "status": "500"},
        )
        == 1
    )


async def test_mounted_apps_are_labelled_by_template(
    core: Core, registry: CollectorRegistry
) -> None:
    async def room(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["rid"])

    extra = APIRouter()
    extra.mount("/rooms", Starlette(routes=[Route("/{rid}/signal", room)]))
    app = create_app(core, api_token=TOKEN, routers=[extra], registry=registry)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        assert (await client.get("/rooms/7/signal")).text == "7"
    assert (
        registry.get_sample_value(
            "stagepass_http_requests_total",
            {"method": "GET", "route": "/rooms/{rid}/signal", "status": "200"},
        )
        == 1
    )


async def test_request_ids_are_echoed_or_made(anon: httpx.AsyncClient) -> None:
    given = await anon.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await anon.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"})
    assert len(made.headers["x-request-id"]) == 32


async def test_framework_errors_use_the_envelope(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/api/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "not_found"
    wrong_method = await client.delete("/api/v1/spaces")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["type"] == "method_not_allowed"
    assert wrong_method.headers["allow"]


def test_error_types_and_statuses() -> None:
    assert snake_case("SoldOut") == "sold_out"
    assert snake_case("InvalidToken") == "invalid_token"
    assert status_for(SoldOut("x")) == 409
    assert status_for(InvalidToken("x")) == 401

    class Odd(UserError):
        pass

    assert status_for(Odd("x")) == 400


def test_an_empty_api_token_is_refused(core: Core) -> None:
    with pytest.raises(ConfigError, match="STAGEPASS_API_TOKEN"):
        create_app(core, api_token=" ")


async def test_openapi_lists_every_route(anon: httpx.AsyncClient) -> None:
    schema = (await anon.get("/openapi.json")).json()
    assert set(schema["paths"]) >= {
        "/healthz",
        "/metrics",
        "/api/v1/spaces",
        "/api/v1/spaces/{space_id}",
        "/api/v1/spaces/{space_id}/cancel",
        "/api/v1/spaces/{space_id}/holds",
        "/api/v1/buyers/{platform}/{community}/{user_id}/tickets",
        "/api/v1/tickets/verify",
        "/api/v1/keys/ticket",
    }
    assert "/spaces/{space_id}" not in schema["paths"]  # the HTML page
    create = schema["paths"]["/api/v1/spaces"]["post"]
    assert create["summary"] == "Create a Space" and create["tags"] == ["spaces"]
    assert {"201", "401", "422"} <= set(create["responses"])
    assert create["security"] == [{"HTTPBearer": []}]
    assert {t["name"] for t in schema["tags"]} >= {"spaces", "tickets", "keys", "ops"}
    assert (await anon.get("/docs")).status_code == 404  # no CDN-hosted Swagger UI
