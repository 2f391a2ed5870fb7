"""The paid story through the shell chat and through the HTTP API: onboard, sell, pay,
ticket delivered with its receipt, token verifies; cancel refunds everyone once."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlmodel import select

from billing.gateway import EXPIRY_MARGIN
from billing.models import (
    BillingCheckout,
    BillingEvent,
    BillingRefund,
    CheckoutStatus,
    RefundStatus,
)
from bot.actors import Actor
from bot.events import Event, PaymentDisputed
from bot.models import HoldStatus, Platform, Ticket, TicketStatus
from tests.billing.conftest import CREATE_PAID, TOKEN, World
from tests.fakes.stripe_api import FakeStripe, as_form
from tests.serving import serve_asgi


async def rows(world: World, model: Any) -> list[Any]:
    async with world.core.db.session() as session:
        return list(await session.exec(select(model)))


async def tickets_of(world: World, name: str) -> list[Ticket]:
    """Every ticket `name` holds, whatever its state."""
    identity = await world.core.identities.by_key(f"{world.chat.community_id}:{name}")
    if identity is None or identity.id is None:
        return []
    return await world.core.tickets.tickets_of(identity.id, valid_only=False)


async def test_buy_pay_and_get_ticket_through_chat(world: World) -> None:
    fake = world.fake
    assert fake is not None
    account = await world.onboard("alice")
    space_id = int(
        (await world.say("alice", CREATE_PAID.format(n=3))).text.split("#")[1].split()[0]
    )
    world.chat.person("bob").email = "bob@example.com"

    reply = await world.say("bob", f"/ticket buy {space_id} quantity:2")
    assert not reply.error, reply.text
    assert "Pay to confirm" in reply.text and "TEST MODE" not in reply.text
    [button] = reply.buttons
    assert button.url and button.url.startswith(f"{fake.base_url}/pay/cs_test_")
    session_id = button.url.rsplit("/", 1)[1]

    # exactly what Stripe was asked for
    [sent] = fake.requests_for("POST", "/v1/checkout/sessions")
    [checkout] = await rows(world, BillingCheckout)
    hold = await world.core.tickets.get_hold(str(checkout.hold_id))
    now = world.clock.now()
    metadata = {
        "stagepass_kind": "ticket",
        "stagepass_hold": hold.id,
        "stagepass_space": str(space_id),
        "stagepass_buyer": "shell:local:bob",
    }
    assert sent.params == as_form(
        {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 1500,
                        "product_data": {
                            "name": "Ticket: Jazz night",
                            "description": f"Space #{space_id}, starts 2030-01-03 18:00 UTC",
                        },
                    },
                    "quantity": 2,
                }
            ],
            "payment_intent_data": {
                "description": f"Stagepass Space #{space_id}: Jazz night",
                "metadata": metadata,
                "transfer_data": {"destination": account},
                "application_fee_amount": 300,  # 10 % of $30.00
            },
            "metadata": metadata,
            "client_reference_id": hold.id,
            # the hold's 30 minutes, nudged past Stripe's 30-minute minimum
            "expires_at": math.ceil(now.timestamp()) + 30 * 60 + EXPIRY_MARGIN,
            "success_url": "http://stagepass.test/billing/checkout/done"
            "?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://stagepass.test/billing/checkout/cancelled",
            "customer_email": "bob@example.com",
        }
    )
    assert sent.idempotency_key == f"stagepass-checkout-{hold.id}"
    assert (checkout.session_id, checkout.status, checkout.fee_minor) == (
        session_id,
        CheckoutStatus.OPEN,
        300,
    )

    await fake.complete_session(session_id)
    responses = await world.pump()
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert [r.json()["result"] for r in responses][-1] == "processed"

    [dm] = world.chat.dms("bob")
    assert "Your ticket for Jazz night" in dm
    assert dm.count("paid $15.00 (platform fee $1.50)") == 2
    assert "Refunds: in full until Wed 2 Jan 2030, 18:00 UTC (24 h before the start)" in dm
    assert dm.count("[Join the room] http://stagepass.test/rooms/") == 2
    token = dm.split("#token=")[1].split()[0]
    admission = await world.core.tickets.verify_token(token, space_id=space_id)
    assert admission.ticket is not None and admission.ticket.status == TicketStatus.VALID

    assert (await world.core.tickets.get_hold(hold.id)).status == HoldStatus.CONFIRMED
    [checkout] = await rows(world, BillingCheckout)
    assert checkout.status == CheckoutStatus.PAID and checkout.payment_intent_id
    assert checkout.charge_id == fake.payment_intents[checkout.payment_intent_id]["latest_charge"]
    stored = {e.type for e in await rows(world, BillingEvent)}
    assert "checkout.session.completed" in stored and "account.updated" in stored
    space = await world.core.spaces.get(space_id)
    assert space.sold == 2
    # the webhook re-read the session from Stripe (with its payment expanded)
    reread = fake.requests_for("GET", f"/v1/checkout/sessions/{session_id}")
    assert reread and reread[-1].params == {"expand": ["payment_intent"]}


async def test_full_flow_over_real_http(world: World, fake: FakeStripe) -> None:
    """Operator API in, Stripe's own webhook deliveries over the network, API out."""
    async with serve_asgi(world.app) as base:
        fake.webhook_url = f"{base}/webhooks/stripe"
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as api:
            host = {
                "platform": "discord",
                "community": "guild1",
                "user_id": "alice",
                "display_name": "Alice",
            }
            buyer = {
                "platform": "discord",
                "community": "guild1",
                "user_id": "bob",
                "display_name": "Bob",
            }
            body = {
                "host": host,
                "title": "Live",
                "starts_at": "2030-01-03T18:00:00Z",
                "price_minor": 1000,
                "currency": "usd",
                "capacity": 2,
            }
            refused = await api.post("/api/v1/spaces", json=body)
            assert refused.status_code == 409, refused.text
            assert "/payouts connect" in refused.json()["error"]["message"]

            identity = await world.core.identities.ensure(
                Actor(Platform.DISCORD, "guild1", "alice", "Alice")
            )
            link = await world.billing.accounts.connect(identity)
            async with httpx.AsyncClient() as browser:
                assert (await browser.post(link)).status_code == 303
            await fake.flush()  # account.updated went to our server

            created = await api.post("/api/v1/spaces", json=body)
            assert created.status_code == 201, created.text
            space_id = created.json()["id"]
            hold = await api.post(
                f"/api/v1/spaces/{space_id}/holds", json={"buyer": buyer, "quantity": 1}
            )
            assert hold.status_code == 201, hold.text
            checkout_url = hold.json()["checkout_url"]
            assert checkout_url.startswith(fake.base_url)

            async with httpx.AsyncClient() as browser:
                page = await browser.get(checkout_url)
                assert 'id="pay"' in page.text
                paid = await browser.post(checkout_url)
            assert paid.status_code == 303
            assert paid.headers["location"].startswith(
                "http://stagepass.test/billing/checkout/done?session_id=cs_test_"
            )
            await fake.flush()
            await world.core.bus.drain()
            assert all(d.ok for d in fake.deliveries), fake.deliveries

            tickets = await api.get("/api/v1/buyers/discord/guild1/bob/tickets")
            [ticket] = tickets.json()["tickets"]
            verified = await api.post(
                "/api/v1/tickets/verify", json={"token": ticket["token"], "space_id": space_id}
            )
            assert verified.status_code == 200 and verified.json()["valid"] is True

            done = await api.get(paid.headers["location"].replace("http://stagepass.test", ""))
            assert done.status_code == 200 and "Payment received" in done.text


