"""Invite links on the web (issue 16.3, "redeems in chat or on the web"): the link the host
gets from `/space invite` opens `/invites/{token}`, which shows the Space and redeems it for a
buyer signed in on the web (free: the ticket at once; paid: Stripe Checkout), and says
plainly when the link is used up, expired, forged, gone or withdrawn by the host. Over
ASGI, then in Chromium and Firefox ESR."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.models import InviteLink
from tests.audio.browsers import Browser, click, shot, text_of, wait_for
from tests.billing.conftest import World
from tests.billing.test_web_checkout import CSRF, signed_in, signin_path, visitor
from tests.fakes.stripe_api import FakeStripe
from tests.serving import serve_asgi

CREATE_INNER = '/space create title:"Inner circle" starts:"2030-01-03 18:00" tickets:5 {extra}'
PAGE = re.compile(r"http://stagepass\.test(/invites/[A-Za-z0-9_.-]+)")


async def invite(world: World, space_id: int, uses: int) -> str:
    """The invite page's path from the host's `/space invite` reply."""
    reply = await world.say("alice", f"/space invite {space_id} uses:{uses}")
    assert not reply.error, reply.text
    found = PAGE.search(reply.text)
    assert found, reply.text
    token = found.group(1).rsplit("/", 1)[1]
    assert reply.text.splitlines()[-1] == f"/ticket redeem {token}"  # chat still works
    return found.group(1)


async def inner(world: World, extra: str = "visibility:invite") -> int:
    reply = await world.say("alice", CREATE_INNER.format(extra=extra))
    assert not reply.error, reply.text
    return int(reply.text.split("#")[1].split()[0])


async def test_a_signed_in_guest_redeems_a_free_invite(world: World) -> None:
    space_id = await inner(world)
    path = await invite(world, space_id, uses=1)
    async with visitor(world) as anon:
        shown = await anon.get(path)
        assert shown.status_code == 200 and "Inner circle" in shown.text
        assert 'id="redeem"' not in shown.text and "/ticket redeem " in shown.text
        assert (await anon.get(f"/spaces/{space_id}")).status_code == 404  # still unlisted
    async with visitor(world) as bob:
        await signed_in(world, bob, "bob")
        page = await bob.get(path)
        assert 'id="redeem"' in page.text and "1 ticket(s) left" in page.text
        found = CSRF.search(page.text)
        assert found
        forged = await bob.post(path, data={"csrf": "0" * 32})
        assert forged.status_code == 401 and "sign-in ran out" in forged.text
        got = await bob.post(path, data={"csrf": found.group(1)})
        assert got.status_code == 303, got.text
        assert got.headers["location"].startswith("/tickets/")
        assert "You&#39;re in!" in (await bob.get(got.headers["location"])).text
    async with visitor(world) as carol:
        await signed_in(world, carol, "carol")
        used = await carol.get(path)
        assert used.status_code == 410 and "This invite is used up" in used.text


async def test_a_paid_invite_goes_on_to_checkout(world: World, fake: FakeStripe) -> None:
    space_id = await world.paid_space()
    path = await invite(world, space_id, uses=2)
    async with visitor(world) as bob:
        await signed_in(world, bob, "bob")
        found = CSRF.search((await bob.get(path)).text)
        assert found
        got = await bob.post(path, data={"csrf": found.group(1)})
        assert got.headers["location"] == f"/spaces/{space_id}/pay"
        pay = await bob.get(got.headers["location"])
        assert f"{fake.base_url}/pay/cs_test_" in pay.text
    claims = world.core.invites.read(path.rsplit("/", 1)[1], world.clock.now())
    row = await world.core.invites.get(claims.ticket_id)
    assert row is not None and row.uses == 1  # the hold took one use


async def test_forged_expired_and_revoked_invites_say_so(world: World) -> None:
    space_id = await inner(world)
    path = await invite(world, space_id, uses=3)
    token = path.rsplit("/", 1)[1]
    async with visitor(world) as anon:
        forged = await anon.get(f"/invites/{token[:-4]}AAAA")
        assert forged.status_code == 401 and "This invite link is not valid" in forged.text
        junk = await anon.get("/invites/nonsense")
        assert junk.status_code == 401

        revoked_path = await invite(world, space_id, uses=1)
        claims = world.core.invites.read(revoked_path.rsplit("/", 1)[1], world.clock.now())
        async with world.core.db.write() as session:
            row = await session.get(InviteLink, claims.ticket_id)
            assert row is not None
            await session.delete(row)
        revoked = await anon.get(revoked_path)
        assert revoked.status_code == 410 and "This invite was withdrawn" in revoked.text

        world.clock.advance(timedelta(days=4))  # past the Space's end and a day more
        expired = await anon.get(path)
        assert expired.status_code == 410 and "This invite has expired" in expired.text


async def test_a_withdrawn_invite_says_the_host_withdrew_it(world: World) -> None:
    """Withdrawn with `/space invite SPACE revoke:ID` while a buyer has its page open: the
    page and the Redeem button both answer 410 with their own text; nothing is claimed."""
    space_id = await inner(world)
    path = await invite(world, space_id, uses=3)
    invite_id = world.core.invites.read(path.rsplit("/", 1)[1], world.clock.now()).ticket_id
    async with visitor(world) as bob:
        await signed_in(world, bob, "bob")
        found = CSRF.search((await bob.get(path)).text)
        assert found
        revoked = await world.say("alice", f"/space invite {space_id} revoke:{invite_id[:8]}")
        assert not revoked.error and "is withdrawn" in revoked.text, revoked.text
        for response in (await bob.get(path), await bob.post(path, data={"csrf": found.group(1)})):
            assert response.status_code == 410
            assert "This invite was withdrawn by the host" in response.text
            assert "Inner circle" in response.text and "Ask the host for a new one" in response.text
    row = await world.core.invites.get(invite_id)
    assert row is not None and row.uses == 0
    assert (await world.core.spaces.get(space_id)).taken == 0


@pytest.mark.browser
async def test_an_invite_in_a_browser(world: World, any_browser: Browser) -> None:
    space_id = await inner(world)
    path = await invite(world, space_id, uses=1)
    bob_signin = await signin_path(world, "bob")
    carol_signin = await signin_path(world, "carol")
    async with serve_asgi(world.app) as base:
        stranger = await any_browser.tab(width=1000, height=900)
        await stranger.goto(base + path)
        assert "/ticket redeem" in await text_of(stranger, "#in-chat")
        await shot(stranger, "invite-visitor")
        await stranger.set_viewport(390, 844)
        await shot(stranger, "invite-visitor-mobile")
        overflow = await stranger.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, "the invite page scrolls sideways on a phone"

        bob = await any_browser.tab(width=1000, height=900)
        await bob.goto(base + bob_signin)
        await bob.goto(base + path)
        assert "Signed in as bob" in await text_of(bob, "#signed-in")
        await shot(bob, "invite-signed-in")
        await click(bob, "#redeem-button")
        notice = await wait_for(bob, "(document.querySelector('#notice') || {}).textContent")
        assert "You're in!" in notice
        assert await bob.evaluate("!document.querySelector('#public-link')") is True  # unlisted
        await shot(bob, "invite-redeemed")

        carol = await any_browser.tab(width=390, height=844)
        await carol.goto(base + carol_signin)
        await carol.goto(base + path)
        assert await text_of(carol, "#refused-title") == "This invite is used up"
        await shot(carol, "invite-used-up-mobile")
        await carol.goto(f"{base}/invites/{path.rsplit('/', 1)[1][:-4]}AAAA")
        assert await text_of(carol, "#refused-title") == "This invite link is not valid"
        await shot(carol, "invite-forged-mobile")
        dark = await any_browser.tab(width=1000, height=900, dark=True)
        await dark.goto(base + path)
        await shot(dark, "invite-used-up-dark")
        for tab in (stranger, bob, carol, dark):
            assert tab.errors == []
