"""The database: async engine, sessions, write transactions and migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and write
transactions in one process are serialised by an asyncio lock and opened with
`BEGIN IMMEDIATE`, so a transaction never fails half-way with "database is locked".
PostgreSQL needs none of that: its row locks do the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import configure_mappers
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import ConfigError
from bot.files import parent_dir, private_file, tighten

if TYPE_CHECKING:
    from bot.encryption import Cipher

MIGRATIONS = Path(__file__).with_name("migrations")


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core `Table` of a table model, for statements written in SQLAlchemy Core
    (SQLModel leaves `__table__` untyped)."""
    table = sa.inspect(model).local_table
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


def normalise_url(url: str) -> str:
    """Accept the plain URLs operators write and pick our async drivers."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url.removeprefix("sqlite:")
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    if url.startswith(("sqlite+aiosqlite:", "postgresql+asyncpg:")):
        return url
    raise ConfigError(
        f"Setting DATABASE_URL: unsupported database URL scheme in {url.split(':')[0]!r}"
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _private_sqlite(path: Path) -> None:
    """The database file made 0600 before SQLite opens it (its -wal and -shm files take
    its mode); files an older run left readable are tightened."""
    parent_dir(path)
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten(path.with_name(path.name + suffix))


class Database:
    """Owns the engine; hands out read sessions and serialised write transactions."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        # connections the pool keeps open (PostgreSQL may open as many again under load;
        # SQLite's pool holds 15): how many claims `TicketService.reserve` admits at once
        self.pool_size = pool_size
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            path = sa.engine.make_url(self.url).database
            if path and path != ":memory:" and not path.startswith("file:"):
                _private_sqlite(Path(path))
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    async def warm(self) -> None:
        """Configure the ORM's mappers and open a pooled connection now. Both happen on
        first use otherwise, and cost a chat adapter's first answer 0.2-0.5 s here."""
        configure_mappers()
        async with self.engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))

    def session(self) -> AsyncSession:
        """A session for reads (and ORM writes the caller commits itself)."""
        return self._sessions()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed on success, rolled back on any error."""
        if self._write_lock is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._sessions() as session:
            await (await session.connection()).execute(sa.text("BEGIN IMMEDIATE"))
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            await session.commit()

    @asynccontextmanager
    async def write_conn(self) -> AsyncIterator[AsyncConnection]:
        """Like `write()`, on a bare connection: for the hot paths written in SQL."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.connect() as conn:
            await conn.execute(sa.text("BEGIN IMMEDIATE"))
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    async def migrate(
        self, revision: str = "head", *, cipher: Callable[[], Cipher] | None = None
    ) -> None:
        """Apply Alembic migrations up to `revision` (run on start and by `db upgrade`).

        `cipher` gives the key for migrations that encrypt stored secrets (asked only when
        there is something to encrypt); without it they read the settings themselves."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        if cipher is not None:
            cfg.attributes["cipher"] = cipher

        def upgrade(sync_conn: sa.Connection) -> None:
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, revision)

        async with self.engine.begin() as conn:
            await conn.run_sync(upgrade)

    async def dispose(self) -> None:
        await self.engine.dispose()
