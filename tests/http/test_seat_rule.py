"""The operator API answers by the core's seat rule: a ticket whose holder was removed
from the stage verifies as a 403 and lists without a token or link, until /stage allow."""

from __future__ import annotations

import httpx

from bot.actors import Actor, UserRef
from bot.core import Core
from bot.models import Platform
from tests.http.conftest import error_of, person, space_body

HOST = Actor(Platform.DISCORD, "guild1", "alice", "Alice")


async def test_a_removed_holder_is_refused_and_listed_as_removed(
    client: httpx.AsyncClient, core: Core
) -> None:
    space_id = (await client.post("/api/v1/spaces", json=space_body())).json()["id"]
    held = await client.post(
        f"/api/v1/spaces/{space_id}/holds", json={"buyer": person("bob"), "quantity": 1}
    )
    [ticket] = held.json()["tickets"]
    await core.spaces.start(HOST, space_id, confirm=True)
    await core.stage.remove(HOST, space_id, UserRef("bob", "bob"))

    refused = await client.post("/api/v1/tickets/verify", json={"token": ticket["token"]})
    assert refused.status_code == 403
    assert error_of(refused)["message"] == (
        "bob was removed from this Space's stage, so the ticket admits nobody until a "
        "moderator uses /stage allow."
    )
    [listed] = (await client.get("/api/v1/buyers/discord/guild1/bob/tickets")).json()["tickets"]
    assert (listed["status"], listed["removed"], listed["token"], listed["join_url"]) == (
        "valid",
        True,
        None,
        None,
    )

    await core.stage.allow(HOST, space_id, UserRef("bob", "bob"))
    verified = await client.post("/api/v1/tickets/verify", json={"token": ticket["token"]})
    assert verified.status_code == 200 and verified.json()["valid"] is True
    [listed] = (await client.get("/api/v1/buyers/discord/guild1/bob/tickets")).json()["tickets"]
    assert listed["removed"] is False and listed["token"] == ticket["token"]
