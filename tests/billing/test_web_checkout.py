"""Buying on the web (issue 15.4): a buyer signed in through a link the bot sent buys on a
Space's public page, through the same claim as chat (seat rule, hold, per-buyer limit,
promo codes), and is sent on to a Stripe Checkout Session (the local Stripe fake); a
visitor without a session is shown the way to chat. Over ASGI, then in Chromium and
Firefox ESR."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
import pytest

from bot.http.session import COOKIE
from tests.audio.browsers import Browser, click, shot, text_of, wait_for
from tests.billing.conftest import BASE_URL, World
from tests.fakes.stripe_api import FakeStripe
from tests.serving import serve_asgi

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
REFRESH = re.compile(r'http-equiv="refresh" content="0; url=([^"]+)"')


def local(url: str | None) -> str:
    """The path and query of a link the bot sent (its host is the public URL)."""
    assert url is not None
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def signin_path(world: World, who: str) -> str:
    """The sign-in link `/ticket show` gives someone with no tickets."""
    reply = await world.say(who, "/ticket show")
    [button] = reply.buttons
    assert button.label == "Find Spaces on the web"
    return local(button.url)


@asynccontextmanager
async def visitor(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of one's own (its own cookie jar) on the app."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.app), base_url=BASE_URL
    ) as client:
        yield client


async def signed_in(world: World, client: httpx.AsyncClient, who: str) -> None:
    response = await client.get(await signin_path(world, who))
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=7200" in cookie


async def buy(
    client: httpx.AsyncClient, space_id: int, quantity: int = 1, code: str = ""
) -> httpx.Response:
    page = await client.get(f"/spaces/{space_id}")
    found = CSRF.search(page.text)
    assert found, page.text
    return await client.post(
        f"/spaces/{space_id}/buy",
        data={"csrf": found.group(1), "quantity": str(quantity), "code": code},
    )


async def bob_id(world: World) -> int:
    bob = await world.core.identities.by_key(f"{world.chat.community_id}:bob")
    assert bob is not None and bob.id is not None
    return bob.id


async def bob_holds(world: World, space_id: int) -> list[int]:
    pending = await world.core.tickets.pending_holds(await bob_id(world), space_id)
    return [hold.quantity for hold in pending]


async def test_a_signed_in_buyer_buys_through_checkout(world: World, fake: FakeStripe) -> None:
    space_id = await world.paid_space()  # $15, at most 3 per buyer
    async with visitor(world) as anon:
        public = await anon.get(f"/spaces/{space_id}")
        assert 'id="buy"' not in public.text and "/ticket buy" in public.text
    async with visitor(world) as bob:
        await signed_in(world, bob, "bob")
        page = await bob.get(f"/spaces/{space_id}")
        assert 'id="buy"' in page.text and "Signed in as bob (Shell)" in page.text
        assert "form-action 'self'" in page.headers["content-security-policy"]

        bought = await buy(bob, space_id, quantity=2)
        assert bought.status_code == 303, bought.text
        assert bought.headers["location"] == f"/spaces/{space_id}/pay"
        assert await bob_holds(world, space_id) == [2]  # the chat's hold
        pay = await bob.get(f"/spaces/{space_id}/pay")
        found = REFRESH.search(pay.text)
        assert found, pay.text
        checkout = html.unescape(found.group(1))
        assert checkout.startswith(f"{fake.base_url}/pay/cs_test_")
        session = fake.sessions[checkout.rsplit("/", 1)[1]]
        assert session["amount_total"] == 3000  # 2 x $15

        # The same per-buyer limit as chat (3): 2 more are refused, on to the pending hold
        again = await buy(bob, space_id, quantity=2)
        assert again.headers["location"] == f"/spaces/{space_id}/pay"
        assert await bob_holds(world, space_id) == [2]
        await fake.complete_session(session["id"])
        await world.pump()
        assert len(await world.core.tickets.tickets_of(await bob_id(world), space_id)) == 2
        over = await buy(bob, space_id, quantity=2)
        assert over.status_code == 422, over.text
        assert "at most 3 tickets" in over.text and 'id="error"' in over.text


async def test_a_promo_code_on_the_web_and_a_free_ticket(world: World) -> None:
    space_id = await world.paid_space()
    made = await world.say("alice", f"/space promo {space_id} code:FRIENDS percent:100 uses:1")
    assert not made.error, made.text
    async with visitor(world) as bob:
        await signed_in(world, bob, "bob")
        wrong = await buy(bob, space_id, code="NOPE")
        assert wrong.status_code >= 400 and 'id="error"' in wrong.text
        assert await bob_holds(world, space_id) == []
        free = await buy(bob, space_id, code="friends")
        assert free.status_code == 303, free.text
        assert free.headers["location"].startswith("/tickets/")
        assert free.headers["location"].endswith("&done=bought")
        ticket = await bob.get(free.headers["location"])
        assert "You&#39;re in!" in ticket.text


async def test_forms_need_the_session_and_its_csrf(world: World) -> None:
    space_id = await world.paid_space()
    async with visitor(world) as bob:
        await signed_in(world, bob, "bob")
        forged = await bob.post(f"/spaces/{space_id}/buy", data={"csrf": "0" * 32})
        assert forged.status_code == 401 and "sign-in ran out" in forged.text
        bob.cookies.clear()
        page = await bob.get(f"/spaces/{space_id}")
        assert 'id="buy"' not in page.text
        assert (await bob.get(f"/spaces/{space_id}/pay")).status_code == 303
    assert await bob_holds(world, space_id) == []


async def test_sign_in_links(world: World) -> None:
    path = await signin_path(world, "bob")
    token = path.split("token=")[1].split("&")[0]
    async with visitor(world) as client:
        away = await client.get("/signin", params={"token": token, "next": "//evil.example/x"})
        assert away.status_code == 303 and away.headers["location"] == "/"
        on = await client.get("/signin", params={"token": token, "next": "/spaces/1"})
        assert on.headers["location"] == "/spaces/1"
        forged = await client.get("/signin", params={"token": token[:-3] + "AAA"})
        assert forged.status_code == 401 and "does not open" in forged.text
        desk = await client.get("/signin", params={"token": "x.y"})
        assert desk.status_code == 401


@pytest.mark.browser
async def test_web_checkout_in_a_browser(
    world: World, fake: FakeStripe, any_browser: Browser
) -> None:
    space_id = await world.paid_space()
    path = await signin_path(world, "bob")
    async with serve_asgi(world.app) as base:
        stranger = await any_browser.tab(width=1000, height=900)
        await stranger.goto(f"{base}/spaces/{space_id}")
        assert await stranger.evaluate("!document.querySelector('#buy')") is True
        assert "/ticket buy" in await text_of(stranger, "#cta")

        tab = await any_browser.tab(width=1000, height=900)
        await tab.goto(base + path)
        await tab.goto(f"{base}/spaces/{space_id}")
        assert "Signed in as bob" in await text_of(tab, "#signed-in")
        await shot(tab, "public-signed-in")
        cookie_hidden = await tab.evaluate(f"!document.cookie.includes('{COOKIE}')")
        assert cookie_hidden is True  # HttpOnly
        await tab.evaluate("document.querySelector('#buy input[name=quantity]').value = '2'")
        await click(tab, "#buy-button")
        where = await wait_for(
            tab,
            f"location.href.startsWith({fake.base_url + '/pay/'!r}) && location.href",
            what="the Stripe checkout page",
        )
        session = fake.sessions[where.rsplit("/", 1)[1]]
        assert session["amount_total"] == 3000
        assert await bob_holds(world, space_id) == [2]
        await shot(tab, "web-checkout-stripe-fake")
        phone = await any_browser.tab(width=390, height=844)
        await phone.goto(base + path)
        await phone.goto(f"{base}/spaces/{space_id}")
        await shot(phone, "public-signed-in-mobile")
        overflow = await phone.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1
        for each in (stranger, tab, phone):
            assert each.errors == []
