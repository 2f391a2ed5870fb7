"""What Stagepass writes is for its owner only: the data directory 0700, its files 0600
whatever the umask; key files appear once even when two processes start together; Slack
OAuth tokens are encrypted in the database, old plain rows included."""

from __future__ import annotations

import multiprocessing
import os
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from slack_sdk.oauth.installation_store.models.installation import Installation

from adapters.slack.installations import InstallationStore
from adapters.slack.models import SlackInstallation
from audio.recorder import Recorder
from bot.clock import ManualClock
from bot.core import Core
from bot.db import Database
from bot.encryption import KEY_FILE, PREFIX, Cipher, load_cipher
from bot.files import secret_file
from bot.logs import configure
from bot.settings import Settings
from bot.tokens import load_api_token, load_signing_key
from tests.services import drop_postgres_database, fresh_postgres_database

TOKEN = "xoxb-1111111111-2222222222-PlainTextWouldBeBad"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    import logging

    import structlog

    root = logging.getLogger()
    handlers, config = root.handlers[:], structlog.get_config()
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = handlers
    structlog.configure(**config)


async def test_data_dir_and_files_are_private_under_umask_022(
    settings: Settings, umask_022: None, restore_logging: None
) -> None:
    core = Core.build(settings, clock=ManualClock())  # its own database in the data dir
    try:
        await core.db.migrate()
        async with core.db.write_conn() as conn:  # a write, so the -wal and -shm files exist
            await conn.execute(sa.text("CREATE TABLE scratch (x INTEGER)"))
        load_api_token(None, settings.data_dir)
        configure("info", "console", settings.data_dir / "stagepass.log")
        recorder = Recorder(settings.resolved_recording_dir / "space-1" / "part-001.ogg")
        await recorder.open()
        recording = mode(recorder.partial), mode(recorder.path.parent)
        await recorder.aclose()
        assert recording == (0o600, 0o700)
        data = settings.data_dir
        assert mode(data) == 0o700
        assert mode(settings.resolved_recording_dir) == 0o700
        files = [
            data / name
            for name in (
                "stagepass.db",
                "stagepass.db-wal",
                "stagepass.db-shm",
                "stagepass.log",
                "signing.key",
                "api-token",
                KEY_FILE,
            )
        ]
        assert {str(path.relative_to(data)): oct(mode(path)) for path in files} == {
            str(path.relative_to(data)): oct(0o600) for path in files
        }
    finally:
        await core.close()


async def test_an_old_install_is_tightened(settings: Settings, umask_022: None) -> None:
    data = settings.data_dir
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    db_file = data / "stagepass.db"
    db_file.touch(mode=0o644)
    wal = data / "stagepass.db-wal"
    wal.touch(mode=0o644)
    core = Core.build(settings, clock=ManualClock())
    try:
        assert (mode(data), mode(db_file), mode(wal)) == (0o700, 0o600, 0o600)
    finally:
        await core.close()


def test_a_key_file_made_meanwhile_by_another_process_wins(tmp_path: Path) -> None:
    path = tmp_path / "api-token"

    def make() -> str:  # the other process links its file while this one generates
        path.write_text("the-winners-token\n")
        return "the-losers-token"

    assert secret_file(path, make) == "the-winners-token"
    assert [p.name for p in tmp_path.iterdir()] == ["api-token"]  # no temp file left


def _start(data_dir: str, barrier: Any, rounds: int, results: Any) -> None:
    """One 'process starting': every key file Stagepass makes on first run, at the same
    moment as the other process (the barrier), in a fresh directory each round."""
    out = []
    for n in range(rounds):
        root = Path(data_dir) / f"run-{n}"
        barrier.wait()
        signing = load_signing_key(None, root).encode().hex()
        token = load_api_token(None, root)
        cipher = load_cipher(None, root)
        out.append((signing, token, cipher.decrypt(cipher.encrypt("x"))))
    results.put(out)


