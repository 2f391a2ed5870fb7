"""The operator API redeems invites: `POST /spaces/{id}/holds` with `invite` (issue 16 item
3); an invite-only Space refuses a hold without one, and its public page is a 404."""

from __future__ import annotations

from datetime import timedelta

import httpx

from bot.actors import Actor
from bot.core import Core
from bot.models import Platform, Visibility
from bot.services.spaces import SpaceDraft
from tests.http.conftest import error_of, person


async def test_a_hold_through_an_invite(client: httpx.AsyncClient, core: Core) -> None:
    host = Actor(Platform.DISCORD, "guild1", "alice", "Alice")
    space = await core.spaces.create(
        host,
        SpaceDraft(
            title="Inner",
            starts_at=core.clock.now() + timedelta(days=2),
            capacity=5,
            visibility=Visibility.INVITE,
        ),
    )
    assert space.id is not None
    invite = await core.invites.create(host, space.id, 1)
    plain = await client.post(f"/api/v1/spaces/{space.id}/holds", json={"buyer": person("bob")})
    assert plain.status_code == 404
    assert "invite-only" in error_of(plain)["message"]
    held = await client.post(
        f"/api/v1/spaces/{space.id}/holds", json={"buyer": person("bob"), "invite": invite.token}
    )
    assert held.status_code == 201, held.text
    assert len(held.json()["tickets"]) == 1
    again = await client.post(
        f"/api/v1/spaces/{space.id}/holds",
        json={"buyer": person("carol"), "invite": invite.token},
    )
    assert again.status_code == 422 and "used up" in error_of(again)["message"]
    page = await client.get(f"/spaces/{space.id}")
    assert page.status_code == 404
    assert (await client.get(f"/spaces/{space.id}/calendar.ics")).status_code == 404
    front = await client.get("/")
    assert "Inner" not in front.text
