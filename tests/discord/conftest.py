"""The Discord harness: the real, unmodified discord.py client (inside the adapter) against
the local fake Discord, with a small server set up like a real one.

`bot` starts the adapter's background job and waits until it is connected and its slash
commands are synced; every test step is bounded in time, and the harness fails the test
if the client task dies, if discord.py logs an error, or if an event handler fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import structlog

from adapters.discord import DiscordAdapter, DiscordConfig
from bot.clock import ManualClock
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.db import Database
from bot.notices import EventMessenger
from bot.settings import Settings
from tests.discord.fake_discord import STAGE, Channel, FakeDiscord, Guild, Member, Message, Role
from tests.discord.fake_discord import permissions as P
from tests.waiting import PATIENCE, eventually


@dataclass
class Server:
    guild: Guild
    general: Channel
    announce: Channel
    alerts: Channel
    stage: Channel
    mods: Role
    host: Member  # alice hosts
    bob: Member  # listeners
    carol: Member
    mo: Member  # a stage moderator (Manage Channels + Mute Members + Move Members)
    dave: Member  # a member with no rights


def build_server(
    fake: FakeDiscord, *, bot_permissions: int = P.BOT_INVITE, name: str = "Stagepass HQ"
) -> Server:
    guild = fake.add_guild(name, bot_permissions=bot_permissions)
    general = fake.add_channel(guild, "general")
    announce = fake.add_channel(guild, "announcements")
    alerts = fake.add_channel(guild, "mod-alerts")
    stage = fake.add_channel(guild, "Stage", STAGE)
    mods = fake.add_role(guild, "Stage Mods", P.STAGE_MODERATOR)
    return Server(
        guild,
        general,
        announce,
        alerts,
        stage,
        mods,
        fake.add_member(guild, "alice"),
        fake.add_member(guild, "bob"),
        fake.add_member(guild, "carol"),
        fake.add_member(guild, "mo", mods),
        fake.add_member(guild, "dave"),
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        with fake.installed():
            yield fake


@pytest.fixture
def server(fake: FakeDiscord) -> Server:
    return build_server(fake)


def config_for(server: Server, settings: Settings, **overrides: Any) -> DiscordConfig:
    values: dict[str, Any] = {
        "guild_ids": frozenset({server.guild.id}),
        "announce_channels": (server.announce.id,),
        "stage_channels": (server.stage.id,),
        "alert_channels": (server.alerts.id,),
        "moderator_roles": frozenset(),
        "retry_seconds": 3600.0,  # tests retry by waking the adapter, never by waiting
        "recheck_seconds": 3600.0,  # a test of the Stage watch sets its own
        "public_url": settings.resolved_public_url,
        **overrides,
    }
    return DiscordConfig(**values)


class Bot:
    """A running adapter and the means to wait for it."""

    def __init__(
        self, adapter: DiscordAdapter, task: asyncio.Task[None], fake: FakeDiscord
    ) -> None:
        self.adapter = adapter
        self.task = task
        self.fake = fake
        self.core = adapter.core

    def alive(self) -> None:
        if self.task.done():
            error = None if self.task.cancelled() else self.task.exception()
            raise AssertionError(f"the Discord client task died: {error!r}") from error

    async def until(
        self, check: Callable[[], object], what: str = "it", within: float = PATIENCE
    ) -> None:
        def alive_and(check: Callable[[], object] = check) -> object:
            self.alive()
            return check()

        await self.fake.until(alive_and, within, what=what)

    async def settle(self, within: float = PATIENCE) -> None:
        """Wait until the core's handlers, the adapter's tasks and the gateway are quiet."""
        quiet = 0
        deadline = asyncio.get_running_loop().time() + within
        while quiet < 3:
            self.alive()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the bot did not settle")
            busy = self.core.bus.busy or self.adapter.tasks.busy
            await self.core.bus.drain()
            quiet = 0 if busy else quiet + 1
            await asyncio.sleep(0.01)

    async def eventually(
        self, check: Callable[[], Awaitable[object]], what: str, within: float = PATIENCE
    ) -> None:
        """Poll an async `check` (the database, say), the bot settled, until it holds."""

        async def settled() -> object:
            await self.settle()
            return await check()

        await eventually(settled, what=what, within=within)

    async def answer(self, interaction: Any) -> Message:
        message = await self.fake.answer(interaction)
        await self.settle()
        return message

    async def host_creates(self, server: Server, **options: Any) -> Message:
        """The host's `/space create` with these options, answered."""
        return await self.answer(
            await self.fake.slash(server.guild, server.host, "space create", **options)
        )


@contextlib.asynccontextmanager
async def running(
    core: Core, dispatcher: Dispatcher, config: DiscordConfig, fake: FakeDiscord
) -> AsyncIterator[Bot]:
    adapter = DiscordAdapter(
        core, dispatcher, config, ready_timeout=10, client_options={"guild_ready_timeout": 0.05}
    )
    adapter.subscribe()
    stop = asyncio.Event()
    task = asyncio.create_task(adapter.run(fake.token, stop), name="test:discord-job")
    bot = Bot(adapter, task, fake)
    try:
        guilds = config.guild_ids
        await bot.until(
            lambda: adapter.ready.is_set() and all(g in fake.commands for g in guilds),
            "the bot to connect and sync its commands",
        )
        await bot.settle()
        yield bot
        bot.alive()
        await bot.settle()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=PATIENCE)


@pytest.fixture
def discord_errors(caplog: pytest.LogCaptureFixture) -> Callable[[], list[logging.LogRecord]]:
    caplog.set_level(logging.WARNING, logger="discord")
    return lambda: [
        r for r in caplog.records if r.name.startswith("discord") and r.levelno >= logging.ERROR
    ]


@pytest.fixture
def logs() -> Any:
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture
async def bot(
    core: Core,
    dispatcher: Dispatcher,
    settings: Settings,
    fake: FakeDiscord,
    server: Server,
    discord_errors: Callable[[], list[logging.LogRecord]],
    logs: list[dict[str, Any]],
) -> AsyncIterator[Bot]:
    async with running(core, dispatcher, config_for(server, settings), fake) as bot:
        yield bot
    import os

    if os.environ.get("SHOW_LOGS"):
        for e in logs:
            print(e)
        for r in discord_errors():
            print(r)
    assert discord_errors() == []
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []
    assert core.bus.failures == 0


async def restarted_core(settings: Settings, db: Database, clock: ManualClock) -> Core:
    """A second process on the same database."""
    core = Core.build(settings, db=Database(db.url), clock=clock)
    EventMessenger(core)
    return core


async def refund_elsewhere(
    settings: Settings, core: Core, clock: ManualClock, user_key: str, space_id: int = 1
) -> None:
    """Refund the one ticket of ``user_key`` (``discord:GUILD:USER``) from a second process,
    as the Stripe webhook on a web worker does: no event reaches this one."""
    web = await restarted_core(settings, core.db, clock)
    try:
        holder = await web.identities.by_key(user_key)
        assert holder is not None and holder.id is not None
        [ticket] = await web.tickets.tickets_of(holder.id, space_id)
        assert await web.tickets.refund(ticket, reason="Refunded through Stripe.")
    finally:
        await web.close()
