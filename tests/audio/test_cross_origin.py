"""The stage reaches the origin from an edge's room page: the edge's 409 names the origin,
the origin answers the edges' pages cross-origin (only theirs, only the stage's routes),
and the edge's page may fetch from the origin (its CSP)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from nats.aio.client import Client as NATS

from audio import Admission, Unauthorized, make_router
from audio.cors import CrossOrigin, web_origin
from audio.edges import EdgeLink, OriginLink
from audio.metrics import AudioMetrics
from bot.core import Core
from bot.http import errors
from bot.settings import Settings
from tests.audio.conftest import build_world, close_world
from tests.audio.nats_nodes import EDGE_URL, ORIGIN_URL, Nodes, nats_nodes
from tests.audio.rtc_harness import Client
from tests.services import ensure_nats
from tests.waiting import eventually

nats = pytest.mark.nats

EVIL = "https://evil.test"


def test_web_origins_are_what_browsers_send() -> None:
    assert web_origin("https://Live.Example.org/") == "https://live.example.org"
    assert web_origin("https://live.example.org:443/stagepass") == "https://live.example.org"
    assert web_origin("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert web_origin("http://[::1]:8080/x") == "http://[::1]:8080"
    for bad in ("", "live.example.org", "ftp://x.org", "https://", "http://x:99999", "null"):
        assert web_origin(bad) is None


def test_only_allowed_origins_get_cors_headers() -> None:
    policy = CrossOrigin(lambda: {EDGE_URL})
    assert policy.headers(EDGE_URL) == {"Access-Control-Allow-Origin": EDGE_URL, "Vary": "Origin"}
    for other in (EVIL, None, "null", EDGE_URL + "/"):
        assert policy.headers(other) == {"Vary": "Origin"}


class TokenGate:
    """Admits ``role:key`` tokens (tickets for listeners)."""

    def __init__(self, space: int) -> None:
        self.space = space

    async def admit(self, space_id: int, token: str) -> Admission:
        role, _, key = token.partition(":")
        if not key:
            raise Unauthorized("Open this room from your ticket link.")
        ticket = f"ticket-{key}" if role == "listener" else None
        return Admission(ticket, self.space, key, key.title(), role)


def http(app: FastAPI, base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@pytest.fixture
async def nodes(metrics: AudioMetrics) -> AsyncIterator[Nodes]:
    async with nats_nodes(metrics) as nodes:
        yield nodes


@nats
async def test_a_speaker_refused_by_the_edge_joins_at_the_origin_cross_origin(
    nodes: Nodes,
) -> None:
    gate = TokenGate(nodes.space)
    edge_app, origin_app = FastAPI(), FastAPI()
    errors.install(origin_app)  # the app's error envelope, as in production
    edge_app.include_router(make_router(nodes.edge, gate))
    policy = CrossOrigin(lambda: nodes.origin_link.edges)
    origin_app.include_router(make_router(nodes.origin, gate, cross_origin=policy))
    origin_room = await nodes.origin.open(nodes.space)
    base = f"/rooms/{nodes.space}"

    async with http(edge_app, EDGE_URL) as edge, http(origin_app, ORIGIN_URL) as origin:
        client = Client("sam", tone=880)
        nodes.clients.append(client)
        sdp, kind = await client.offer()
        offer = {"sdp": sdp, "type": kind, "token": "speaker:sam"}

        # What the page does: the edge says 409 and where the origin is...
        refused = await edge.post(f"{base}/offer", json=offer)
        assert refused.status_code == 409
        where = refused.json()["error"]["origin"]
        assert where == ORIGIN_URL
        # ...which learnt this edge's address when the edge asked it about the room.
        assert nodes.origin_link.edges == {EDGE_URL}
        assert await nodes.edge_link.origins() == {ORIGIN_URL}

        # The browser's preflight, then the same offer at the origin.
        preflight = await origin.options(
            f"{base}/offer",
            headers={
                "Origin": EDGE_URL,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == EDGE_URL
        assert preflight.headers["access-control-allow-methods"] == "GET, POST"
        assert preflight.headers["access-control-allow-headers"] == "Authorization, Content-Type"
        assert "access-control-allow-credentials" not in preflight.headers
        assert preflight.headers["vary"] == "Origin"

        joined = await origin.post(f"{where}{base}/offer", json=offer, headers={"Origin": EDGE_URL})
        assert joined.status_code == 200, joined.text
        assert joined.headers["access-control-allow-origin"] == EDGE_URL
        body = joined.json()
        await client.accept((body["sdp"], body["type"]))
        await eventually(lambda: client.pc.connectionState == "connected", what="sam connected")
        assert origin_room.state().stage[0].identity_key == "sam"

        bearer = {"Authorization": "Bearer speaker:sam", "Origin": EDGE_URL}
        state = await origin.get(f"{base}/state", headers=bearer)
        assert state.status_code == 200 and state.json()["you"]["role"] == "speaker"
        assert state.headers["access-control-allow-origin"] == EDGE_URL
        # Errors are readable by the page too, in the app's envelope.
        refused = await origin.get(f"{base}/state", headers={"Origin": EDGE_URL})
        assert refused.status_code == 401 and "error" in refused.json()
        assert refused.headers["access-control-allow-origin"] == EDGE_URL

        # Anyone else: no preflight, no header (the browser refuses to hand over the answer).
        for path, method in (("offer", "POST"), ("state", "GET")):
            other = await origin.options(
                f"{base}/{path}",
                headers={"Origin": EVIL, "Access-Control-Request-Method": method},
            )
            assert other.status_code == 403
            assert "access-control-allow-origin" not in other.headers
        other = await origin.get(f"{base}/state", headers={**bearer, "Origin": EVIL})
        assert "access-control-allow-origin" not in other.headers
        assert other.headers["vary"] == "Origin"
        # The edge itself answers no cross-origin call.
        edge_preflight = await edge.options(
            f"{base}/offer", headers={"Origin": ORIGIN_URL, "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in edge_preflight.headers


@nats
async def test_the_installed_origin_and_edge_pages(
    core: Core, settings: Settings, metrics: AudioMetrics
) -> None:
    """With `LiveAudio`'s wiring: the origin lets the edges' pages record cross-origin, and
    an edge's page may fetch from the origin (its CSP)."""
    origin_link = OriginLink(NATS(), public_url=ORIGIN_URL)
    edge_link = EdgeLink(NATS(), public_url=EDGE_URL)
    await origin_link.connect(ensure_nats())
    await edge_link.connect(ensure_nats())
    origin = await build_world(core, settings, metrics, link=origin_link)
    edge = await build_world(core, settings, metrics, link=edge_link)
    try:
        # The edge's page, before any room was located: it asks who the origins are.
        page = await edge.http.get(f"/rooms/{edge.space_id}")
        assert f"connect-src 'self' {ORIGIN_URL};" in page.headers["content-security-policy"]
        page = await origin.http.get(f"/rooms/{origin.space_id}")
        assert "connect-src 'self';" in page.headers["content-security-policy"]

        assert await edge.audio.registry.joinable(origin.space_id) is not None
        assert origin_link.edges == {EDGE_URL}  # learnt from the edge's questions
        path = f"/rooms/{origin.space_id}/recording"
        preflight = await origin.http.options(
            path, headers={"Origin": EDGE_URL, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == EDGE_URL
        host = {**origin.host.bearer, "Origin": EDGE_URL}
        started = await origin.http.post(path, json={"on": True}, headers=host)
        assert started.status_code == 200 and started.json() == {"recording": True}
        assert started.headers["access-control-allow-origin"] == EDGE_URL
        ann = await origin.ticket("ann")
        refused = await origin.http.post(
            path, json={"on": False}, headers={**ann.bearer, "Origin": EDGE_URL}
        )
        assert refused.status_code == 403 and refused.json()["error"]["message"]
        assert refused.headers["access-control-allow-origin"] == EDGE_URL
        evil = await origin.http.post(path, json={"on": False}, headers={**host, "Origin": EVIL})
        assert evil.status_code == 200 and "access-control-allow-origin" not in evil.headers
        other = await origin.http.options(
            path, headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"}
        )
        assert other.status_code == 403
        # Only the stage's routes cross origins.
        info = await origin.http.get(f"/rooms/{origin.space_id}/info", headers={"Origin": EDGE_URL})
        assert "access-control-allow-origin" not in info.headers
    finally:
        await close_world(edge)
        await close_world(origin)
        await edge_link.aclose()
        await origin_link.aclose()
