"""The ticket DM is the buyer's receipt: with a Stripe key it says what was paid; in the
keyless TEST MODE it says plainly that nothing was, and never that the buyer "paid"."""

from __future__ import annotations

from tests.billing.conftest import CREATE_PAID, World


async def test_a_test_mode_receipt_says_no_real_payment(dev_world: World) -> None:
    world = dev_world
    created = await world.say("alice", CREATE_PAID.format(n=2))
    assert not created.error, created.text
    bought = await world.say("bob", "/ticket buy 1")
    assert not bought.error, bought.text
    page = str(bought.buttons[0].url).removeprefix("http://stagepass.test")
    assert (await world.http.post(page)).status_code == 303
    await world.core.bus.drain()

    [dm] = world.chat.dms("bob")
    assert (
        "TEST MODE — no real payment: a test purchase at $15.00 (platform fee $1.50), "
        "nothing was charged." in dm
    )
    assert "paid" not in dm
    # the rest of the receipt is as it would be: refund policy and join link
    assert "Refunds: in full until Wed 2 Jan 2030, 18:00 UTC (24 h before the start)" in dm
    assert "[Join the room] http://stagepass.test/rooms/1#token=" in dm


async def test_a_live_receipt_says_paid_and_no_test_mode(world: World) -> None:
    space_id = await world.paid_space()
    await world.buy_and_pay("bob", space_id)

    [dm] = world.chat.dms("bob")
    assert "paid $15.00 (platform fee $1.50). Refunds: in full until" in dm
    assert "TEST MODE" not in dm and "nothing was charged" not in dm


async def test_a_test_mode_tip_tells_the_tipper_nothing_was_charged(dev_world: World) -> None:
    world = dev_world
    tip = await world.say("bob", "/tip @alice 3 public:no")
    assert not tip.error, tip.text
    page = str(tip.buttons[0].url).removeprefix("http://stagepass.test")
    assert (await world.http.post(page)).status_code == 303
    await world.core.bus.drain()
    assert world.chat.dms("bob") == [
        "Thank you! Your tip of $3.00 (TEST MODE — no real payment) was recorded; "
        "nothing was charged."
    ]
    assert world.chat.channel == []  # a private tip is not thanked in the channel


async def test_a_ticket_bought_past_the_refund_cutoff_says_refunds_are_closed(
    world: World,
) -> None:
    """Bought 12 hours before the start, with refunds ending 24 hours before it: the
    receipt says the window already closed, not "in full until" a time in the past."""
    await world.onboard("alice")
    created = await world.say(
        "alice",
        '/space create title:"Tonight" starts:"2030-01-02 00:00" tickets:5 price:15',
    )
    assert not created.error, created.text
    await world.buy_and_pay("bob", 1)

    [dm] = world.chat.dms("bob")
    assert (
        "Refunds: closed at Tue 1 Jan 2030, 00:00 UTC (24 h before the start), so this "
        "ticket cannot be refunded unless the Space is cancelled." in dm
    )
    assert "in full until" not in dm