async def test_cancel_refunds_every_ticket_exactly_once(world: World, fake: FakeStripe) -> None:
    space_id = await world.paid_space(tickets=10)
    await world.buy_and_pay("bob", space_id, quantity=2)
    await world.buy_and_pay("carol", space_id)
    for n in range(5):  # enough buyers for progress reports along the way
        await world.buy_and_pay(f"fan{n}", space_id)
    await world.buy("dave", space_id)  # an unpaid hold: released, its checkout expired
    tickets = [t for t in await rows(world, Ticket) if t.status == TicketStatus.VALID]
    assert len(tickets) == 8

    reply = await world.say("alice", f'/space cancel {space_id} reason:"Sick"')
    assert not reply.error and "8 ticket(s) refunded" in reply.text, reply.text
    await world.pump()

    refunds = fake.requests_for("POST", "/v1/refunds")
    assert len(refunds) == 8
    assert sorted(r.idempotency_key or "" for r in refunds) == sorted(
        f"stagepass-refund-ticket:{t.id}" for t in tickets
    )
    by_ticket = {t.id: t for t in tickets}
    for request in refunds:
        ticket_id = request.params["metadata"]["stagepass_ticket"]
        checkout = await world.billing.ledger.checkout_for_hold(by_ticket[ticket_id].hold_id)
        assert checkout is not None
        assert request.params == as_form(
            {
                "payment_intent": checkout.payment_intent_id,
                "amount": 1500,
                "reason": "requested_by_customer",
                "metadata": {
                    "stagepass_refund": f"ticket:{ticket_id}",
                    "stagepass_ticket": ticket_id,
                    "stagepass_hold": by_ticket[ticket_id].hold_id,
                },
                "reverse_transfer": True,
                "refund_application_fee": True,
            }
        )
    assert sum(r["amount"] for r in fake.refunds.values()) == 8 * 1500
    assert all(c["amount_refunded"] == c["amount"] for c in fake.charges.values())

    assert all(t.status == TicketStatus.REFUNDED for t in await rows(world, Ticket))
    assert all(r.status == RefundStatus.SUCCEEDED for r in await rows(world, BillingRefund))
    assert any("was refunded" in m for m in world.chat.dms("bob"))
    assert any("was refunded" in m for m in world.chat.dms("carol"))
    progress = [m for m in world.chat.dms("alice") if m.startswith("Refunds for Jazz night")]
    assert progress[-1] == "Refunds for Jazz night (#1): 8 of 8 ticket(s) handled, all done."
    assert len(progress) >= 2  # told along the way, not only at the end
    dave_session = [s for s in fake.sessions.values() if s["status"] == "expired"]
    assert len(dave_session) == 1  # dave can no longer pay for seats that are gone

    # again, and again: nothing more is refunded
    again = await world.say("alice", f"/space cancel {space_id}")
    assert again.error
    for ticket in tickets:
        await world.core.tickets.refund((await world.core.tickets.get(ticket.id)), reason="x")
        await world.billing.gateway.refund(ticket, reason="again")
    report = await world.billing.reconcile()
    assert report.changes == [] and report.errors == []
    # a refund already made is not even asked for again
    assert len(fake.requests_for("POST", "/v1/refunds")) == 8 and len(fake.refunds) == 8


