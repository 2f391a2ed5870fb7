"""`/webhooks/stripe` under abuse: forged, stale, duplicated, replayed, reordered and
concurrent deliveries. Whatever arrives, each paid hold becomes exactly its tickets,
and nothing unsigned is stored."""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from billing.models import BillingEvent
from bot.events import TicketIssued
from bot.models import Hold, HoldStatus, Space, Ticket, TicketStatus
from tests.billing.conftest import SECRET, World
from tests.fakes.stripe_api import FakeStripe


async def count(world: World, model: Any) -> int:
    async with world.core.db.session() as session:
        return len(list(await session.exec(select(model))))


async def assert_books_balance(world: World) -> None:
    """Every confirmed hold has exactly its tickets; seats add up."""
    async with world.core.db.session() as session:
        holds = list(await session.exec(select(Hold)))
        tickets = list(await session.exec(select(Ticket)))
        spaces = list(await session.exec(select(Space)))
    for hold in holds:
        mine = [t for t in tickets if t.hold_id == hold.id]
        expected = hold.quantity if hold.status == HoldStatus.CONFIRMED else 0
        assert len(mine) == expected, (hold, mine)
    for space in spaces:
        valid = sum(1 for t in tickets if t.space_id == space.id and t.status == TicketStatus.VALID)
        held = sum(
            h.quantity for h in holds if h.space_id == space.id and h.status == HoldStatus.ACTIVE
        )
        assert (space.sold, space.held) == (valid, held)


async def test_bad_signatures_are_rejected_and_nothing_is_stored(
    world: World, fake: FakeStripe
) -> None:
    space_id = await world.paid_space()
    session_id = await world.buy("bob", space_id)
    await fake.complete_session(session_id)
    event = world.completed_event(session_id)
    world.skip_pending()
    stored_before = await count(world, BillingEvent)
    body = json.dumps(event).encode()
    fresh = int(time.time())

    def header(payload: bytes, secret: str = SECRET, ts: int = fresh) -> str:
        import stripe

        signed = stripe.WebhookSignature.generate_signature_header(payload.decode(), secret, ts)
        return str(signed)  # stripe leaves this helper unannotated

    tampered = json.loads(body)
    tampered["data"]["object"]["metadata"]["stagepass_hold"] = "someone-else"
    cases = {
        "wrong secret": (body, header(body, "whsec_attacker")),
        "stale": (body, header(body, ts=fresh - 301)),
        "missing header": (body, None),
        "garbage header": (body, "t=abc,v1=zzz"),
        "no v1": (body, f"t={fresh}"),
        "tampered body": (json.dumps(tampered).encode(), header(body)),
        "not utf-8": (b"\xff\xfe", header(b"ok")),
    }
    for name, (payload, sig) in cases.items():
        response = await world.post_raw(payload, sig)
        assert response.status_code == 400, (name, response.text)
        assert response.json()["result"] == "rejected", name
    assert "tolerance" in (await world.post_raw(body, header(body, ts=fresh - 301))).text
    assert await count(world, BillingEvent) == stored_before
    assert await count(world, Ticket) == 0
    # signed right but not an event at all
    junk = b'{"hello": "world"}'
    assert (await world.post_raw(junk, header(junk))).status_code == 400

    # the genuine delivery still works afterwards, signed with either endpoint secret
    assert (await world.post_raw(body, header(body))).json()["result"] == "processed"
    assert await count(world, Ticket) == 1


async def test_unhandled_types_are_ignored_with_200(world: World) -> None:
    event = {
        "id": "evt_unhandled_1",
        "object": "event",
        "type": "customer.created",
        "created": 1,
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    }
    response = await world.post_event(event)
    assert response.status_code == 200 and response.json()["result"] == "ignored"
    assert await count(world, BillingEvent) == 0


async def test_sessions_that_are_not_ours_are_ignored(world: World, fake: FakeStripe) -> None:
    client = fake.client()
    account = await world.onboard("alice")
    foreign = await client.v1.checkout.sessions.create_async(
        {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 900,
                        "product_data": {"name": "Another app's product"},
                    },
                    "quantity": 1,
                }
            ],
            "payment_intent_data": {"transfer_data": {"destination": account}},
        }
    )
    await fake.complete_session(foreign.id)
    responses = await world.pump()
    assert responses[-1].status_code == 200
    assert responses[-1].json() == {
        "received": True,
        "result": "ignored",
        "detail": "not a Stagepass object",
    }
    assert await count(world, Ticket) == 0


async def test_duplicates_and_replays_issue_one_ticket(world: World, fake: FakeStripe) -> None:
    space_id = await world.paid_space()
    session_id = await world.buy("bob", space_id, quantity=2)
    await fake.complete_session(session_id)
    event = world.completed_event(session_id)
    world.skip_pending()
    results = [(await world.post_event(event)).json()["result"] for _ in range(3)]
    assert results == ["processed", "duplicate", "duplicate"]
    # Stripe re-sends an old event days later: a fresh signature, the same event id
    replay = await world.post_event(copy.deepcopy(event))
    assert replay.json()["result"] == "duplicate"
    await world.core.bus.drain()
    assert await count(world, Ticket) == 2
    assert len(world.chat.dms("bob")) == 1
    # duplicates never reach Stripe: one re-read for the one processing
    assert len(fake.requests_for("GET", f"/v1/checkout/sessions/{session_id}")) == 1


