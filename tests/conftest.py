"""Shared fixtures: settings in a temporary data directory, a migrated database, a core
with a manual clock, and the in-memory chat."""

from __future__ import annotations

import io
import logging
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog
from pydantic import AliasChoices

from adapters.shell.chat import Chat
from bot.clock import ManualClock
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.db import Database
from bot.logs import SLICE, redactor
from bot.notices import EventMessenger
from bot.settings import Settings, load_settings
from tests.audio.browsers import any_browser, tone_wav  # noqa: F401 (fixtures for every test)
from tests.services import drop_postgres_database, fresh_postgres_database

_TEMPLATE: dict[str, Path] = {}


def setting_keys() -> frozenset[str]:
    """Every environment variable `Settings` reads: each field's aliases, else its name
    (the adapters' configs are read from `Settings`, so this covers them too)."""
    keys: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            keys.update(str(choice).upper() for choice in alias.choices)
        elif isinstance(alias, str):
            keys.add(alias.upper())
        else:
            keys.add(name.upper())
    return frozenset(keys)


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's DISCORD_TOKEN, DATABASE_URL ...: every key `Settings`
    reads is removed (in any case, as pydantic-settings matches names case-blind)."""
    keys = setting_keys()
    for key in list(os.environ):
        if key.upper() in keys:
            monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _logging_levels_restored() -> Iterator[None]:
    """A test that starts Stagepass configures logging (bot/logs.py quiets discord, aiortc
    ...): put every logger's level back, so later tests see the records they check."""
    manager = logging.Logger.manager
    before = {
        name: logger.level
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root = logging.getLogger().level
    yield
    logging.getLogger().setLevel(root)
    for name, logger in list(manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            logger.setLevel(before.get(name, logging.NOTSET))


@pytest.fixture
def log_output(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """A buffer for a test that sets logging up as `stagepass run` does (`bot.logs.configure`
    with `stream=`), on a 200-column terminal; logging is put back as it was afterwards."""
    monkeypatch.setenv("COLUMNS", "200")
    root = logging.getLogger()
    handlers, config = root.handlers[:], structlog.get_config()
    yield io.StringIO()
    root.handlers[:] = handlers
    structlog.configure(**config)
    redactor.clear()


def leaks(text: str, *secrets: str) -> set[str]:
    """The 16-character slices of `secrets` that `text` shows."""
    return {
        secret[i : i + SLICE]
        for secret in secrets
        for i in range(len(secret) - SLICE + 1)
        if secret[i : i + SLICE] in text
    }


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return load_settings(
        data_dir=tmp_path / "data",
        api_token="test-token",
        http_port=0,
        public_url="http://stagepass.test",
    )


async def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once per session; each test gets a copy of the migrated file."""
    if "sqlite" not in _TEMPLATE:
        path = tmp_path_factory.mktemp("template") / "template.db"
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.migrate()
        await db.dispose()
        _TEMPLATE["sqlite"] = path
    return _TEMPLATE["sqlite"]


@pytest.fixture
async def sqlite_db(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    template = await _template_db(tmp_path_factory)
    target = settings.data_dir / "stagepass.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, target)
    db = Database(f"sqlite+aiosqlite:///{target}")
    yield db
    await db.dispose()


@pytest.fixture
async def pg_db() -> AsyncIterator[Database]:
    url, name = fresh_postgres_database()
    db = Database(url, pool_size=20)
    await db.migrate()
    yield db
    await db.dispose()
    drop_postgres_database(name)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def core(settings: Settings, sqlite_db: Database, clock: ManualClock) -> AsyncIterator[Core]:
    async for built in core_on(settings, sqlite_db, clock):
        yield built


@pytest.fixture
async def pg_core(settings: Settings, pg_db: Database, clock: ManualClock) -> AsyncIterator[Core]:
    """`core` on a fresh PostgreSQL database."""
    async for built in core_on(settings, pg_db, clock):
        yield built


async def core_on(settings: Settings, db: Database, clock: ManualClock) -> AsyncIterator[Core]:
    core = Core.build(settings, db=db, clock=clock)
    EventMessenger(core)
    yield core
    await core.tickets.claims.close()
    await core.bus.close()
    if core.bus.failures:  # a handler's failure is a bug even when the test saw nothing
        pytest.fail(f"{core.bus.failures} event handler(s) failed: see 'event handler failed'")


@pytest.fixture
def dispatcher(core: Core) -> Dispatcher:
    return Dispatcher(core)


@pytest.fixture
def chat(core: Core, dispatcher: Dispatcher) -> Chat:
    return Chat(core, dispatcher)
