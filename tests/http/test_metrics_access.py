"""`/metrics` is not public: the operator token by default, or an address of its own."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from bot.core import Core
from bot.errors import ConfigError
from bot.http import create_app
from bot.http.app import metrics_app
from bot.settings import Settings, load_settings
from bot.wiring import Stagepass
from tests.http.conftest import BASE_URL, TOKEN, error_of


async def test_metrics_need_the_operator_token(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/metrics")
    assert response.status_code == 401 and error_of(response)["type"] == "unauthorized"
    assert "stagepass_" not in response.text
    wrong = await anon.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = await anon.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and "stagepass_http_requests_total" in right.text


async def test_the_schema_says_metrics_need_the_token(anon: httpx.AsyncClient) -> None:
    operation = (await anon.get("/openapi.json")).json()["paths"]["/metrics"]["get"]
    assert operation["security"] == [{"HTTPBearer": []}]
    assert "401" in operation["responses"]


async def test_on_its_own_address_metrics_leave_the_public_app(core: Core) -> None:
    app = create_app(core, api_token=TOKEN, metrics_route=False)
    scraper = metrics_app(app.state.metrics)
    for served, status in ((app, 404), (scraper, 200)):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served), base_url=BASE_URL
        ) as client:
            assert (await client.get("/metrics")).status_code == status
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=scraper), base_url=BASE_URL
    ) as client:
        assert (await client.get("/api/v1/spaces")).status_code == 404  # nothing else there
        assert (await client.get("/openapi.json")).status_code == 404


@pytest.mark.parametrize("bad", ["9100", "localhost", "host:port", "127.0.0.1:70000"])
def test_a_bad_metrics_address_is_a_clear_error(bad: str, settings: Settings) -> None:
    with pytest.raises(ConfigError, match="STAGEPASS_METRICS_ADDRESS"):
        load_settings(metrics_address=bad)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_run_serves_metrics_on_their_own_address(settings: Settings) -> None:
    settings.http_port = _free_port()
    settings.metrics_address = f"127.0.0.1:{_free_port()}"
    settings.public_url = None
    stagepass = await Stagepass.build(settings, install=False)
    seen: dict[str, int] = {}

    async def scrape(stop: asyncio.Event) -> None:
        async with httpx.AsyncClient() as client:
            main = f"http://127.0.0.1:{settings.http_port}"
            seen["public"] = (await client.get(f"{main}/metrics")).status_code
            seen["health"] = (await client.get(f"{main}/healthz")).status_code
            response = await client.get(f"http://{settings.metrics_address}/metrics")
            seen["scraper"] = response.status_code
            assert "stagepass_http_requests_total" in response.text

    await asyncio.wait_for(stagepass.run(foreground=scrape), 60)
    assert seen == {"public": 404, "health": 200, "scraper": 200}


def test_by_default_metrics_have_no_address_of_their_own(settings: Settings) -> None:
    assert settings.metrics_address is None and settings.metrics_bind is None
    assert load_settings(metrics_address="[::1]:9100").metrics_bind == ("::1", 9100)
