"""One core with both chat platforms at once: the real discord.py client against the fake
Discord (tests/discord) and the Slack app served on loopback against the Slack fake
(tests/slack), as one Stagepass process runs them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client import CollectorRegistry

from adapters.slack import SlackAdapter, SlackConfig
from bot.clock import ManualClock
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.db import Database
from bot.http import create_app
from bot.notices import EventMessenger
from bot.settings import Settings
from tests.discord.conftest import Bot, Server, build_server, config_for, running
from tests.discord.fake_discord import FakeDiscord
from tests.slack.conftest import USERS, GatedDatabase, Slack, serving, slack_settings, slack_user
from tests.slack.fake_slack import FakeSlack


@dataclass
class Both:
    core: Core
    discord: Bot
    fake: FakeDiscord
    server: Server
    slack: Slack

    async def settle(self) -> None:
        await self.slack.settle()
        await self.discord.settle()


@pytest.fixture
async def both(settings: Settings, sqlite_db: Database, clock: ManualClock) -> AsyncIterator[Both]:
    slack_fake = FakeSlack(
        users={uid: slack_user(uid, **info) for uid, info in USERS.items()}, groups={}
    )
    await slack_fake.start()
    configured = slack_settings(settings, slack_fake)
    db = GatedDatabase(sqlite_db.url)
    core = Core.build(configured, db=db, clock=clock)
    EventMessenger(core)
    dispatcher = Dispatcher(core)
    slack_config = SlackConfig.from_settings(configured)
    assert slack_config is not None
    adapter = SlackAdapter(core, dispatcher, slack_config)
    app = create_app(
        core, api_token="test-token", routers=[adapter.router()], registry=CollectorRegistry()
    )
    app.state.ready = True
    try:
        async with (
            FakeDiscord() as fake,
            serving(app) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=10) as http,
        ):
            with fake.installed():
                server = build_server(fake)
                config = config_for(server, configured)
                async with running(core, dispatcher, config, fake) as bot:
                    yield Both(core, bot, fake, server, Slack(http, slack_fake, adapter, db, core))
                    await adapter.settle()
                await adapter.tasks.close(grace=5)
    finally:
        await core.tickets.claims.close()
        await core.bus.close()
        await db.dispose()
        await slack_fake.stop()
    assert core.bus.failures == 0
