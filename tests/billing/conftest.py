"""A whole Stagepass with billing, on the test clock, talking to the local Stripe fake
through the real `stripe` client; webhooks go through the real `/webhooks/stripe` route
of an app built with `create_app`."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import stripe
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from adapters.shell.chat import Chat
from billing import Billing, attach
from bot.clock import ManualClock
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.db import Database
from bot.http import create_app
from bot.notices import EventMessenger
from bot.replies import Reply
from bot.settings import Settings
from bot.wiring import Stagepass
from tests.fakes.stripe_api import FakeStripe

SECRET = "whsec_test_billing"
TOKEN = "test-token"
BASE_URL = "http://stagepass.test"
#: A paid Space two days after the test clock's now (2030-01-01 12:00 UTC).
CREATE_PAID = (
    '/space create title:"Jazz night" starts:"2030-01-03 18:00" tickets:{n} price:15 limit:3'
)


@dataclass
class World:
    """Everything a billing test touches."""

    core: Core
    chat: Chat
    billing: Billing
    stagepass: Stagepass
    app: FastAPI
    http: httpx.AsyncClient
    clock: ManualClock
    fake: FakeStripe | None = None
    delivered: int = 0  # how many of fake.events `pump` has sent
    responses: list[httpx.Response] = field(default_factory=list)

    async def post_event(
        self, event: dict[str, Any], *, secret: str = SECRET, timestamp: int | None = None
    ) -> httpx.Response:
        """Sign `event` as Stripe would and POST it to /webhooks/stripe."""
        payload = json.dumps(event, indent=2)
        header = stripe.WebhookSignature.generate_signature_header(
            payload, secret, timestamp=int(time.time()) if timestamp is None else timestamp
        )
        return await self.post_raw(payload.encode(), header)

    async def post_raw(self, body: bytes, header: str | None) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if header is not None:
            headers["Stripe-Signature"] = header
        return await self.http.post("/webhooks/stripe", content=body, headers=headers)

    async def pump(self) -> list[httpx.Response]:
        """Deliver every event the fake emitted since the last pump, in order."""
        assert self.fake is not None
        await self.fake.flush()
        responses = []
        while self.delivered < len(self.fake.events):
            event = self.fake.events[self.delivered]
            self.delivered += 1
            responses.append(await self.post_event(event))
        await self.core.bus.drain()
        self.responses += responses
        return responses

    def skip_pending(self) -> None:
        """Forget the events emitted so far (as if their webhooks were lost)."""
        assert self.fake is not None
        self.delivered = len(self.fake.events)

    async def say(self, who: str, text: str) -> Reply:
        return await self.chat.say(who, text)

    async def onboard(self, host: str) -> str:
        """`host` connects a Stripe account and finishes onboarding; returns its id."""
        reply = await self.say(host, "/payouts connect")
        assert not reply.error, reply.text
        url = reply.buttons[0].url
        assert url is not None
        async with httpx.AsyncClient() as browser:
            done = await browser.post(url)
        assert done.status_code == 303, done.text
        await self.pump()
        identity = await self.core.identities.by_key(f"{self.chat.community_id}:{host}")
        assert identity is not None and identity.id is not None
        row = await self.billing.ledger.account(identity.id)
        assert row is not None and row.charges_enabled
        return row.account_id

    async def paid_space(self, host: str = "alice", tickets: int = 5) -> int:
        await self.onboard(host)
        reply = await self.say(host, CREATE_PAID.format(n=tickets))
        assert not reply.error, reply.text
        return int(reply.text.split("#")[1].split()[0])

    async def buy(self, who: str, space_id: int, quantity: int = 1) -> str:
        """`who` takes a hold; returns the Checkout Session id behind the Pay button."""
        reply = await self.say(who, f"/ticket buy {space_id} quantity:{quantity}")
        assert not reply.error, reply.text
        url = reply.buttons[0].url
        assert url is not None
        return url.rsplit("/", 1)[1]

    async def buy_and_pay(self, who: str, space_id: int, quantity: int = 1) -> str:
        assert self.fake is not None
        session_id = await self.buy(who, space_id, quantity)
        await self.fake.complete_session(session_id)
        await self.pump()
        return session_id

    def completed_event(self, session_id: str) -> dict[str, Any]:
        assert self.fake is not None
        return next(
            e
            for e in self.fake.events
            if e["type"] == "checkout.session.completed" and e["data"]["object"]["id"] == session_id
        )


def live_settings(settings: Settings) -> Settings:
    """Settings with a Stripe key: two webhook secrets, as with a Connect endpoint."""
    return settings.model_copy(
        update={
            "stripe_secret_key": SecretStr("sk_test_fake"),
            "stripe_webhook_secret": SecretStr(f"whsec_connect_endpoint, {SECRET}"),
            "billing_reconcile_minutes": 0,
        }
    )


@asynccontextmanager
async def make_world(
    settings: Settings, db: Database, clock: ManualClock, fake: FakeStripe | None
) -> AsyncIterator[World]:
    core = Core.build(settings, db=db, clock=clock)
    EventMessenger(core)
    dispatcher = Dispatcher(core)
    chat = Chat(core, dispatcher)
    stagepass = Stagepass(settings, core, dispatcher, services={"chat": chat})
    billing = await attach(stagepass, client=fake.client() if fake is not None else None)
    app = create_app(core, api_token=TOKEN, routers=stagepass.routers, registry=CollectorRegistry())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
        try:
            yield World(core, chat, billing, stagepass, app, http, clock, fake)
        finally:
            await core.bus.close()
            await billing.aclose()


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeStripe]:
    """The Stripe fake, on the test clock (Stripe's `created` and `expires_at`)."""
    async with FakeStripe(webhook_secret=SECRET, clock=lambda: clock.now().timestamp()) as fake:
        yield fake


@pytest.fixture
async def world(
    settings: Settings, sqlite_db: Database, clock: ManualClock, fake: FakeStripe
) -> AsyncIterator[World]:
    async with make_world(live_settings(settings), sqlite_db, clock, fake) as w:
        yield w


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def billing_db(request: pytest.FixtureRequest) -> Database:
    """SQLite, then PostgreSQL. (A sync fixture: the root `any_db` is an async one that
    asks for async fixtures from inside the running loop, which pytest-asyncio refuses.)"""
    db: Database = request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")
    return db


@pytest.fixture
async def any_world(
    settings: Settings, billing_db: Database, clock: ManualClock, fake: FakeStripe
) -> AsyncIterator[World]:
    """`world` on SQLite and on PostgreSQL."""
    async with make_world(live_settings(settings), billing_db, clock, fake) as w:
        yield w


@pytest.fixture
async def dev_world(
    settings: Settings, sqlite_db: Database, clock: ManualClock
) -> AsyncIterator[World]:
    """No Stripe key: the TEST MODE checkout."""
    async with make_world(settings, sqlite_db, clock, None) as w:
        yield w
