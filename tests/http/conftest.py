"""An app built from the `core` fixture, and clients that talk to it over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from bot.core import Core
from bot.http import create_app
from bot.settings import Settings
from bot.wiring import Stagepass
from tests.serving import serve_asgi

TOKEN = "test-token"
BASE_URL = "http://stagepass.test"


@pytest.fixture
def registry() -> CollectorRegistry:
    """A registry of this test's own, so metric values start at zero."""
    return CollectorRegistry()


@pytest.fixture
def app(core: Core, registry: CollectorRegistry) -> FastAPI:
    return create_app(core, api_token=TOKEN, registry=registry)


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app served by uvicorn on 127.0.0.1 (for a real browser): its base URL."""
    async with serve_asgi(app) as base:
        yield base


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        yield client


def operator(app: FastAPI) -> httpx.AsyncClient:
    """A client of `app` over ASGI carrying the operator token."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with operator(app) as client:
        yield client


def person(user_id: str, community: str = "guild1", **extra: Any) -> dict[str, Any]:
    return {"platform": "discord", "community": community, "user_id": user_id, **extra}


def space_body(**overrides: Any) -> dict[str, Any]:
    """A valid free Space two days after the test clock's now (2030-01-01 12:00 UTC)."""
    body: dict[str, Any] = {
        "host": person("alice", display_name="Alice"),
        "title": "Ask me anything",
        "starts_at": "2030-01-03T18:00:00+02:00",
        "price_minor": 0,
        "currency": "usd",
        "capacity": 2,
    }
    body.update(overrides)
    return body


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert {"type", "message", "field"} <= set(error), error
    return error


@pytest.fixture
async def stagepass(settings: Settings) -> AsyncIterator[Stagepass]:
    """Stagepass as `stagepass run` builds it, with every package that needs no network
    installed: billing (TEST MODE), the audio room and Slack over HTTP."""
    settings.slack_bot_token = SecretStr("xoxb-test")
    settings.slack_signing_secret = SecretStr("s" * 32)
    built = await Stagepass.build(settings)
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
def full_app(stagepass: Stagepass) -> FastAPI:
    """Its HTTP app, ready (as once `stagepass run` has started everything)."""
    app = stagepass.http_app()
    app.state.ready = True
    return app


@pytest.fixture
async def full(full_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the whole app carrying the operator token."""
    async with operator(full_app) as client:
        yield client


def routes_of(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) the app answers, however deeply its routers nest."""
    found: list[tuple[str, str]] = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        pairs = (
            [(c.original_route, c.path) for c in contexts()]
            if contexts is not None
            else [(route, getattr(route, "path", ""))]
        )
        for original, path in pairs:
            for method in sorted(getattr(original, "methods", None) or ()):
                if method != "HEAD":
                    found.append((method, path))
    return found