async def test_host_refund_follows_the_policy(world: World, fake: FakeStripe) -> None:
    space_id = await world.paid_space()
    await world.buy_and_pay("bob", space_id)
    await world.buy_and_pay("carol", space_id)
    bob, carol = [t for t in await rows(world, Ticket)]

    denied = await world.say("carol", f"/ticket refund {bob.id}")
    assert denied.error and "Only the host" in denied.text

    done = await world.say("alice", f"/ticket refund {bob.id}")
    assert not done.error, done.text
    assert done.text == f"Ticket {bob.id} is refunded: $15.00 goes back to the buyer."
    [refund] = fake.requests_for("POST", "/v1/refunds")
    assert refund.params["amount"] == "1500" and refund.params["reverse_transfer"] == "true"
    assert (await world.core.tickets.get(bob.id)).status == TicketStatus.REFUNDED
    await world.pump()
    assert (await world.core.tickets.get(carol.id)).status == TicketStatus.VALID

    world.clock.set(world.clock.now() + timedelta(days=1, hours=6, minutes=1))  # < 24 h left
    late = await world.say("alice", f"/ticket refund {carol.id}")
    assert late.error
    assert "closed at Wed 2 Jan 2030, 18:00 UTC (24 h before the start)" in late.text
    assert len(fake.requests_for("POST", "/v1/refunds")) == 1
    assert (await world.core.tickets.get(carol.id)).status == TicketStatus.VALID


