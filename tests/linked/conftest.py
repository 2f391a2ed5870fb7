"""One core with both chat platforms at once: the real discord.py client against the fake
Discord (tests/discord) and the Slack app served on loopback against the Slack fake
(tests/slack), as one Stagepass process runs them; `paid` adds billing against the Stripe
fake (tests/fakes) and a second Discord server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client import CollectorRegistry

from adapters.slack import SlackAdapter, SlackConfig
from billing import attach
from bot.clock import ManualClock
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.db import Database
from bot.http import create_app
from bot.notices import EventMessenger
from bot.settings import Settings
from bot.wiring import Stagepass
from tests.billing.conftest import SECRET, live_settings
from tests.discord.conftest import Bot, Server, build_server, config_for, running
from tests.discord.fake_discord import FakeDiscord
from tests.fakes.stripe_api import FakeStripe
from tests.slack.conftest import USERS, GatedDatabase, Slack, serving, slack_settings, slack_user
from tests.slack.fake_slack import FakeSlack
from tests.waiting import PATIENCE


@dataclass
class Both:
    core: Core
    discord: Bot
    fake: FakeDiscord
    server: Server
    slack: Slack
    second: Server | None = None  # a second Discord server (`paid`)
    stripe: FakeStripe | None = None  # Stripe (`paid`), its webhooks sent to the app

    async def settle(self) -> None:
        await self.slack.settle()
        await self.discord.settle()

    async def pump(self) -> None:
        """Deliver Stripe's webhooks so far (signed, to /webhooks/stripe), then settle."""
        assert self.stripe is not None
        await self.stripe.flush()
        await self.core.bus.drain()
        await self.settle()


@asynccontextmanager
async def running_both(
    settings: Settings, db_url: str, clock: ManualClock, *, paid: bool = False
) -> AsyncIterator[Both]:
    """The whole process; `paid`: with billing on the Stripe fake and two Discord servers."""
    slack_fake = FakeSlack(
        users={uid: slack_user(uid, **info) for uid, info in USERS.items()}, groups={}
    )
    await slack_fake.start()
    configured = slack_settings(settings, slack_fake)
    if paid:
        configured = live_settings(configured)
    db = GatedDatabase(db_url)
    core = Core.build(configured, db=db, clock=clock)
    EventMessenger(core)
    dispatcher = Dispatcher(core)
    slack_config = SlackConfig.from_settings(configured)
    assert slack_config is not None
    adapter = SlackAdapter(core, dispatcher, slack_config)
    adapter.interactions.announce_wait = PATIENCE  # the post, however loaded the machine
    stagepass = Stagepass(configured, core, dispatcher)
    try:
        async with FakeStripe(
            webhook_secret=SECRET, clock=lambda: clock.now().timestamp()
        ) as stripe_fake:
            billing = await attach(stagepass, client=stripe_fake.client()) if paid else None
            app = create_app(
                core,
                api_token="test-token",
                routers=[adapter.router(), *stagepass.routers],
                registry=CollectorRegistry(),
            )
            app.state.ready = True
            async with (
                FakeDiscord() as fake,
                serving(app) as base_url,
                httpx.AsyncClient(base_url=base_url, timeout=10) as http,
            ):
                stripe_fake.webhook_url = f"{base_url}/webhooks/stripe"
                with fake.installed():
                    server = build_server(fake)
                    second = build_server(fake, name="Second Stage") if paid else None
                    config = config_for(server, configured)
                    if second is not None:
                        config = config_for(
                            server,
                            configured,
                            guild_ids=frozenset({server.guild.id, second.guild.id}),
                            announce_channels=(server.announce.id, second.announce.id),
                            stage_channels=(server.stage.id, second.stage.id),
                            alert_channels=(server.alerts.id, second.alerts.id),
                        )
                    async with running(core, dispatcher, config, fake) as bot:
                        slack = Slack(http, slack_fake, adapter, db, core)
                        yield Both(
                            core,
                            bot,
                            fake,
                            server,
                            slack,
                            second,
                            stripe_fake if paid else None,
                        )
                        await adapter.settle()
                    await adapter.tasks.close(grace=5)
            if billing is not None:
                await billing.aclose()
    finally:
        await core.tickets.claims.close()
        await core.bus.close()
        await db.dispose()
        await slack_fake.stop()
    assert core.bus.failures == 0


@pytest.fixture
async def both(settings: Settings, sqlite_db: Database, clock: ManualClock) -> AsyncIterator[Both]:
    async with running_both(settings, sqlite_db.url, clock) as world:
        yield world


@pytest.fixture
async def paid(settings: Settings, sqlite_db: Database, clock: ManualClock) -> AsyncIterator[Both]:
    async with running_both(settings, sqlite_db.url, clock, paid=True) as world:
        yield world
