"""Exactly one process runs the scheduler's jobs (two on one job store run them twice).

- PostgreSQL: a session-level `pg_try_advisory_lock` on a connection held for as long as
  the process owns the scheduler. When the owner dies its connection closes and the
  server drops the lock; a standby polling `try_acquire` then takes over. The owner
  checks its connection regularly and steps down if it is gone.
- SQLite: an exclusive `flock` on `scheduler.lock` in the data directory; the kernel
  drops it when the process dies. A second process is told who holds it and waits.

Other processes still write jobs to the shared store (so a Space announced anywhere is
scheduled); only the owner runs them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.files import FILE_MODE, parent_dir

log = structlog.get_logger(__name__)

# pg advisory lock key: the bytes of "stagepass" folded into a signed 64-bit integer
LOCK_KEY = int.from_bytes(b"stgpass\x01", "big", signed=True)


class OwnerLock(Protocol):
    async def try_acquire(self) -> bool:
        """Take ownership if nobody holds it; True when this process now owns it."""
        ...

    async def alive(self) -> bool:
        """Whether ownership still holds (checked by the owner now and then)."""
        ...

    async def release(self) -> None: ...

    def holder(self) -> str:
        """Who holds it, for the message a standby prints."""
        ...


class PostgresLock:
    def __init__(self, engine: AsyncEngine, key: int = LOCK_KEY) -> None:
        self.engine = engine
        self.key = key
        self._conn: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        if self._conn is not None:
            return await self.alive()
        conn = await self.engine.connect()
        try:
            got = (
                await conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
            ).scalar_one()
            await conn.commit()  # the lock is the session's; don't sit idle in a transaction
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def alive(self) -> bool:
        if self._conn is None:
            return False
        try:
            await self._conn.execute(sa.text("SELECT 1"))
            await self._conn.commit()
            return True
        except Exception:
            log.warning("lost the scheduler lock's database connection")
            await self._drop()
            return False

    async def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(Exception):
            await self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            await self._conn.commit()
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    def holder(self) -> str:
        return "another Stagepass process"


class FileLock:
    """`flock` on a file; non-blocking, so the calls never stall the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    async def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        parent_dir(self.path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    async def alive(self) -> bool:
        return self._fd is not None

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def holder(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            pid = ""
        return f"process {pid}" if pid else "another process"
