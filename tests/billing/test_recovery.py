"""Crashes, outages and lost webhooks: repaired by Stripe's retry or by reconciliation,
and never with a second ticket or a second refund."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from billing.errors import StripeUnavailable
from billing.ledger import Ledger
from billing.models import BillingEvent, BillingRefund, RefundStatus
from bot.models import HoldStatus, Ticket, TicketStatus
from tests.billing.conftest import World
from tests.fakes.stripe_api import FakeStripe


async def all_rows(world: World, model: Any) -> list[Any]:
    async with world.core.db.session() as session:
        return list(await session.exec(select(model)))


class Crash(Exception):
    """Stands for the process dying mid-transaction."""


async def test_crash_between_event_and_ticket_is_repaired_by_stripes_retry(
    world: World, fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    space_id = await world.paid_space()
    session_id = await world.buy("bob", space_id, quantity=2)
    await fake.complete_session(session_id)
    event = world.completed_event(session_id)
    world.skip_pending()

    real_mark_paid = Ledger.mark_paid
    crashes = iter([True])

    async def crashing(self: Ledger, conn: Any, sessions: Any) -> None:
        if next(crashes, False):
            raise Crash("power cut after the tickets were written, before COMMIT")
        await real_mark_paid(self, conn, sessions)

    monkeypatch.setattr(Ledger, "mark_paid", crashing)
    first = await world.post_event(event)
    assert first.status_code == 500  # Stripe will retry
    stored = [e.id for e in await all_rows(world, BillingEvent)]
    assert event["id"] not in stored
    assert await all_rows(world, Ticket) == []  # rolled back with the event
    hold_id = fake.sessions[session_id]["metadata"]["stagepass_hold"]
    assert (await world.core.tickets.get_hold(hold_id)).status == HoldStatus.ACTIVE

    retry = await world.post_event(event)
    assert retry.status_code == 200 and retry.json()["result"] == "processed"
    assert (await world.post_event(event)).json()["result"] == "duplicate"
    assert len(await all_rows(world, Ticket)) == 2


async def test_lost_webhook_is_repaired_by_reconciliation(world: World, fake: FakeStripe) -> None:
    space_id = await world.paid_space()
    session_id = await world.buy("bob", space_id)
    await fake.complete_session(session_id)
    world.skip_pending()  # the webhook never arrives

    report = await world.billing.reconcile()
    await world.core.bus.drain()
    assert report.errors == []
    assert any(c.startswith("issued 1 ticket(s)") for c in report.changes), report.changes
    assert len(await all_rows(world, Ticket)) == 1
    assert any("Your ticket for Jazz night" in m for m in world.chat.dms("bob"))

    again = await world.billing.reconcile()
    assert again.changes == []
    late = await world.post_event(world.completed_event(session_id))  # the webhook, at last
    assert late.json()["result"] == "duplicate"  # reconciliation stored the missed event
    assert len(await all_rows(world, Ticket)) == 1


async def test_missed_expiry_and_refund_events_are_reconciled(
    world: World, fake: FakeStripe
) -> None:
    space_id = await world.paid_space(tickets=2)
    await world.buy_and_pay("bob", space_id)
    lapsed = await world.buy("carol", space_id)
    await fake.expire_session(lapsed)
    [bob_ticket] = [t for t in await all_rows(world, Ticket)]
    checkout = await world.billing.ledger.checkout_for_hold(bob_ticket.hold_id)
    assert checkout is not None
    await fake.refund_charge(str(checkout.charge_id))  # refunded in the Dashboard
    world.skip_pending()

    report = await world.billing.reconcile()
    assert any("released hold" in c for c in report.changes), report.changes
    assert any(f"closed ticket {bob_ticket.id}" in c for c in report.changes), report.changes
    assert (await world.core.tickets.get(bob_ticket.id)).status == TicketStatus.REFUNDED
    assert (await world.core.spaces.get(space_id)).sold == 0
    assert (await world.billing.reconcile()).changes == []


async def test_stripe_down_during_reread_asks_for_a_retry(
    world: World, fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    space_id = await world.paid_space()
    session_id = await world.buy("bob", space_id)
    await fake.complete_session(session_id)
    event = world.completed_event(session_id)
    world.skip_pending()

    async def down(session_id: str) -> Any:
        raise StripeUnavailable("connection refused")

    monkeypatch.setattr(world.billing.api, "retrieve_session", down)
    response = await world.post_event(event)
    assert response.status_code == 503 and response.json()["result"] == "retry"
    assert event["id"] not in {e.id for e in await all_rows(world, BillingEvent)}
    monkeypatch.undo()
    assert (await world.post_event(event)).json()["result"] == "processed"


async def test_refund_outage_during_cancel_is_finished_once(
    world: World, fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    space_id = await world.paid_space()
    await world.buy_and_pay("bob", space_id)
    await world.buy_and_pay("carol", space_id)
    real = world.billing.api.create_refund
    calls = {"n": 0}

    async def flaky(params: Any, *, idempotency_key: str) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:  # Stripe made the refund, but the answer was lost
            await real(params, idempotency_key=idempotency_key)
            raise StripeUnavailable("read timeout")
        return await real(params, idempotency_key=idempotency_key)

    monkeypatch.setattr(world.billing.api, "create_refund", flaky)
    reply = await world.say("alice", f"/space cancel {space_id}")
    assert "1 ticket(s) refunded" in reply.text and "1 refund(s) failed" in reply.text
    pending = [r for r in await all_rows(world, BillingRefund) if r.status == RefundStatus.PENDING]
    assert len(pending) == 1 and pending[0].last_error == "read timeout"
    assert (await world.core.tickets.get(str(pending[0].ticket_id))).status == TicketStatus.VALID

    report = await world.billing.reconcile()
    await world.core.bus.drain()
    assert report.changes == [f"refunded ticket {pending[0].ticket_id} ({pending[0].key})"]
    assert all(t.status == TicketStatus.REFUNDED for t in await all_rows(world, Ticket))
    assert len(fake.refunds) == 2  # the retried call was answered from Stripe's store
    assert any(r.replayed for r in fake.requests_for("POST", "/v1/refunds"))
    assert (await world.billing.reconcile()).changes == []


async def test_crash_between_refund_and_closing_the_ticket(
    world: World, fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    space_id = await world.paid_space()
    await world.buy_and_pay("bob", space_id)
    [ticket] = await all_rows(world, Ticket)
    tickets = world.core.tickets
    real_close = tickets.close

    async def crash(*args: Any, **kwargs: Any) -> bool:
        raise Crash("died after Stripe refunded")

    monkeypatch.setattr(tickets, "close", crash)
    reply = await world.say("alice", f"/space cancel {space_id}")
    assert "1 refund(s) failed" in reply.text
    assert len(fake.refunds) == 1
    monkeypatch.setattr(tickets, "close", real_close)
    assert (await tickets.get(ticket.id)).status == TicketStatus.VALID

    report = await world.billing.reconcile()
    assert any(f"closed refunded ticket {ticket.id}" in c for c in report.changes), report
    assert (await tickets.get(ticket.id)).status == TicketStatus.REFUNDED
    assert len(fake.refunds) == 1 and len(fake.requests_for("POST", "/v1/refunds")) == 1


async def test_cancelled_space_with_a_ticket_never_refunded(
    world: World, fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refund never even started (say, the database went away mid-cancel):
    reconciliation refunds what a cancelled Space still has valid."""
    space_id = await world.paid_space()
    await world.buy_and_pay("bob", space_id)

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise Crash("before anything was written")

    monkeypatch.setattr(world.billing.gateway, "refund", broken)
    reply = await world.say("alice", f"/space cancel {space_id}")
    assert "1 refund(s) failed" in reply.text and not fake.refunds
    monkeypatch.undo()

    report = await world.billing.reconcile()
    assert any(c.startswith("refunded ticket") for c in report.changes), report.changes
    assert all(t.status == TicketStatus.REFUNDED for t in await all_rows(world, Ticket))
    assert len(fake.refunds) == 1
    assert (await world.billing.reconcile()).changes == []