async def test_late_payment_after_sellout_is_refunded_and_explained(
    world: World, fake: FakeStripe
) -> None:
    space_id = await world.paid_space(tickets=1)
    bob_session = await world.buy("bob", space_id)
    # bob pays in the last seconds of the checkout, after his 30-minute hold lapsed
    world.clock.set(world.clock.now() + timedelta(minutes=30, seconds=30))
    await fake.complete_session(bob_session)
    world.skip_pending()  # ... and the webhook is late
    bob_completed = world.completed_event(bob_session)
    assert await world.core.tickets.expire_holds() == 1
    await world.core.bus.drain()
    await world.buy_and_pay("carol", space_id)  # carol takes the freed seat

    response = await world.post_event(bob_completed)
    await world.core.bus.drain()
    assert response.status_code == 200, response.text
    assert "refunded late payment" in response.json()["detail"]

    [refund] = fake.refunds.values()
    assert refund["amount"] == 1500
    [request] = fake.requests_for("POST", "/v1/refunds")
    assert request.idempotency_key is not None
    assert request.idempotency_key.endswith(
        "hold:" + bob_completed["data"]["object"]["metadata"]["stagepass_hold"]
    )
    assert await tickets_of(world, "bob") == []
    [dm] = world.chat.dms("bob")
    assert "arrived after your hold had expired and the Space sold out" in dm
    assert "refunded in full" in dm

    # a second delivery, reconciliation, another seat freeing up: never a ticket, one refund
    again = await world.post_event(bob_completed)
    assert again.json()["result"] == "duplicate"
    [carol_ticket] = await tickets_of(world, "carol")
    await world.core.tickets.refund(carol_ticket, reason="freeing the seat")
    report = await world.billing.reconcile()
    assert not any("issued" in c for c in report.changes), report.changes
    assert len(fake.refunds) == 2  # bob's late payment, carol's ticket
    assert len([m for m in world.chat.dms("bob") if "refunded in full" in m]) == 1


async def test_refund_and_dispute_made_outside_stagepass(world: World, fake: FakeStripe) -> None:
    space_id = await world.paid_space()
    await world.buy_and_pay("bob", space_id, quantity=2)
    await world.buy_and_pay("carol", space_id)
    seen: list[Event] = []

    async def spy(event: Event) -> None:
        seen.append(event)

    world.core.bus.subscribe(PaymentDisputed, spy)
    bob_tickets = await tickets_of(world, "bob")
    carol_tickets = await tickets_of(world, "carol")
    bob_checkout = await world.billing.ledger.checkout_for_hold(bob_tickets[0].hold_id)
    carol_checkout = await world.billing.ledger.checkout_for_hold(carol_tickets[0].hold_id)
    assert bob_checkout is not None and carol_checkout is not None

    # a goodwill refund smaller than a ticket closes nothing
    await fake.refund_charge(str(bob_checkout.charge_id), 500)
    await world.pump()
    assert all(t.status == TicketStatus.VALID for t in await rows(world, Ticket))
    # one more ticket's worth: one of bob's two tickets goes
    await fake.refund_charge(str(bob_checkout.charge_id), 1500)
    await world.pump()
    statuses = sorted([(await world.core.tickets.get(t.id)).status for t in bob_tickets])
    assert statuses == [TicketStatus.REFUNDED, TicketStatus.VALID]
    assert any("was refunded" in m for m in world.chat.dms("bob"))

    await fake.dispute_charge(str(carol_checkout.charge_id), reason="fraudulent")
    responses = await world.pump()
    assert responses[-1].json()["result"] == "processed"
    [carol_ticket] = await tickets_of(world, "carol")
    assert carol_ticket.status == TicketStatus.REVOKED
    assert any("disputed with the buyer's bank (fraudulent)" in m for m in world.chat.dms("alice"))
    assert any(
        "Moderators: a payment for #1 Jazz night was disputed" in line
        for line in world.chat.channel
    )
    [disputed] = seen
    assert isinstance(disputed, PaymentDisputed) and disputed.ticket_ids == (carol_ticket.id,)
    assert any("was cancelled" in m for m in world.chat.dms("carol"))
    assert not fake.requests_for("POST", "/v1/refunds")  # we refunded nothing ourselves


