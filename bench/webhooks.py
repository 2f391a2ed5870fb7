"""Stripe webhook events handled per second, end to end, on SQLite and PostgreSQL, against
the core's bare ticket issuance measured in the same run.

    .venv/bin/python bench/webhooks.py [--events 2000] [--concurrency 1 16 64] [--no-postgres]

Concurrent deliveries are looked up together (`Ledger.seen_and_checkout`) and confirmed
together (the core's confirm batcher, `bot.services.confirmations`): one transaction per
burst, so the figures at concurrency 16 and 64 are the ones Stripe's parallel retries and
a sale's opening rush meet; concurrency 1 is a quiet day (latency, not throughput).

Each event is a distinct `checkout.session.completed` for its own paid hold, signed with
`stripe.WebhookSignature.generate_signature_header`, POSTed to the real
`/webhooks/stripe` route of the app `create_app` builds (over httpx's ASGI transport, so
no sockets: the app, its middleware and metrics included). Handling one means: verify
the signature, parse, look the event id up, re-read the session, and confirm the hold in
one transaction that stores the event (the ticket, the event row, the payment's ids).

* `webhook`: unique events, as Stripe sends them.
* `duplicate`: the same events again, as Stripe's retries and replays arrive (answered
  from the event table, nothing re-read).
* `no HTTP`: other unique events handed to `WebhookProcessor.process` directly (the
  same signature check, dedupe, re-read and ticket; no ASGI app, no HTTP client).
* baseline `confirm()`: `TicketService.confirm` called directly for the same number of
  holds: the ticket issuance alone, no HTTP, no signature, no dedupe, no billing rows.

The re-read is answered by an in-memory Stripe (no network): in production it is one
round trip to Stripe (~100-300 ms of latency, not of CPU; it happens concurrently).
Prints figures; never passes or fails on time. Target: >= 500 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import sqlalchemy as sa
import stripe
import structlog
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from bench.common import (
    Run,
    Unavailable,
    closed_loop,
    cpu_seconds,
    machine,
    new_core,
    person,
    postgres_database,
    scratch_dir,
    sqlite_database,
)
from billing.assembly import Billing
from billing.stripe_api import Account, CheckoutSession
from bot.core import Core
from bot.db import Database
from bot.http import create_app
from bot.services.spaces import SpaceDraft

SECRET = "whsec_bench"
TARGET_RATE = 500  # events/s


class MemoryStripe:
    """Just enough of `StripeAPI` for checkout and the webhook's re-read, in memory."""

    test_mode = False

    def __init__(self) -> None:
        self.sessions: dict[str, CheckoutSession] = {}
        self.retrievals = 0

    async def create_session(self, params: Any, *, idempotency_key: str) -> CheckoutSession:
        session_id = f"cs_bench_{len(self.sessions):08d}"
        line = params["line_items"][0]
        session = CheckoutSession(
            id=session_id,
            status="open",
            payment_status="unpaid",
            amount_total=line["price_data"]["unit_amount"] * line["quantity"],
            currency=line["price_data"]["currency"],
            metadata=dict(params["metadata"]),
            created=0,
            expires_at=params["expires_at"],
            url=f"https://checkout.stripe.test/{session_id}",
        )
        self.sessions[session_id] = session
        return session

    def pay(self, session_id: str) -> CheckoutSession:
        old = self.sessions[session_id]
        n = session_id.rsplit("_", 1)[1]
        paid = CheckoutSession(
            **{
                **{f: getattr(old, f) for f in old.__dataclass_fields__},
                "status": "complete",
                "payment_status": "paid",
                "payment_intent": f"pi_bench_{n}",
                "payment_intent_status": "succeeded",
                "charge": f"ch_bench_{n}",
                "url": None,
            }
        )
        self.sessions[session_id] = paid
        return paid

    async def retrieve_session(self, session_id: str) -> CheckoutSession:
        self.retrievals += 1
        return self.sessions[session_id]

    async def retrieve_account(self, account_id: str) -> Account:
        return Account(account_id, True, True, True)

    async def aclose(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:  # the calls this bench never makes
        raise NotImplementedError(name)


def completed_event(session: CheckoutSession, n: int) -> bytes:
    return json.dumps(
        {
            "id": f"evt_bench_{n:08d}",
            "object": "event",
            "api_version": stripe.api_version,
            "created": 1_893_499_200,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": session.id,
                    "object": "checkout.session",
                    "amount_total": session.amount_total,
                    "currency": session.currency,
                    "metadata": dict(session.metadata),
                    "payment_intent": session.payment_intent,
                    "payment_status": "paid",
                    "status": "complete",
                }
            },
        },
        indent=2,
    ).encode()


async def paid_holds(core: Core, billing: Billing, stripe_: MemoryStripe, n: int) -> list[str]:
    """`n` buyers each hold one seat of a paid Space and pay; returns the session ids."""
    host = await core.identities.ensure(person("host"))
    assert host.id is not None
    await billing.ledger.add_account(host.id, Account("acct_bench", True, True, True))
    space = await core.spaces.create(
        person("host"),
        SpaceDraft(
            title="Bench",
            starts_at=core.clock.now() + timedelta(days=1),
            capacity=n,
            price_minor=1500,
        ),
    )
    assert space.id is not None
    sessions = []
    for i in range(n):
        reservation = await core.tickets.reserve(person(f"buyer{i}"), space.id)
        assert reservation.checkout is not None
        session_id = reservation.checkout.url.rsplit("/", 1)[1]
        stripe_.pay(session_id)
        sessions.append(session_id)
    return sessions


