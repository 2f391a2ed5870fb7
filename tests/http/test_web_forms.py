"""What the web pages' forms take: numbers typed in any script, and digits that are no
number (the property-based pass in `test_schemathesis.py` found those answered 500); a
promo code with an invite, all or nothing."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from bot.actors import Actor
from bot.core import Core
from bot.http.params import whole_number
from bot.http.session import COOKIE, csrf_of
from bot.models import InviteLink, Platform, Visibility
from bot.services.promos import PromoDraft
from bot.services.spaces import SpaceDraft
from tests.fakes.payments import FakeGateway

HOST = Actor(Platform.DISCORD, "guild1", "alice", "Alice")
BUYER = Actor(Platform.DISCORD, "guild1", "bob", "Bob")


async def _space(
    core: Core, price_minor: int = 0, visibility: Visibility = Visibility.PUBLIC
) -> int:
    draft = SpaceDraft(
        title="Forms",
        starts_at=core.clock.now() + timedelta(days=2),
        capacity=10,
        per_buyer_limit=5,
        price_minor=price_minor,
        visibility=visibility,
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


async def test_an_invite_redeemed_with_a_refused_code_keeps_its_use(
    core: Core, anon: httpx.AsyncClient
) -> None:
    """The invite page takes a promo code for a paid Space; a code refused leaves the
    invite's use where it was, and the page says why."""
    core.use_payments(FakeGateway())
    space_id = await _space(core, price_minor=1000, visibility=Visibility.INVITE)
    await core.promos.create(HOST, space_id, PromoDraft(code="HALF", uses=5, percent=50))
    invite = await core.invites.create(HOST, space_id, 1)
    session = core.web.session_for(await core.identities.ensure(BUYER))
    anon.cookies.set(COOKIE, session)
    path = f"/invites/{invite.token}"

    async def uses() -> int:
        async with core.db.session() as db:
            link = await db.get(InviteLink, invite.link.id)
        assert link is not None
        return link.uses

    page = await anon.get(path)
    assert page.status_code == 200 and 'name="code"' in page.text
    refused = await anon.post(path, data={"csrf": csrf_of(session), "code": "nope"})
    assert refused.status_code == 404, refused.text
    assert f"There is no code NOPE for Space #{space_id}." in refused.text
    assert "1 ticket(s) left" in refused.text
    assert await uses() == 0
    got = await anon.post(path, data={"csrf": csrf_of(session), "code": "half"})
    assert got.status_code == 303 and got.headers["location"] == f"/spaces/{space_id}/pay"
    assert await uses() == 1
    [hold] = await core.tickets.pending_holds(
        (await core.identities.ensure(BUYER)).id or 0, space_id
    )
    assert hold.amount_minor == 500
