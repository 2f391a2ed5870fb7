"""What the web pages' forms take that the property-based pass (`test_schemathesis.py`)
found to fail: numbers typed in any script, and digits that are no number."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from bot.actors import Actor
from bot.core import Core
from bot.http.params import whole_number
from bot.http.session import COOKIE, csrf_of
from bot.models import Platform
from bot.services.spaces import SpaceDraft

HOST = Actor(Platform.DISCORD, "guild1", "alice", "Alice")
BUYER = Actor(Platform.DISCORD, "guild1", "bob", "Bob")


async def _space(core: Core) -> int:
    draft = SpaceDraft(
        title="Forms",
        starts_at=core.clock.now() + timedelta(days=2),
        capacity=10,
        per_buyer_limit=5,
    )
    space = await core.spaces.create(HOST, draft)
    assert space.id is not None
    return space.id


@pytest.mark.parametrize(
    ("raw", "number"),
    [("2", 2), ("٢", 2), ("007", 7), ("²", None), ("¹⁰", None), ("½", None), ("", None)],
)
def test_a_whole_number_is_what_int_reads(raw: str, number: int | None) -> None:
    assert whole_number(raw, digits=3) == number
    assert whole_number("1234", digits=3) is None


async def test_a_quantity_of_superscript_digits_is_refused_not_a_server_error(
    core: Core, anon: httpx.AsyncClient
) -> None:
    """`"²".isdigit()` is true and `int("²")` raises: the buy form answered 500."""
    space_id = await _space(core)
    session = core.web.session_for(await core.identities.ensure(BUYER))
    anon.cookies.set(COOKIE, session)
    for raw in ("²", "1²"):
        refused = await anon.post(
            f"/spaces/{space_id}/buy", data={"csrf": csrf_of(session), "quantity": raw}
        )
        assert refused.status_code == 422, refused.text
        assert "Tickets: a whole number, please." in refused.text
    bought = await anon.post(
        f"/spaces/{space_id}/buy", data={"csrf": csrf_of(session), "quantity": "٢"}
    )
    assert bought.status_code == 303, bought.text
    assert (await core.spaces.get(space_id)).sold == 2


async def test_a_recording_number_of_superscript_digits_is_refused_not_a_server_error(
    core: Core, anon: httpx.AsyncClient
) -> None:
    space_id = await _space(core)
    token = await core.host_desk.link_token(HOST, space_id)
    refused = await anon.post(
        f"/spaces/{space_id}/manage/recordings", data={"token": token, "delete": "²"}
    )
    assert refused.status_code == 400, refused.text
    assert "Choose a recording to delete." in refused.text
