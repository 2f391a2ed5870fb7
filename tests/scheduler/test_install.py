"""`scheduler.install`, the migration, and the settings the scheduler reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from adapters.shell.chat import Chat
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.db import MIGRATIONS, Database
from bot.errors import ConfigError
from bot.settings import Settings, load_settings
from bot.wiring import Stagepass
from scheduler import install, installed
from tests.services import drop_postgres_database, fresh_postgres_database
from tests.waiting import eventually

TABLES = {"reminder_deliveries", "slot_series", "slot_occurrences", "apscheduler_jobs"}


def app_for(core: Core) -> Stagepass:
    """The app with the shell's chat (the ``"chat"`` service) and no other package."""
    dispatcher = Dispatcher(core)
    return Stagepass(core.settings, core, dispatcher, services={"chat": Chat(core, dispatcher)})


def chat(app: Stagepass) -> Chat:
    found = app.service("chat", Chat)
    assert found is not None
    return found


async def test_install_takes_over_slot_and_adds_the_background_job(core: Core) -> None:
    app = app_for(core)
    before = await app.dispatcher.handle(chat(app).actor("alice"), "/slot list")
    assert before.error and "not configured" in before.text
    await install(app)
    await install(app)  # once only
    assert [job.__name__ for job in app.background] == ["scheduler"]
    scheduling = installed(app)
    assert scheduling is not None and not scheduling.is_owner
    reply = await app.dispatcher.handle(chat(app).actor("alice"), "/slot list")
    assert not reply.error and "no slots" in reply.text

    stop = asyncio.Event()
    task = asyncio.create_task(app.background[0](stop))

    async def owner_with_periodic_jobs() -> bool:
        """Taking over sets is_owner, then adds the periodic jobs."""
        if not scheduling.is_owner:
            return False
        periodic = {job.id for job in await scheduling.aps.call(scheduling.aps.get_jobs)}
        return {"holds", "slots", "sweep"} <= periodic

    await eventually(owner_with_periodic_jobs, what="the owner's holds, slots and sweep jobs")
    stop.set()
    await asyncio.wait_for(task, 15)
    assert not scheduling.aps.running


async def test_install_does_nothing_when_switched_off(core: Core) -> None:
    core.settings.scheduler_enabled = False
    app = app_for(core)
    await install(app)
    assert app.background == [] and installed(app) is None


def test_offsets_setting() -> None:
    assert load_settings(reminder_offsets="0, 30,30", _env_file=None).reminder_offsets == [30, 0]
    assert load_settings(host_reminder_offsets="", _env_file=None).host_reminder_offsets == []
    with pytest.raises(ConfigError, match="STAGEPASS_REMINDER_OFFSETS"):
        load_settings(reminder_offsets="soon", _env_file=None)


async def _up_down_up(url: str) -> None:
    db = Database(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))

    def tables(conn: sa.Connection) -> set[str]:
        return set(sa.inspect(conn).get_table_names())

    def downgrade(conn: sa.Connection) -> None:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")

    try:
        await db.migrate()
        async with db.engine.connect() as conn:
            assert await conn.run_sync(tables) >= TABLES
        async with db.engine.begin() as conn:
            await conn.run_sync(downgrade)
        async with db.engine.connect() as conn:
            left = await conn.run_sync(tables)
        assert not TABLES & left and "spaces" in left
        await db.migrate()
        async with db.engine.connect() as conn:
            assert await conn.run_sync(tables) >= TABLES
    finally:
        await db.dispose()


async def test_migration_up_down_up_sqlite(tmp_path: Path) -> None:
    await _up_down_up(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
async def test_migration_up_down_up_postgres() -> None:
    url, name = fresh_postgres_database()
    try:
        await _up_down_up(url)
    finally:
        drop_postgres_database(name)


def test_settings_fixture_defaults(settings: Settings) -> None:
    assert settings.reminder_offsets == [30, 0] and settings.host_reminder_offsets == [30, 0]
    assert settings.slot_horizon_days == 30 and settings.max_scheduled_per_host == 10


async def test_spaces_made_before_the_scheduler_get_their_jobs_on_take_over(
    core: Core,
) -> None:
    from datetime import timedelta

    from bot.actors import Actor
    from bot.models import Platform
    from bot.services.spaces import SpaceDraft

    alice = Actor(Platform.SHELL, "local", "alice", "alice")
    space = await core.spaces.create(
        alice, SpaceDraft(title="Old", starts_at=core.clock.now() + timedelta(days=1), capacity=5)
    )
    app = app_for(core)
    await install(app)
    scheduling = installed(app)
    assert scheduling is not None and await scheduling.jobs_of(space.id or 0) == {}
    assert await scheduling.plan_unplanned() == 1
    assert set(await scheduling.jobs_of(space.id or 0)) >= {"remind:30", "start", "abandon"}
    assert await scheduling.plan_unplanned() == 0
    await scheduling.close()