@pytest.mark.parametrize("public", [True, False])
async def test_tip_pays_the_host_and_thanks_them(
    world: World, fake: FakeStripe, public: bool
) -> None:
    account = await world.onboard("alice")
    flag = "yes" if public else "no"
    reply = await world.say("bob", f'/tip @alice 5 message:"Great show" public:{flag}')
    assert not reply.error, reply.text
    assert "Tip $5.00 to alice" in reply.text
    [sent] = fake.requests_for("POST", "/v1/checkout/sessions")
    pid = sent.params["payment_intent_data"]
    assert pid["transfer_data"] == {"destination": account}
    assert "application_fee_amount" not in pid  # tips: 0 % by default
    assert sent.params["line_items"][0]["price_data"]["unit_amount"] == "500"
    assert sent.params["metadata"]["stagepass_kind"] == "tip"

    url = reply.buttons[0].url
    assert url is not None
    session_id = url.rsplit("/", 1)[1]
    await fake.complete_session(session_id)
    await world.pump()
    assert 'bob tipped you $5.00: "Great show"' in world.chat.dms("alice")
    thanks = 'Thank you bob for tipping alice $5.00: "Great show"'
    assert (thanks in world.chat.channel) is public
    assert any("Your tip of $5.00" in m for m in world.chat.dms("bob"))
    await world.post_event(world.completed_event(session_id))  # a duplicate thanks nobody
    await world.core.bus.drain()
    assert len(world.chat.dms("alice")) == 1


async def test_the_desk_counts_a_spaces_paid_tips_through_billing(
    world: World, fake: FakeStripe
) -> None:
    """Billing owns the tips table; the core's desk asks the gateway (`tips`) for them:
    only this Space's paid tips count, not a pending one nor a tip to another Space."""
    world.core.settings.tip_fee_percent = Decimal("10")
    space_id = await world.paid_space("alice")
    other = await world.say("alice", CREATE_PAID.format(n=3))
    other_id = int(other.text.split("#")[1].split()[0])
    sessions = []
    for amount, space in ((5, space_id), (2, space_id), (9, other_id)):
        reply = await world.say("bob", f"/tip @alice {amount} space:{space}")
        assert not reply.error and reply.buttons[0].url is not None, reply.text
        sessions.append(reply.buttons[0].url.rsplit("/", 1)[1])
    paid, _pending, elsewhere = sessions
    for session_id in (paid, elsewhere):
        await fake.complete_session(session_id)
    await world.pump()

    desk = await world.say("alice", f"/space tickets {space_id}")
    assert not desk.error, desk.text
    assert "tips $5.00 (1)" in desk.text
    assert "you keep $4.50." in desk.text  # no tickets sold; the tip less its 10 % cut


async def test_tip_refused_without_account_or_to_yourself(world: World) -> None:
    nobody = await world.say("bob", "/tip @alice 5")
    assert nobody.error and "alice has not connected a Stripe account" in nobody.text
    await world.onboard("alice")
    own = await world.say("alice", "/tip @alice 5")
    assert own.error and "can't tip yourself" in own.text
    tiny = await world.say("bob", "/tip @alice 0.10")
    assert tiny.error and "smallest tip is $0.50" in tiny.text


async def test_tip_fee_is_its_own_setting(world: World, fake: FakeStripe) -> None:
    from decimal import Decimal

    world.core.settings.tip_fee_percent = Decimal("5")
    await world.onboard("alice")
    await world.say("bob", "/tip @alice 7.50")
    [sent] = fake.requests_for("POST", "/v1/checkout/sessions")
    assert sent.params["payment_intent_data"]["application_fee_amount"] == "38"  # 37.5 -> 38
