"""Signaling over HTTP (httpx.ASGITransport): the token is checked before any peer exists."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from audio import Admission, Forbidden, RoomRegistry, Unauthorized, make_router
from audio.admission import Role
from audio.metrics import AudioMetrics
from audio.room import BridgedParticipant
from tests.audio.rtc_harness import Client, PeerSpy

SPACE = 3
OTHER_SPACE = 4


class FakeGate:
    """Tokens are looked up in a table; anything else is forged."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []
        self.tokens = {
            "ann-token": Admission("T-1", SPACE, "ann", "Ann", "listener"),
            "host-token": Admission(None, SPACE, "hal", "Hal", "host"),
            "other-space-token": Admission("T-9", OTHER_SPACE, "oz", "Oz", "listener"),
            "lying-gate-token": Admission("T-8", OTHER_SPACE, "liz", "Liz", "listener"),
        }
        self.revoked = {"revoked-token"}

    async def admit(self, space_id: int, token: str) -> Admission:
        self.calls.append((space_id, token))
        if token in self.revoked:
            raise Forbidden("This ticket was refunded.")
        admission = self.tokens.get(token)
        if admission is None:
            raise Unauthorized("Your ticket link is not valid.")
        if admission.space_id != space_id and token != "lying-gate-token":
            raise Forbidden("This ticket is for another Space.")
        return admission


@pytest.fixture
def spy() -> PeerSpy:
    return PeerSpy()


@pytest.fixture
async def http(metrics: AudioMetrics, spy: PeerSpy) -> AsyncIterator[httpx.AsyncClient]:
    async with RoomRegistry(metrics=metrics, peer_factory=spy) as registry:
        await registry.open(SPACE)
        app = FastAPI()
        app.include_router(make_router(registry, FakeGate()))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://room.test") as client:
            yield client


@pytest.fixture
async def offer() -> AsyncIterator[str]:
    client = Client("browser")
    try:
        sdp, _ = await client.offer()
        yield sdp
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("token", "status"),
    [
        ("forged", 401),
        ("", 401),
        ("revoked-token", 403),
        ("other-space-token", 403),  # a real ticket, for another Space
        ("lying-gate-token", 403),  # even if the gate forgets to check the Space
    ],
)
async def test_bad_tokens_are_refused_before_any_peer_exists(
    http: httpx.AsyncClient, spy: PeerSpy, offer: str, token: str, status: int
) -> None:
    response = await http.post(
        f"/rooms/{SPACE}/offer", json={"sdp": offer, "type": "offer", "token": token}
    )
    assert response.status_code == status
    assert response.json()["detail"]
    assert spy.created == 0


async def test_missing_token_field_is_unauthorized(
    http: httpx.AsyncClient, spy: PeerSpy, offer: str
) -> None:
    response = await http.post(f"/rooms/{SPACE}/offer", json={"sdp": offer, "type": "offer"})
    assert response.status_code == 401
    assert spy.created == 0


@pytest.mark.parametrize(
    "body",
    [
        {"type": "offer", "token": "ann-token"},
        {"sdp": "v=0", "type": "answer", "token": "ann-token"},
        {"sdp": "", "type": "offer", "token": "ann-token"},
        {"sdp": "v=0", "type": "offer", "token": "ann-token", "extra": 1},
        ["not", "an", "object"],
    ],
)
async def test_malformed_bodies_are_422(
    http: httpx.AsyncClient, spy: PeerSpy, body: object
) -> None:
    response = await http.post(f"/rooms/{SPACE}/offer", json=body)
    assert response.status_code == 422
    assert spy.created == 0


async def test_malformed_sdp_with_a_good_token_is_422_without_a_peer(
    http: httpx.AsyncClient, spy: PeerSpy
) -> None:
    response = await http.post(
        f"/rooms/{SPACE}/offer",
        json={"sdp": "v=0\r\nm=audio x y\r\n", "type": "offer", "token": "ann-token"},
    )
    assert response.status_code == 422
    assert spy.created == 0


async def test_good_offer_gets_an_answer_and_shows_in_state(
    http: httpx.AsyncClient, spy: PeerSpy, offer: str
) -> None:
    response = await http.post(
        f"/rooms/{SPACE}/offer", json={"sdp": offer, "type": "offer", "token": "ann-token"}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "answer" and "a=fingerprint" in answer["sdp"]
    assert "opus/48000/2" in answer["sdp"] and "PCMU" not in answer["sdp"]
    assert spy.created == 1

    state = await http.get(f"/rooms/{SPACE}/state", headers={"Authorization": "Bearer ann-token"})
    assert state.status_code == 200
    body = state.json()
    assert body["listener_count"] == 1
    assert body["participants"] == []
    assert body["you"] == {"role": "listener", "muted": False, "connected": False}


async def test_state_needs_a_token_and_an_open_room(http: httpx.AsyncClient) -> None:
    assert (await http.get(f"/rooms/{SPACE}/state")).status_code == 401
    response = await http.get(f"/rooms/{SPACE}/state", headers={"Authorization": "Bearer forged"})
    assert response.status_code == 401
    response = await http.get(
        f"/rooms/{OTHER_SPACE}/state", headers={"Authorization": "Bearer other-space-token"}
    )
    assert response.status_code == 404  # admitted, but no room open here


async def test_offer_to_a_room_that_is_not_open_is_404(
    http: httpx.AsyncClient, spy: PeerSpy, offer: str
) -> None:
    response = await http.post(
        f"/rooms/{OTHER_SPACE}/offer",
        json={"sdp": offer, "type": "offer", "token": "other-space-token"},
    )
    assert response.status_code == 404
    assert spy.created == 0


async def test_state_lists_people_bridged_from_discord_with_where_they_are(
    metrics: AudioMetrics,
) -> None:
    async with RoomRegistry(metrics=metrics) as registry:
        room = await registry.open(SPACE)
        room.put_bridged(BridgedParticipant("discord:g:7", "Dee", "discord", role=Role.SPEAKER))
        room.put_bridged(BridgedParticipant("discord:g:8", "Lou", "discord"))  # a listener
        app = FastAPI()
        app.include_router(make_router(registry, FakeGate()))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://room.test"
        ) as http:
            state = await http.get(
                f"/rooms/{SPACE}/state", headers={"Authorization": "Bearer ann-token"}
            )
    assert state.status_code == 200
    [dee] = state.json()["participants"]
    assert (dee["display_name"], dee["role"], dee["via"]) == ("Dee", "speaker", "discord")
