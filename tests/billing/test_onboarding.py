"""Hosts connect Stripe (one Express account each) before a paid Space can go on sale."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlmodel import select

from billing.accounts import CONNECT_REFRESH_PATH, CONNECT_RETURN_PATH
from billing.gateway import CHECKOUT_CANCELLED_PATH, CHECKOUT_DONE_PATH
from billing.models import BillingAccount
from billing.pages import pages_router
from tests.billing.conftest import CREATE_PAID, World
from tests.fakes.stripe_api import FakeStripe, as_form

CREATE_FREE = '/space create title:"Open mic" starts:"2030-01-03 18:00" tickets:5'


async def test_no_paid_space_until_charges_are_enabled(world: World, fake: FakeStripe) -> None:
    assert not (await world.say("alice", CREATE_FREE)).error  # free Spaces need no account
    refused = await world.say("alice", CREATE_PAID.format(n=5))
    assert refused.error and "/payouts connect" in refused.text

    reply = await world.say("alice", "/payouts connect")
    assert not reply.error and reply.buttons[0].label == "Set up payouts"
    [created] = fake.requests_for("POST", "/v1/accounts")
    assert created.params == as_form(
        {
            "type": "express",
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
            "business_profile": {"product_description": "Tickets for live audio Spaces"},
            "metadata": {"stagepass_identity": "shell:local:alice"},
        }
    )
    assert created.idempotency_key and created.idempotency_key.startswith("stagepass-account-")
    [link] = fake.requests_for("POST", "/v1/account_links")
    [account_id] = fake.accounts
    assert link.params == {
        "account": account_id,
        "type": "account_onboarding",
        "refresh_url": "http://stagepass.test/billing/connect/refresh",
        "return_url": "http://stagepass.test/billing/connect/return",
    }

    status = await world.say("alice", "/payouts status")
    assert "Payments: not enabled yet" in status.text
    assert "Stripe still needs: a website or social profile" in status.text
    still = await world.say("alice", CREATE_PAID.format(n=5))
    assert still.error and "has not enabled payments on your account yet" in still.text

    async with httpx.AsyncClient() as browser:  # the host finishes Stripe's onboarding
        assert (await browser.post(str(reply.buttons[0].url))).status_code == 303
    await world.pump()  # account.updated
    status = await world.say("alice", "/payouts status")
    assert status.text.splitlines() == [
        "Payments: enabled",
        "Payouts to your bank: enabled",
        "You can sell paid tickets.",
    ]
    assert not (await world.say("alice", CREATE_PAID.format(n=5))).error

    again = await world.say("alice", "/payouts connect")  # a new link, the same account
    assert not again.error
    assert len(fake.requests_for("POST", "/v1/accounts")) == 1
    assert len(fake.requests_for("POST", "/v1/account_links")) == 2


async def test_missed_account_update_is_read_from_stripe(world: World, fake: FakeStripe) -> None:
    await world.say("alice", "/payouts connect")
    account_id = next(iter(fake.accounts))
    await fake.update_account(account_id, charges_enabled=True, payouts_enabled=False)
    world.skip_pending()  # the account.updated webhook is lost
    # the cache says "not yet", so Stripe is asked again before refusing
    reply = await world.say("alice", CREATE_PAID.format(n=5))
    assert not reply.error, reply.text
    status = await world.say("alice", "/payouts status")
    assert "Payments: enabled" in status.text and "Payouts to your bank: not enabled" in status.text


async def test_account_losing_charges_stops_sales(world: World, fake: FakeStripe) -> None:
    space_id = await world.paid_space()
    account_id = next(iter(fake.accounts))
    await fake.update_account(
        account_id, charges_enabled=False, requirements=["individual.verification.document"]
    )
    responses = await world.pump()
    assert "charges off" in responses[-1].json()["detail"]
    reply = await world.say("bob", f"/ticket buy {space_id}")
    assert reply.error and "alice's Stripe account can't take payments yet" in reply.text
    assert (await world.core.spaces.get(space_id)).sold == 0  # the hold was given back
    status = await world.say("alice", "/payouts status")
    assert "Stripe still needs: an identity document" in status.text


async def test_concurrent_connects_make_one_account(world: World, fake: FakeStripe) -> None:
    replies = await asyncio.gather(*(world.say("alice", "/payouts connect") for _ in range(5)))
    assert not any(r.error for r in replies), [r.text for r in replies]
    assert len(fake.accounts) == 1
    async with world.core.db.session() as session:
        assert len(list(await session.exec(select(BillingAccount)))) == 1


async def test_return_and_refresh_pages(world: World) -> None:
    back = await world.http.get("/billing/connect/return")
    assert back.status_code == 200 and "/payouts status" in back.text
    expired = await world.http.get("/billing/connect/refresh")
    assert expired.status_code == 200 and "/payouts connect" in expired.text


async def test_return_pages_show_fixed_text_and_take_no_input() -> None:
    app = FastAPI()
    app.include_router(pages_router())
    pages = {
        CHECKOUT_DONE_PATH: "Payment received",
        CHECKOUT_CANCELLED_PATH: "Nothing was charged",
        CONNECT_RETURN_PATH: "/payouts status",
        CONNECT_REFRESH_PATH: "/payouts connect",
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://stagepass.test"
    ) as http:
        for path, text in pages.items():
            shown = await http.get(path, params={"title": "<script>x</script>", "body": "<b>"})
            assert shown.status_code == 200 and text in shown.text, path
            assert "<script>" not in shown.text and "<b>" not in shown.text