async def test_reordered_and_stale_events_follow_stripes_current_state(
    world: World, fake: FakeStripe
) -> None:
    space_id = await world.paid_space(tickets=3)
    paid = await world.buy("bob", space_id)
    lapsed = await world.buy("carol", space_id)
    await fake.complete_session(paid)
    await fake.expire_session(lapsed)
    events = fake.events[world.delivered :]
    world.skip_pending()
    for event in reversed(events):  # newest first
        assert (await world.post_event(event)).status_code == 200

    # an "expired" event that Stripe's own state contradicts (the session is paid):
    # acting on the re-read session, it changes nothing
    stale = copy.deepcopy(world.completed_event(paid))
    stale.update(id="evt_stale_expired", type="checkout.session.expired")
    stale["data"]["object"]["status"] = "expired"
    assert (await world.post_event(stale)).json()["result"] == "processed"
    await world.core.bus.drain()

    bob = await world.core.identities.by_key("shell:local:bob")
    assert bob is not None and bob.id is not None
    assert len(await world.core.tickets.tickets_of(bob.id)) == 1
    holds = {h.buyer_id: h.status for h in await _all(world, Hold)}
    assert holds[bob.id] == HoldStatus.CONFIRMED
    assert sorted(holds.values()) == [HoldStatus.CONFIRMED, HoldStatus.EXPIRED]
    await assert_books_balance(world)


async def _all(world: World, model: Any) -> list[Any]:
    async with world.core.db.session() as session:
        return list(await session.exec(select(model)))


async def test_expired_event_before_payment_releases_the_hold(
    world: World, fake: FakeStripe
) -> None:
    space_id = await world.paid_space(tickets=1)
    session_id = await world.buy("bob", space_id)
    await fake.expire_session(session_id)
    responses = await world.pump()
    assert "released hold" in responses[-1].json()["detail"]
    assert (await world.core.spaces.get(space_id)).sold == 0
    again = await world.say("carol", f"/ticket buy {space_id}")
    assert not again.error  # the seat is free again


@pytest.mark.parametrize("deliveries", [200])
async def test_concurrent_deliveries_of_one_event(
    any_world: World, fake: FakeStripe, deliveries: int
) -> None:
    world = any_world
    issued: list[TicketIssued] = []

    async def spy(event: TicketIssued) -> None:
        issued.append(event)

    world.core.bus.subscribe(TicketIssued, spy)
    space_id = await world.paid_space()
    session_id = await world.buy("bob", space_id, quantity=3)
    await fake.complete_session(session_id)
    event = world.completed_event(session_id)
    world.skip_pending()

    responses = await asyncio.gather(*(world.post_event(event) for _ in range(deliveries)))
    await world.core.bus.drain()
    assert all(r.status_code == 200 for r in responses), {r.text for r in responses}
    results = sorted(r.json()["result"] for r in responses)
    assert results.count("processed") == 1
    assert results.count("duplicate") == deliveries - 1
    assert await count(world, Ticket) == 3
    async with world.core.db.session() as session:
        stored = list(
            await session.exec(select(BillingEvent.id).where(BillingEvent.id == event["id"]))
        )
    assert stored == [event["id"]]
    assert len(issued) == 1 and len(world.chat.dms("bob")) == 1
    await assert_books_balance(world)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_fuzzed_delivery_stream(world: World, fake: FakeStripe, seed: int) -> None:
    """Many buyers; every event delivered 1-3 times, some replayed late, some forged,
    in a shuffled order, in concurrent bursts."""
    rng = random.Random(seed)
    space_id = await world.paid_space(tickets=12)
    paid, lapsed = [], []
    for n in range(8):
        session_id = await world.buy(f"fan{n}", space_id, quantity=rng.choice([1, 1, 2]))
        if rng.random() < 0.7:
            await fake.complete_session(session_id)
            paid.append(session_id)
        else:
            await fake.expire_session(session_id)
            lapsed.append(session_id)
    genuine = fake.events[world.delivered :]
    world.skip_pending()
    async with world.core.db.session() as session:
        stored_before = set(await session.exec(select(BillingEvent.id)))

    stream: list[tuple[dict[str, Any], str]] = []
    for event in genuine:
        stream += [(event, SECRET)] * rng.randint(1, 3)
        if rng.random() < 0.3:  # forged: a made-up payment for a real session
            forged = copy.deepcopy(event)
            forged["id"] = f"evt_forged_{rng.randrange(10**9)}"
            forged["type"] = "checkout.session.completed"
            stream.append((forged, "whsec_attacker"))
    rng.shuffle(stream)
    late = stream[: len(stream) // 4]  # replayed once more at the end
    stream += late

    results: list[int] = []
    while stream:
        size = rng.randint(1, 12)
        burst, stream = stream[:size], stream[size:]
        responses = await asyncio.gather(*(world.post_event(e, secret=s) for e, s in burst))
        results += [r.status_code for r in responses]
    await world.core.bus.drain()

    assert set(results) <= {200, 400}
    async with world.core.db.session() as session:
        stored = set(await session.exec(select(BillingEvent.id)))
    assert not any(i.startswith("evt_forged_") for i in stored)
    assert stored - stored_before <= {e["id"] for e in genuine}
    for session_id in paid:
        hold_id = fake.sessions[session_id]["metadata"]["stagepass_hold"]
        hold = await world.core.tickets.get_hold(hold_id)
        assert hold.status == HoldStatus.CONFIRMED
    for session_id in lapsed:
        hold_id = fake.sessions[session_id]["metadata"]["stagepass_hold"]
        assert (await world.core.tickets.get_hold(hold_id)).status == HoldStatus.EXPIRED
    await assert_books_balance(world)
    async with world.core.db.engine.connect() as conn:
        dupes = (
            await conn.execute(sa.text("SELECT hold_id, COUNT(*) FROM tickets GROUP BY hold_id"))
        ).all()
    for hold_id, n in dupes:
        assert n == (await world.core.tickets.get_hold(hold_id)).quantity
