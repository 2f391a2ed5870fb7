"""Listeners help themselves (issue 15 item 3): `/ticket refund` by the holder within the
host's policy, and the "at most N tickets" refusal that shows what they already hold.
Through the shell chat with billing on the Stripe fake."""

from __future__ import annotations

from datetime import timedelta

from bot.models import TicketStatus
from tests.billing.conftest import World
from tests.fakes.stripe_api import FakeStripe


async def identity_id(world: World, name: str) -> int:
    identity = await world.core.identities.by_key(f"{world.chat.community_id}:{name}")
    assert identity is not None and identity.id is not None
    return identity.id


async def test_holder_refunds_own_ticket_once_within_the_policy(
    world: World, fake: FakeStripe
) -> None:
    space_id = await world.paid_space()
    await world.buy_and_pay("bob", space_id)
    await world.buy_and_pay("carol", space_id)
    [bob] = await world.core.tickets.tickets_of(await identity_id(world, "bob"))
    [carol] = await world.core.tickets.tickets_of(await identity_id(world, "carol"))

    stranger = await world.say("carol", f"/ticket refund {bob.id}")
    assert stranger.error and "Only the host" in stranger.text

    done = await world.say("bob", f"/ticket refund {bob.id}")
    assert not done.error, done.text
    assert done.text == f"Ticket {bob.id} is refunded: $15.00 goes back to you."
    [refund] = fake.requests_for("POST", "/v1/refunds")
    assert refund.params["amount"] == "1500"
    assert (await world.core.tickets.get(bob.id)).status == TicketStatus.REFUNDED
    await world.core.bus.drain()
    assert any(f"Your ticket {bob.id}" in m and "refunded" in m for m in world.chat.dms("bob"))

    again = await world.say("bob", f"/ticket refund {bob.id}")
    assert again.error and "already refunded" in again.text
    assert len(fake.requests_for("POST", "/v1/refunds")) == 1  # once

    world.clock.set(world.clock.now() + timedelta(days=1, hours=6, minutes=1))  # < 24 h left
    late = await world.say("carol", f"/ticket refund {carol.id}")
    assert late.error
    assert late.text == (
        f"Refunds for Space #{space_id} closed at Wed 2 Jan 2030, 18:00 UTC; ask the host."
    )
    assert len(fake.requests_for("POST", "/v1/refunds")) == 1
    assert (await world.core.tickets.get(carol.id)).status == TicketStatus.VALID


async def test_at_most_refusal_shows_the_ticket_or_the_pending_hold(world: World) -> None:
    space_id = await world.paid_space()  # limit:3
    await world.buy_and_pay("bob", space_id, quantity=3)
    bob = await world.core.identities.by_key(f"{world.chat.community_id}:bob")
    assert bob is not None and bob.id is not None
    ids = [t.id for t in await world.core.tickets.tickets_of(bob.id)]

    more = await world.say("bob", f"/ticket buy {space_id}")
    assert more.error
    assert more.text == (
        f"You can have at most 3 tickets for Space #{space_id}, and you already have "
        + "; ".join(f"ticket {i}" for i in ids)
        + f". See them with /ticket show {space_id}."
    )
    assert more.buttons == ()

    held = await world.say("carol", f"/ticket buy {space_id} quantity:2")
    pay_url = held.buttons[0].url
    assert pay_url
    over = await world.say("carol", f"/ticket buy {space_id} quantity:2")
    assert over.error
    assert "at most 3 tickets" in over.text
    assert "2 seat(s) held for you, awaiting payment of $30.00 until" in over.text
    assert over.text.endswith(f"Pay for it to keep your seats: {pay_url}")
    assert [(b.label, b.url) for b in over.buttons] == [(f"Pay #{space_id}", pay_url)]
