"""A price edit keeps the Space's currency (a €3 Space edited to price:4 sells at €4.00,
not $4), says the change, and checkout charges exactly that; after a sale the price is
locked with a refusal that says what to do instead. A live paid Space cancelled with
confirm:yes refunds every ticket through Stripe exactly once."""

from __future__ import annotations

from bot.models import SpaceStatus
from tests.billing.conftest import World
from tests.fakes.stripe_api import FakeStripe

EUR_SPACE = '/space create title:"Chanson" starts:"2030-01-03 18:00" tickets:5 price:3 currency:eur'


async def test_a_price_edit_keeps_the_currency_and_shows_the_change(
    world: World, fake: FakeStripe
) -> None:
    await world.onboard("alice")
    assert not (await world.say("alice", EUR_SPACE)).error

    reply = await world.say("alice", "/space edit 1 price:4")
    assert not reply.error, reply.text
    assert reply.text.startswith("Updated:\nPrice: €3.00 → €4.00")
    space = await world.core.spaces.get(1)
    assert (space.price_minor, space.currency) == (400, "eur")

    await world.buy("bob", 1)
    [sent] = fake.requests_for("POST", "/v1/checkout/sessions")
    price_data = sent.params["line_items"][0]["price_data"]
    assert (price_data["currency"], price_data["unit_amount"]) == ("eur", "400")


async def test_an_edit_naming_a_currency_reads_the_price_in_it(world: World) -> None:
    await world.onboard("alice")
    assert not (await world.say("alice", EUR_SPACE)).error

    reply = await world.say("alice", "/space edit 1 price:800 currency:jpy")
    assert not reply.error, reply.text
    assert "Price: €3.00 → ¥800" in reply.text
    space = await world.core.spaces.get(1)
    assert (space.price_minor, space.currency) == (800, "jpy")

    # the Space is in yen now: a price with decimals is read as yen, and refused
    refused = await world.say("alice", "/space edit 1 price:4.50")
    assert refused.error and "JPY amounts take no decimals" in refused.text
    assert (await world.core.spaces.get(1)).price_minor == 800


async def test_after_a_sale_the_price_is_locked_and_the_refusal_says_why(world: World) -> None:
    await world.onboard("alice")
    assert not (await world.say("alice", EUR_SPACE)).error
    await world.buy_and_pay("bob", 1)

    refused = await world.say("alice", "/space edit 1 price:4")
    assert refused.error
    assert refused.text == (
        "1 ticket(s) for Space #1 are already sold or held for buyers, so its price can't change; "
        "to sell at a new price, cancel it (/space cancel 1 refunds every ticket) and "
        "announce it again."
    )
    space = await world.core.spaces.get(1)
    assert (space.price_minor, space.currency) == (300, "eur")
    # the same price again is no change, and allowed
    same = await world.say("alice", "/space edit 1 price:3")
    assert not same.error and same.text.startswith("Nothing changed")


async def test_a_live_paid_space_cancelled_with_confirm_refunds_each_ticket_once(
    world: World, fake: FakeStripe
) -> None:
    await world.onboard("alice")
    assert not (await world.say("alice", EUR_SPACE)).error
    await world.buy_and_pay("bob", 1)
    await world.buy_and_pay("carol", 1)
    world.clock.set(world.clock.now().replace(day=3, hour=17, minute=50))
    assert not (await world.say("alice", "/space start 1")).error

    refused = await world.say("alice", "/space cancel 1")
    assert refused.error and "add confirm:yes" in refused.text
    assert fake.requests_for("POST", "/v1/refunds") == []

    done = await world.say("alice", "/space cancel 1 confirm:yes")
    assert not done.error, done.text
    assert "2 ticket(s) refunded" in done.text
    await world.pump()
    assert (await world.core.spaces.get(1)).status == SpaceStatus.CANCELLED
    assert len(fake.requests_for("POST", "/v1/refunds")) == 2
    again = await world.say("alice", "/space cancel 1 confirm:yes")
    assert again.error and "was cancelled" in again.text
    await world.pump()
    assert len(fake.requests_for("POST", "/v1/refunds")) == 2
