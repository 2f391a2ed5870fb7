"""The fake Stripe API, driven through the real stripe 16 client (async methods)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.serving import serve_asgi

from .stripe_api import FakeStripe, as_form
from .stripe_params import parse_form

SECRET = "whsec_test"


@pytest.fixture
async def fake() -> AsyncIterator[FakeStripe]:
    async with FakeStripe(webhook_secret=SECRET) as fake:
        yield fake


@contextlib.asynccontextmanager
async def webhook_receiver(status: int = 200) -> AsyncIterator[tuple[str, list[Any]]]:
    """A tiny HTTP endpoint collecting (body, Stripe-Signature) pairs."""
    received: list[tuple[bytes, str]] = []

    async def hook(request: Request) -> Response:
        received.append((await request.body(), request.headers["stripe-signature"]))
        return Response(status_code=status)

    app = Starlette(routes=[Route("/webhooks/stripe", hook, methods=["POST"])])
    async with serve_asgi(app) as base_url:
        yield f"{base_url}/webhooks/stripe", received


async def onboarded_account(fake: FakeStripe) -> str:
    account = await fake.client().v1.accounts.create_async(
        {
            "type": "express",
            "country": "US",
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
        }
    )
    await fake.update_account(account.id, charges_enabled=True, payouts_enabled=True)
    return account.id


def session_params(fake: FakeStripe, destination: str, **extra: Any) -> Any:
    return {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 1500,
                    "product_data": {"name": "Ticket: Friday jam"},
                },
                "quantity": 2,
            }
        ],
        "payment_intent_data": {
            "application_fee_amount": 300,
            "transfer_data": {"destination": destination},
            "metadata": {"hold_id": "hold_1"},
        },
        "metadata": {"hold_id": "hold_1", "space_id": "sp_9"},
        "customer_email": "listener@example.com",
        "success_url": "https://stagepass.test/paid?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://stagepass.test/cancelled",
        "expires_at": fake.now + 45 * 60,
        **extra,
    }


# ---------------------------------------------------------------- parsing


def test_parse_form_nests_like_stripe() -> None:
    raw = (
        "payment_intent_data[application_fee_amount]=300&"
        "line_items[0][price_data][currency]=usd&line_items[1][quantity]=2&"
        "metadata[hold_id]=h%201&metadata[0]=zero&expand[]=a&expand[]=b&mode=payment"
    )
    assert parse_form(raw) == {
        "payment_intent_data": {"application_fee_amount": "300"},
        "line_items": [{"price_data": {"currency": "usd"}}, {"quantity": "2"}],
        "metadata": {"hold_id": "h 1", "0": "zero"},
        "expand": ["a", "b"],
        "mode": "payment",
    }
    assert as_form({"a": 1, "b": True, "c": None, "d": [{"e": 2}]}) == {
        "a": "1",
        "b": "true",
        "d": [{"e": "2"}],
    }


# ---------------------------------------------------------------- Connect


async def test_account_and_account_link(fake: FakeStripe) -> None:
    client = fake.client()
    sent: Any = {
        "controller": {
            "stripe_dashboard": {"type": "express"},
            "fees": {"payer": "application"},
            "losses": {"payments": "application"},
        },
        "country": "US",
        "email": "host@example.com",
        "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        "metadata": {"platform_user": "discord:1:42"},
    }
    account = await client.v1.accounts.create_async(sent)
    assert fake.requests_for("POST", "/v1/accounts")[-1].params == as_form(sent)
    assert account.id.startswith("acct_") and account.type == "express"
    assert (account.charges_enabled, account.payouts_enabled) == (False, False)

    link = await client.v1.account_links.create_async(
        {
            "account": account.id,
            "refresh_url": "https://stagepass.test/refresh",
            "return_url": "https://stagepass.test/return",
            "type": "account_onboarding",
        }
    )
    assert link.object == "account_link" and link.url.startswith(fake.base_url)
    assert link.expires_at > link.created

    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.account_links.create_async(
            {"account": "acct_nope", "type": "account_onboarding"}
        )
    assert missing.value.param == "account"

    await fake.update_account(account.id, charges_enabled=True, payouts_enabled=True)
    fetched = await client.v1.accounts.retrieve_async(account.id)
    assert fetched.charges_enabled and fetched.payouts_enabled and fetched.details_submitted
    assert fetched.requirements and fetched.requirements.currently_due == []
    event = fake.events[-1]
    assert event["type"] == "account.updated" and event["account"] == account.id
    assert event["data"]["previous_attributes"]["charges_enabled"] is False

    await fake.update_account(account.id, requirements=["individual.verification.document"])
    fetched = await client.v1.accounts.retrieve_async(account.id)
    assert fetched.requirements
    assert fetched.requirements.currently_due == ["individual.verification.document"]


async def test_onboarding_page_enables_account(fake: FakeStripe) -> None:
    client = fake.client()
    account = await client.v1.accounts.create_async({"type": "express"})
    link = await client.v1.account_links.create_async(
        {
            "account": account.id,
            "refresh_url": "https://stagepass.test/refresh",
            "return_url": "https://stagepass.test/return",
            "type": "account_onboarding",
        }
    )
    async with httpx.AsyncClient() as browser:
        assert "Finish onboarding" in (await browser.get(link.url)).text
        done = await browser.post(link.url)
    assert done.status_code == 303 and done.headers["location"] == "https://stagepass.test/return"
    assert fake.accounts[account.id]["charges_enabled"] is True


# ---------------------------------------------------------------- Checkout


async def test_checkout_session_records_connect_params(fake: FakeStripe) -> None:
    destination = await onboarded_account(fake)
    sent = session_params(fake, destination)
    session = await fake.client().v1.checkout.sessions.create_async(sent)

    recorded = fake.requests_for("POST", "/v1/checkout/sessions")[-1]
    assert recorded.params == as_form(sent)
    assert recorded.params["payment_intent_data"]["application_fee_amount"] == "300"
    assert recorded.idempotency_key  # the client always sends one on POST
    assert session.status == "open" and session.payment_status == "unpaid"
    assert session.amount_total == 3000 and session.currency == "usd"
    assert session.url == f"{fake.base_url}/pay/{session.id}"
    assert session.metadata and session.metadata.to_dict() == {
        "hold_id": "hold_1",
        "space_id": "sp_9",
    }
    assert session.expires_at == sent["expires_at"] and session.payment_intent is None
    assert session.livemode is False

    again = await fake.client().v1.checkout.sessions.retrieve_async(session.id)
    assert again.id == session.id and again.customer_email == "listener@example.com"


async def test_idempotency_replay_and_conflict(fake: FakeStripe) -> None:
    client = fake.client()
    destination = await onboarded_account(fake)
    sent = session_params(fake, destination)
    first = await client.v1.checkout.sessions.create_async(sent, {"idempotency_key": "hold_1"})
    second = await client.v1.checkout.sessions.create_async(sent, {"idempotency_key": "hold_1"})
    assert first.id == second.id and len(fake.sessions) == 1
    assert fake.requests[-1].replayed
    assert second.last_response and second.last_response.headers["idempotent-replayed"] == "true"

    changed: Any = {**sent, "metadata": {"hold_id": "hold_2"}}
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.checkout.sessions.create_async(changed, {"idempotency_key": "hold_1"})
    assert len(fake.sessions) == 1


async def test_expires_at_window(fake: FakeStripe) -> None:
    fake.now = 1_800_000_000  # frozen clock
    destination = await onboarded_account(fake)
    client = fake.client()
    for offset in (29 * 60, 24 * 3600 + 1):
        with pytest.raises(stripe.InvalidRequestError) as err:
            await client.v1.checkout.sessions.create_async(
                session_params(fake, destination, expires_at=fake.now + offset)
            )
        assert err.value.param == "expires_at" and err.value.http_status == 400
        assert err.value.error and err.value.error.type == "invalid_request_error"
    for offset in (30 * 60, 24 * 3600):
        ok = await client.v1.checkout.sessions.create_async(
            session_params(fake, destination, expires_at=fake.now + offset)
        )
        assert ok.expires_at == 1_800_000_000 + offset
    without: Any = {k: v for k, v in session_params(fake, destination).items()}
    del without["expires_at"]
    default = await client.v1.checkout.sessions.create_async(without)
    assert default.expires_at == fake.now + 24 * 3600


def _without_destination(p: dict[str, Any]) -> None:
    del p["payment_intent_data"]["transfer_data"]


@pytest.mark.parametrize(
    ("mutate", "param"),
    [
        (lambda p: p.pop("line_items"), "line_items"),
        (lambda p: p.pop("mode"), "mode"),
        (lambda p: p.update(surprise="yes"), "surprise"),
        (lambda p: p["payment_intent_data"].update(fee=1), "payment_intent_data[fee]"),
        (
            lambda p: p["line_items"][0]["price_data"].update(unit_amount=-5),
            "line_items[0][price_data][unit_amount]",
        ),
        (
            lambda p: p["line_items"][0]["price_data"].update(unit_amount="12.5"),
            "line_items[0][price_data][unit_amount]",
        ),
        (
            lambda p: p["line_items"][0]["price_data"].update(currency="USD"),
            "line_items[0][price_data][currency]",
        ),
        (lambda p: p["line_items"][0].pop("quantity"), "line_items[0]"),
        (lambda p: p["line_items"][0]["price_data"].update(unit_amount=10), "line_items"),
        (_without_destination, "payment_intent_data[application_fee_amount]"),
        (
            lambda p: p["payment_intent_data"]["transfer_data"].update(destination="acct_missing"),
            "payment_intent_data[transfer_data][destination]",
        ),
        (
            lambda p: p["payment_intent_data"].update(application_fee_amount=5000),
            "payment_intent_data[application_fee_amount]",
        ),
    ],
)
async def test_session_validation(fake: FakeStripe, mutate: Any, param: str) -> None:
    sent = session_params(fake, await onboarded_account(fake))
    mutate(sent)
    with pytest.raises(stripe.InvalidRequestError) as err:
        await fake.client().v1.checkout.sessions.create_async(sent)
    assert err.value.param == param, err.value.user_message
    assert fake.sessions == {} and fake.requests[-1].status == 400


async def test_destination_must_be_onboarded(fake: FakeStripe) -> None:
    client = fake.client()
    account = await client.v1.accounts.create_async(
        {"type": "express", "capabilities": {"transfers": {"requested": True}}}
    )
    with pytest.raises(stripe.InvalidRequestError) as err:
        await client.v1.checkout.sessions.create_async(session_params(fake, account.id))
    assert err.value.param == "payment_intent_data[transfer_data][destination]"


async def test_wrong_api_key_and_unknown_url(fake: FakeStripe) -> None:
    bad = fake.client(api_key="sk_test_wrong")
    with pytest.raises(stripe.AuthenticationError):
        await bad.v1.accounts.retrieve_async("acct_1")
    assert fake.requests[-1].status == 401
    async with httpx.AsyncClient(base_url=fake.base_url) as raw:
        response = await raw.get(
            "/v1/customers", headers={"Authorization": f"Bearer {fake.api_key}"}
        )
    assert response.status_code == 404
    assert "Unrecognized request URL" in response.json()["error"]["message"]


# ---------------------------------------------------------------- payment, webhooks


async def test_complete_delivers_verifiable_event() -> None:
    async with webhook_receiver() as (url, received), FakeStripe(SECRET, url) as fake:
        client = fake.client()
        destination = await onboarded_account(fake)
        session = await client.v1.checkout.sessions.create_async(session_params(fake, destination))
        await fake.complete_session(session.id)

        types = [
            stripe.Webhook.construct_event(body, header, SECRET).type for body, header in received
        ]
        assert types[-1] == "checkout.session.completed"
        assert "account.updated" in types and "charge.succeeded" in types
        assert all(d.ok for d in fake.deliveries)
        body, header = received[-1]
        event = stripe.Webhook.construct_event(body, header, SECRET)
        assert event.data.object.id == session.id
        assert event.data.object.payment_status == "paid"
        assert event.data.object.metadata["hold_id"] == "hold_1"
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, header, "whsec_other")

        paid = await client.v1.checkout.sessions.retrieve_async(session.id)
        intent = await client.v1.payment_intents.retrieve_async(str(paid.payment_intent))
        charge = await client.v1.charges.retrieve_async(str(intent.latest_charge))
        assert intent.status == "succeeded" and intent.amount == 3000
        assert charge.amount == 3000 and charge.application_fee_amount == 300
        assert charge.transfer_data and charge.transfer_data.destination == destination
        assert charge.metadata.to_dict() == {"hold_id": "hold_1"}
        assert charge.payment_intent == intent.id and charge.refunded is False


async def test_signed_payload_replay_and_forgery(fake: FakeStripe) -> None:
    session = await fake.client().v1.checkout.sessions.create_async(
        session_params(fake, await onboarded_account(fake))
    )
    await fake.expire_session(session.id)
    event = fake.events[-1]
    assert event["type"] == "checkout.session.expired"
    body, header = fake.signed_payload(event)
    assert stripe.Webhook.construct_event(body, header, SECRET).id == event["id"]
    assert fake.signed_payload(event)[0] == body  # a duplicate delivery is byte-identical
    forged, forged_header = fake.signed_payload(event, secret="whsec_attacker")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(forged, forged_header, SECRET)
    stale, stale_header = fake.signed_payload(event, timestamp=int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(stale, stale_header, SECRET)


async def test_failed_delivery_is_recorded_not_raised() -> None:
    async with webhook_receiver(status=500) as (url, received), FakeStripe(SECRET, url) as fake:
        account = await fake.client().v1.accounts.create_async({"type": "express"})
        await fake.update_account(account.id, payouts_enabled=True)
    assert len(received) == 1 and fake.deliveries[-1].status == 500
    async with FakeStripe(SECRET, "http://127.0.0.1:9/nowhere") as fake:
        account = await fake.client().v1.accounts.create_async({"type": "express"})
        await fake.update_account(account.id, payouts_enabled=True)
    assert fake.deliveries[-1].status is None
    assert "ConnectError" in str(fake.deliveries[-1].error)


async def test_expire_via_api_and_clock(fake: FakeStripe) -> None:
    client = fake.client()
    destination = await onboarded_account(fake)
    first = await client.v1.checkout.sessions.create_async(session_params(fake, destination))
    expired = await client.v1.checkout.sessions.expire_async(first.id)
    assert expired.status == "expired" and expired.url is None
    assert fake.events[-1]["request"]["idempotency_key"] == fake.requests[-1].idempotency_key
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.expire_async(first.id)
    with pytest.raises(stripe.InvalidRequestError) as err:
        await client.v1.checkout.sessions.retrieve_async("cs_test_missing")
    assert err.value.http_status == 404 and err.value.code == "resource_missing"

    second = await client.v1.checkout.sessions.create_async(session_params(fake, destination))
    fake.advance(44 * 60)
    assert await fake.expire_due_sessions() == []
    fake.advance(60)
    assert await fake.expire_due_sessions() == [second.id]
    assert fake.events[-1]["type"] == "checkout.session.expired"


async def test_pay_page_completes_session(fake: FakeStripe) -> None:
    session = await fake.client().v1.checkout.sessions.create_async(
        session_params(fake, await onboarded_account(fake))
    )
    assert session.url
    async with httpx.AsyncClient() as browser:
        page = await browser.get(session.url)
        assert 'id="pay"' in page.text and "30.00 USD" in page.text
        paid = await browser.post(session.url)
    assert paid.status_code == 303
    assert paid.headers["location"] == f"https://stagepass.test/paid?session={session.id}"
    assert fake.sessions[session.id]["status"] == "complete"


async def test_delayed_payment_completes_unpaid_then_settles(fake: FakeStripe) -> None:
    session = await fake.client().v1.checkout.sessions.create_async(
        session_params(fake, await onboarded_account(fake))
    )
    done = await fake.complete_session(session.id, paid=False)
    assert (done["status"], done["payment_status"]) == ("complete", "unpaid")
    assert fake.events[-1]["type"] == "checkout.session.completed"
    with pytest.raises(stripe.InvalidRequestError):  # nothing to refund yet
        await fake.client().v1.refunds.create_async({"payment_intent": done["payment_intent"]})
    settled = await fake.settle_async_payment(session.id)
    assert settled["payment_status"] == "paid"
    assert fake.events[-1]["type"] == "checkout.session.async_payment_succeeded"


# ---------------------------------------------------------------- refunds, disputes


async def test_refund_twice_fails(fake: FakeStripe) -> None:
    client = fake.client()
    session = await client.v1.checkout.sessions.create_async(
        session_params(fake, await onboarded_account(fake))
    )
    done = await fake.complete_session(session.id)

    refund = await client.v1.refunds.create_async(
        {
            "payment_intent": done["payment_intent"],
            "reverse_transfer": True,
            "refund_application_fee": True,
            "metadata": {"ticket_id": "t1"},
        }
    )
    assert refund.amount == 3000 and refund.status == "succeeded" and refund.transfer_reversal
    charge = await client.v1.charges.retrieve_async(str(refund.charge))
    assert charge.refunded and charge.amount_refunded == 3000
    assert [e["type"] for e in fake.events[-2:]] == ["charge.refunded", "refund.created"]
    assert fake.application_fees[str(charge.application_fee)]["amount_refunded"] == 300

    with pytest.raises(stripe.InvalidRequestError) as err:
        await client.v1.refunds.create_async({"payment_intent": done["payment_intent"]})
    assert err.value.code == "charge_already_refunded"


async def test_partial_refunds_and_dispute(fake: FakeStripe) -> None:
    client = fake.client()
    session = await client.v1.checkout.sessions.create_async(
        session_params(fake, await onboarded_account(fake))
    )
    done = await fake.complete_session(session.id)
    charge_id = fake.payment_intents[done["payment_intent"]]["latest_charge"]

    await fake.refund_charge(charge_id, 1000)
    with pytest.raises(stripe.InvalidRequestError) as err:
        await client.v1.refunds.create_async({"charge": charge_id, "amount": 2500})
    assert err.value.param == "amount"
    await fake.dispute_charge(charge_id)
    assert fake.events[-1]["type"] == "charge.dispute.created"
    with pytest.raises(stripe.InvalidRequestError) as err:
        await client.v1.refunds.create_async({"charge": charge_id})
    assert err.value.code == "charge_disputed"


# ---------------------------------------------------------------- lists


async def test_list_pagination(fake: FakeStripe) -> None:
    client = fake.client()
    destination = await onboarded_account(fake)
    fake.now = 1_800_000_000
    ids = []
    for _ in range(5):
        session = await client.v1.checkout.sessions.create_async(session_params(fake, destination))
        ids.append(session.id)
        fake.advance(10)
    newest_first = ids[::-1]

    page = await client.v1.checkout.sessions.list_async({"limit": 2})
    assert [s.id for s in page.data] == newest_first[:2] and page.has_more
    page2 = await client.v1.checkout.sessions.list_async(
        {"limit": 2, "starting_after": page.data[-1].id}
    )
    assert [s.id for s in page2.data] == newest_first[2:4]
    every = [s.id async for s in page.auto_paging_iter()]
    assert every == newest_first
    recent = await client.v1.checkout.sessions.list_async(
        {"created": {"gte": 1_800_000_020}, "limit": 10}
    )
    assert [s.id for s in recent.data] == newest_first[:3] and not recent.has_more
    assert fake.requests[-1].params == {"created": {"gte": "1800000020"}, "limit": "10"}


async def test_events_list_and_retrieve(fake: FakeStripe) -> None:
    client = fake.client()
    session = await client.v1.checkout.sessions.create_async(
        session_params(fake, await onboarded_account(fake))
    )
    await fake.complete_session(session.id)

    completed = await client.v1.events.list_async({"type": "checkout.session.completed"})
    assert [e.data.object.id for e in completed.data] == [session.id]
    charges = await client.v1.events.list_async({"type": "charge.*"})
    assert [e.type for e in charges.data] == ["charge.succeeded"]
    everything = [
        e.id async for e in (await client.v1.events.list_async({"limit": 1})).auto_paging_iter()
    ]
    assert everything == [e["id"] for e in reversed(fake.events)]
    one = await client.v1.events.retrieve_async(fake.events[0]["id"])
    assert one.type == "account.updated"
