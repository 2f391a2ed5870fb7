"""No STRIPE_SECRET_KEY: paid Spaces still work, through a local page clearly marked
TEST MODE whose Pay button sends a locally signed event through the real webhook."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from billing import MODE_LIVE, MODE_TEST
from billing.assembly import DEV_SECRET_FILE
from billing.models import BillingEvent
from bot.clock import ManualClock
from bot.db import Database
from bot.errors import ConfigError
from bot.models import Ticket, TicketStatus
from bot.settings import Settings
from tests.billing.conftest import CREATE_PAID, World, live_settings, make_world
from tests.fakes.stripe_api import FakeStripe


async def page_path(world: World, who: str, space_id: int) -> str:
    reply = await world.say(who, f"/ticket buy {space_id}")
    assert not reply.error, reply.text
    assert "(TEST MODE — no real payment)" in reply.text
    url = reply.buttons[0].url
    assert url is not None and url.startswith("http://stagepass.test/billing/dev/checkout/cs_")
    return url.removeprefix("http://stagepass.test")


async def test_test_mode_sells_paid_tickets_without_stripe(
    dev_world: World, settings: Settings
) -> None:
    world = dev_world
    assert world.stagepass.modes == [MODE_TEST] == ["billing:TEST MODE (no real payments)"]
    assert (settings.data_dir / DEV_SECRET_FILE).read_text().startswith("whsec_dev_")
    created = await world.say("alice", CREATE_PAID.format(n=2))  # no account needed
    assert not created.error, created.text
    path = await page_path(world, "bob", 1)

    page = await world.http.get(path)
    assert page.status_code == 200
    assert "<title>TEST MODE — NO REAL PAYMENT — Checkout</title>" in page.text
    assert '<p class="test" id="test-mode">TEST MODE — NO REAL PAYMENT</p>' in page.text
    assert "Ticket: Jazz night × 1" in page.text and "$15.00" in page.text
    assert "Platform fee included: $1.50" in page.text and 'id="pay"' in page.text

    paid = await world.http.post(path)
    assert paid.status_code == 303
    done = await world.http.get(paid.headers["location"])
    assert "TEST MODE — NO REAL PAYMENT" in done.text and "Paid (test)" in done.text
    await world.core.bus.drain()

    [dm] = world.chat.dms("bob")
    assert "TEST MODE — no real payment: a test purchase at $15.00 (platform fee $1.50)" in dm
    assert "paid" not in dm and "[Join the room]" in dm
    async with world.core.db.session() as session:
        [stored] = list(await session.exec(select(BillingEvent)))
    assert stored.type == "checkout.session.completed"  # through the webhook handler

    again = await world.http.post(path)  # a second click pays nothing more
    assert again.status_code == 409 and "complete" in again.text
    after = await world.http.get(path)
    assert 'id="pay"' not in after.text

    # refunds work in TEST MODE too
    cancel = await world.say("alice", "/space cancel 1")
    assert "1 ticket(s) refunded" in cancel.text, cancel.text
    async with world.core.db.session() as session:
        [ticket] = list(await session.exec(select(Ticket)))
    assert ticket.status == TicketStatus.REFUNDED


async def test_test_mode_payouts_and_tips(dev_world: World) -> None:
    world = dev_world
    payouts = await world.say("alice", "/payouts connect")
    assert "TEST MODE" in payouts.text and not payouts.buttons
    tip = await world.say("bob", '/tip @alice 3 message:"thanks" public:no')
    assert not tip.error and "TEST MODE" in tip.text
    path = str(tip.buttons[0].url).removeprefix("http://stagepass.test")
    assert (await world.http.post(path)).status_code == 303
    await world.core.bus.drain()
    assert world.chat.dms("alice") == ['bob tipped you $3.00: "thanks"']


async def test_expired_test_checkout_cannot_be_paid(dev_world: World, clock: ManualClock) -> None:
    world = dev_world
    await world.say("alice", CREATE_PAID.format(n=2))
    path = await page_path(world, "bob", 1)
    clock.advance(timedelta(hours=1))
    refused = await world.http.post(path)
    assert refused.status_code == 409 and "expired" in refused.text
    assert world.chat.dms("bob") == []


async def test_no_test_checkout_while_a_key_is_set(
    world: World, fake: FakeStripe, settings: Settings
) -> None:
    assert world.stagepass.modes == [MODE_LIVE]
    assert world.billing.dev is None
    space_id = await world.paid_space()
    reply = await world.say("bob", f"/ticket buy {space_id}")
    assert "TEST MODE" not in reply.text
    assert str(reply.buttons[0].url).startswith(fake.base_url)
    for method in ("GET", "POST"):
        response = await world.http.request(method, "/billing/dev/checkout/cs_test_anything")
        assert response.status_code in (404, 405)
    assert not (settings.data_dir / DEV_SECRET_FILE).exists()


async def test_dev_page_refuses_once_a_key_appears(dev_world: World) -> None:
    """Belt and braces: even a mounted TEST MODE page refuses when a key is configured."""
    world = dev_world
    await world.say("alice", CREATE_PAID.format(n=2))
    path = await page_path(world, "bob", 1)
    world.core.settings.stripe_secret_key = SecretStr("sk_live_real")
    assert (await world.http.get(path)).status_code == 404
    assert (await world.http.post(path)).status_code == 404
    assert world.chat.dms("bob") == []


async def test_dev_secret_cannot_sign_live_webhooks(
    dev_world: World, settings: Settings, sqlite_db: Database, clock: ManualClock
) -> None:
    """An event signed with the TEST MODE secret is forged as far as live mode goes."""
    dev_secret = (settings.data_dir / DEV_SECRET_FILE).read_text().strip()
    event: dict[str, Any] = {
        "id": "evt_from_dev",
        "object": "event",
        "type": "checkout.session.completed",
        "created": 1,
        "data": {"object": {"id": "cs_test_x", "object": "checkout.session"}},
    }
    async with (
        FakeStripe(clock=lambda: clock.now().timestamp()) as fake,
        make_world(live_settings(settings), sqlite_db, clock, fake) as live,
    ):
        response = await live.post_event(event, secret=dev_secret)
    assert response.status_code == 400


def test_live_mode_needs_a_webhook_secret_and_a_secret_key(settings: Settings) -> None:
    from billing.stripe_api import build_client

    with pytest.raises(ConfigError, match="publishable key"):
        build_client(settings.model_copy(update={"stripe_secret_key": SecretStr("pk_live_x")}))


async def test_live_mode_without_webhook_secret_stops_startup(
    settings: Settings, sqlite_db: Database, clock: ManualClock
) -> None:
    no_secret = settings.model_copy(update={"stripe_secret_key": SecretStr("sk_test_x")})
    with pytest.raises(ConfigError, match="STRIPE_WEBHOOK_SECRET"):
        async with make_world(no_secret, sqlite_db, clock, None):
            pass


async def test_production_client_from_settings_talks_to_stripe(
    settings: Settings, sqlite_db: Database, clock: ManualClock
) -> None:
    """`build_client` (STRIPE_API_BASE pointed at the fake) makes real calls."""
    async with FakeStripe(api_key="sk_test_real", clock=lambda: clock.now().timestamp()) as fake:
        configured = live_settings(settings).model_copy(
            update={
                "stripe_secret_key": SecretStr("sk_test_real"),
                "stripe_api_base": fake.base_url,
            }
        )
        async with make_world(configured, sqlite_db, clock, None) as world:
            reply = await world.say("alice", "/payouts connect")
            assert not reply.error, reply.text
            assert len(fake.accounts) == 1
            async with httpx.AsyncClient() as browser:
                assert (await browser.get(str(reply.buttons[0].url))).status_code == 200


async def test_blank_keys_from_env_example_mean_test_mode(
    settings: Settings, sqlite_db: Database, clock: ManualClock
) -> None:
    """`.env.example` copied as it is (`STRIPE_SECRET_KEY=`) must not look like a key."""
    blank = settings.model_copy(
        update={"stripe_secret_key": SecretStr(" "), "stripe_webhook_secret": SecretStr("")}
    )
    async with make_world(blank, sqlite_db, clock, None) as world:
        assert world.stagepass.modes == [MODE_TEST]
