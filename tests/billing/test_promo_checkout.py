"""A promo code through billing: Stripe's Checkout Session gets the discounted unit amount,
the platform's cut is taken on what is paid, and a 100% code opens no Checkout at all."""

from __future__ import annotations

from sqlmodel import select

from billing.models import BillingCheckout
from bot.models import Ticket
from tests.billing.conftest import CREATE_PAID, World


async def test_checkout_gets_the_discounted_price_and_the_fee_on_what_is_paid(
    world: World,
) -> None:
    fake = world.fake
    assert fake is not None
    await world.onboard("alice")
    space_id = int(
        (await world.say("alice", CREATE_PAID.format(n=3))).text.split("#")[1].split()[0]
    )
    made = await world.say("alice", f"/space promo {space_id} code:HALF percent:50 uses:5")
    assert not made.error, made.text

    reply = await world.say("bob", f"/ticket buy {space_id} quantity:2 code:half")
    assert not reply.error and "Pay to confirm" in reply.text, reply.text
    [sent] = fake.requests_for("POST", "/v1/checkout/sessions")
    assert sent.params["line_items"][0]["price_data"]["unit_amount"] == "750"  # $15.00 - 50 %
    assert sent.params["line_items"][0]["quantity"] == "2"
    assert sent.params["payment_intent_data"]["application_fee_amount"] == "150"  # 10 % of $15
    async with world.core.db.session() as session:
        [checkout] = list(await session.exec(select(BillingCheckout)))
    assert (checkout.amount_minor, checkout.fee_minor) == (1500, 150)

    url = reply.buttons[0].url
    assert url is not None
    session_id = url.rsplit("/", 1)[1]
    await fake.complete_session(session_id)
    await world.pump()
    async with world.core.db.session() as session:
        tickets = list(await session.exec(select(Ticket)))
    assert [(t.price_minor, t.fee_minor) for t in tickets] == [(750, 75), (750, 75)]


async def test_a_100_percent_code_opens_no_checkout(world: World) -> None:
    fake = world.fake
    assert fake is not None
    await world.onboard("alice")
    space_id = int(
        (await world.say("alice", CREATE_PAID.format(n=3))).text.split("#")[1].split()[0]
    )
    await world.say("alice", f"/space promo {space_id} code:GUEST percent:100 uses:1")
    reply = await world.say("bob", f"/ticket buy {space_id} code:GUEST")
    assert reply.text.startswith("You're in! Ticket "), reply.text
    assert fake.requests_for("POST", "/v1/checkout/sessions") == []
    assert any("Your ticket for Jazz night" in dm for dm in world.chat.dms("bob"))