async def bare_holds(core: Core, n: int) -> list[str]:
    """`n` active holds on a paid Space, for the baseline (no billing involved)."""
    space = await core.spaces.create(
        person("host"),
        SpaceDraft(
            title="Baseline",
            starts_at=core.clock.now() + timedelta(days=1),
            capacity=n,
            price_minor=1500,
        ),
    )
    assert space.id is not None
    holds = []
    for i in range(n):
        granted = await core.tickets.claims.claim(space.id, person(f"base{i}"), 1)
        holds.append(granted.hold.id)
    return holds


def row(name: str, impl: str, concurrency: int, run: Run, cpu: float) -> str:
    errors = ", ".join(f"{k}×{v}" for k, v in run.errors.items()) or "-"
    return (
        f"{name:9} {impl:10} {concurrency:>4} {run.calls:>6} {run.rate:>9,.0f} "
        f"{run.pct_ms(50):>7.2f} {run.pct_ms(99):>7.2f} {cpu / run.calls * 1e6:>8.0f}  {errors}"
    )


HEADER = (
    f"{'database':9} {'path':10} {'conc':>4} {'events':>6} {'events/s':>9} "
    f"{'p50 ms':>7} {'p99 ms':>7} {'CPU µs/ev':>9}  errors"
)


async def bench_backend(
    name: str,
    make_db: AbstractAsyncContextManager[Database],
    data_dir: Path,
    events: int,
    levels: Sequence[int],
) -> None:
    async with make_db as db:
        core = new_core(db, data_dir)
        core.settings.stripe_secret_key = SecretStr("sk_test_bench")
        core.settings.stripe_webhook_secret = SecretStr(SECRET)
        stripe_ = MemoryStripe()
        billing = Billing.build(core, api=stripe_)
        core.use_payments(billing.gateway)
        app = create_app(
            core, api_token="bench", routers=billing.routers(), registry=CollectorRegistry()
        )
        total = events * len(levels) + 1  # +1: the one whose statements are counted
        sessions = await paid_holds(core, billing, stripe_, 2 * total)
        bodies = [completed_event(stripe_.sessions[s], i) for i, s in enumerate(sessions)]
        base = await bare_holds(core, total)

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        ) as http:

            async def deliver(body: bytes) -> str:
                header = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET)
                response = await http.post(
                    "/webhooks/stripe",
                    content=body,
                    headers={"Stripe-Signature": header, "Content-Type": "application/json"},
                )
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
                result: str = response.json()["result"]
                return result

            statements: list[str] = []

            def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                statements.append(statement)

            sa.event.listen(db.engine.sync_engine, "before_cursor_execute", count)
            await deliver(bodies[0])
            per_webhook = len(statements)
            statements.clear()
            await core.tickets.confirm(base[0], fee_minor=150)
            per_confirm = len(statements)
            sa.event.remove(db.engine.sync_engine, "before_cursor_execute", count)
            bodies, base = bodies[1:], base[1:]
            direct, bodies = bodies[total - 1 :], bodies[: total - 1]

            async def process(body: bytes) -> str:
                header = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET)
                return (await billing.processor.process(body, header)).result

            for i, level in enumerate(levels):
                batch = bodies[i * events : (i + 1) * events]
                cpu = cpu_seconds()
                run = await closed_loop(deliver, batch, level)
                print(row(name, "webhook", level, run, cpu_seconds() - cpu), flush=True)
                assert run.results.count("processed") == len(batch), set(run.results)

                cpu = cpu_seconds()
                run = await closed_loop(deliver, batch, level)
                print(row(name, "duplicate", level, run, cpu_seconds() - cpu), flush=True)
                assert set(run.results) == {"duplicate"}

                cpu = cpu_seconds()
                run = await closed_loop(process, direct[i * events : (i + 1) * events], level)
                print(row(name, "no HTTP", level, run, cpu_seconds() - cpu), flush=True)
                assert set(run.results) == {"processed"}

                holds = base[i * events : (i + 1) * events]

                async def confirm(hold_id: str) -> None:
                    await core.tickets.confirm(hold_id, fee_minor=150, reference=hold_id)

                cpu = cpu_seconds()
                run = await closed_loop(confirm, holds, level)
                print(row(name, "confirm()", level, run, cpu_seconds() - cpu), flush=True)
        sign = time.perf_counter()
        for body in bodies[:500]:
            stripe.WebhookSignature.verify_header(
                body,
                stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET),
                SECRET,
                300,
            )
        per = (time.perf_counter() - sign) / min(500, len(bodies)) * 1e6
        async with db.engine.connect() as conn:
            issued = (await conn.execute(sa.text("SELECT COUNT(*) FROM tickets"))).scalar_one()
            stored = (
                await conn.execute(sa.text("SELECT COUNT(*) FROM billing_events"))
            ).scalar_one()
        print(
            f"{name:9} checks: {issued} tickets for {3 * total - 1} paid holds, {stored} events "
            f"stored once, {stripe_.retrievals} re-reads. SQL statements per event: webhook "
            f"{per_webhook}, confirm() {per_confirm}; signing+verifying one event: {per:.0f} µs"
        )
        await core.bus.close()


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    print(f"bench/webhooks.py — {machine()}")
    print(
        f"{args.events} events per run; target >= {TARGET_RATE} events/s end to end. "
        "Baseline: confirm() = the core's ticket issuance alone."
    )
    print(HEADER)
    async with scratch_dir() as tmp:
        await bench_backend("sqlite", sqlite_database(tmp), tmp, args.events, args.concurrency)
        if not args.no_postgres:
            try:
                await bench_backend(
                    "postgres",
                    postgres_database(pool_size=32),
                    tmp,
                    args.events,
                    args.concurrency,
                )
            except Unavailable as why:
                print(f"postgres  SKIPPED: {why}")


if __name__ == "__main__":
    asyncio.run(main())