def test_two_processes_starting_at_once_agree_on_their_keys(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    rounds = 15
    procs = [
        ctx.Process(target=_start, args=(str(tmp_path), barrier, rounds, results)) for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    first, second = results.get(timeout=120), results.get(timeout=120)
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert first == second  # each round, both read the one key the winner wrote
    assert len({signing for signing, _, _ in first}) == rounds
    for n in range(rounds):
        names = sorted(p.name for p in (tmp_path / f"run-{n}").iterdir())
        assert names == sorted(["signing.key", "api-token", KEY_FILE])


async def test_oauth_tokens_are_not_plaintext_in_the_database_file(
    settings: Settings, sqlite_db: Database, clock: ManualClock
) -> None:
    core = Core.build(settings, db=sqlite_db, clock=clock)
    store = InstallationStore(core.db, clock, cipher=core.cipher)
    await store.async_save(
        Installation(
            app_id="A0STAGE",
            team_id="T0ONE",
            team_name="One",
            user_id="U0HOST",
            bot_token=TOKEN,
            bot_id="B0BOT",
            bot_user_id="U0BOT",
            bot_scopes="commands",
        )
    )
    await sqlite_db.dispose()  # checkpointed: the rows are in the database file itself
    db_file = settings.data_dir / "stagepass.db"
    raw = b"".join(p.read_bytes() for p in db_file.parent.glob("stagepass.db*"))
    assert TOKEN.encode() not in raw and PREFIX.encode() in raw
    bot = await InstallationStore(sqlite_db, clock, cipher=core.cipher).async_find_bot(
        enterprise_id=None, team_id="T0ONE"
    )
    assert bot is not None and bot.bot_token == TOKEN
    await store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_db(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Database]:
    """A database with no tables yet: SQLite in the data dir, then PostgreSQL."""
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{settings.data_dir / 'old.db'}")
        yield db
        await db.dispose()
        return
    url, name = fresh_postgres_database()
    db = Database(url)
    yield db
    await db.dispose()
    drop_postgres_database(name)


async def _install_plain_row(db: Database) -> None:
    """A workspace installed before tokens were encrypted (schema 0007)."""
    await db.migrate("0007")
    row = {
        "app_id": "A1",
        "enterprise_id": "",
        "enterprise_name": "",
        "team_id": "T0OLD",
        "team_name": "Old",
        "is_enterprise_install": False,
        "bot_token": TOKEN,
        "bot_refresh_token": None,
        "bot_id": "B1",
        "bot_user_id": "U1",
        "bot_scopes": "",
        "installer_user_id": "U0",
        "installed_at": datetime(2030, 1, 1, tzinfo=UTC),
    }
    async with db.engine.begin() as conn:
        await conn.execute(sa.insert(SlackInstallation), [row])


async def test_migration_encrypts_an_old_plain_row(empty_db: Database, settings: Settings) -> None:
    cipher = load_cipher(None, settings.data_dir)
    await _install_plain_row(empty_db)
    await empty_db.migrate(cipher=lambda: cipher)
    stored = await _stored_token(empty_db)
    assert stored.startswith(PREFIX) and cipher.decrypt(stored) == TOKEN
    await empty_db.migrate(cipher=lambda: cipher)  # again: nothing is encrypted twice
    assert await _stored_token(empty_db) == stored
    await _downgrade(empty_db, "0007", cipher)
    assert await _stored_token(empty_db) == TOKEN


async def test_the_migration_finds_the_apps_key_in_the_data_dir(
    empty_db: Database, settings: Settings
) -> None:
    """Without a key handed in (the `alembic` command), the migration reads the settings:
    the same encryption.key the app then opens the rows with."""
    assert Path.cwd() / "data" == settings.data_dir  # what the settings say by default
    await _install_plain_row(empty_db)
    await empty_db.migrate()
    assert load_cipher(None, settings.data_dir).decrypt(await _stored_token(empty_db)) == TOKEN


async def _stored_token(db: Database) -> str:
    async with db.engine.connect() as conn:
        value = (await conn.execute(sa.text("SELECT bot_token FROM slack_installations"))).scalar()
    assert isinstance(value, str)
    return value


async def _downgrade(db: Database, revision: str, cipher: Cipher) -> None:
    from alembic import command
    from alembic.config import Config

    from bot.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["cipher"] = lambda: cipher

    def downgrade(sync_conn: sa.Connection) -> None:
        cfg.attributes["connection"] = sync_conn
        command.downgrade(cfg, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(downgrade)
