"""The adapter's own rows: where each Space lives in Discord and the role changes to retry.

`KeyedLocks` serialises everything the adapter does to one Space's Discord objects: the
bus runs event handlers concurrently, and a ticket issued a moment after the announcement
must find the role the announcement created. (Also one change of a channel's overwrites,
and one admission of a member, at a time.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager

from sqlmodel import col, select

from adapters.discord.models import DiscordRoleTask, DiscordSpace, DiscordStageLock
from bot.clock import Clock
from bot.db import Database
from bot.models import Space, SpaceStatus

GRANT = "grant"
REMOVE = "remove"
CREATE_ROLE = "create_role"
DELETE_ROLE = "delete_role"
EVERYONE = "*"  # the user id of a create_role or delete_role task
DELETED = "0"  # message id of an announcement someone deleted in Discord: never re-posted


class KeyedLocks:
    """One holder at a time per key (a Space, a channel, a member); a key's lock is
    forgotten once nobody holds or waits for it, so keys may come and go freely."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class DiscordStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def get(self, space_id: int, guild_id: int | str) -> DiscordSpace | None:
        """The Space's row in one server (a Space shown in several has a row in each)."""
        async with self.db.session() as session:
            return await session.get(DiscordSpace, (space_id, str(guild_id)))

    async def rows(self, space_id: int) -> list[DiscordSpace]:
        """The Space's rows in every server that shows it, by server id."""
        async with self.db.session() as session:
            query = select(DiscordSpace).where(DiscordSpace.space_id == space_id)
            return list(await session.exec(query.order_by(col(DiscordSpace.guild_id))))

    async def get_or_new(self, space_id: int, guild_id: int) -> DiscordSpace:
        row = await self.get(space_id, guild_id)
        if row is None:
            row = DiscordSpace(
                space_id=space_id, guild_id=str(guild_id), updated_at=self.clock.now()
            )
        return row

    async def save(self, row: DiscordSpace) -> None:
        row.updated_at = self.clock.now()
        async with self.db.write() as session:
            await session.merge(row)

    async def by_event(self, event_id: int) -> DiscordSpace | None:
        async with self.db.session() as session:
            return (
                await session.exec(
                    select(DiscordSpace).where(DiscordSpace.event_id == str(event_id))
                )
            ).first()

    # --- role changes to retry -----------------------------------------------------------

    async def tasks(self, row: DiscordSpace | None = None) -> list[DiscordRoleTask]:
        """The changes still owed: of one Space in one server (`row`), or all."""
        query = select(DiscordRoleTask).order_by(
            col(DiscordRoleTask.space_id), col(DiscordRoleTask.created_at)
        )
        if row is not None:
            query = query.where(
                DiscordRoleTask.space_id == row.space_id, DiscordRoleTask.guild_id == row.guild_id
            )
        async with self.db.session() as session:
            return list(await session.exec(query))

    async def put_task(self, row: DiscordSpace, user_id: str, action: str, error: str) -> None:
        """Remember a refused change; a later change for the same member replaces it."""
        now = self.clock.now()
        async with self.db.write() as session:
            task = await session.get(DiscordRoleTask, (row.space_id, row.guild_id, user_id))
            if task is None:
                task = DiscordRoleTask(
                    space_id=row.space_id,
                    guild_id=row.guild_id,
                    user_id=user_id,
                    action=action,
                    created_at=now,
                    updated_at=now,
                )
            elif task.action != action:
                task.action, task.attempts = action, 0
            task.attempts += 1
            task.last_error = error[:300]
            task.updated_at = now
            session.add(task)

    async def drop_task(self, row: DiscordSpace, user_id: str) -> None:
        async with self.db.write() as session:
            task = await session.get(DiscordRoleTask, (row.space_id, row.guild_id, user_id))
            if task is not None:
                await session.delete(task)

    async def drop_member_tasks(self, row: DiscordSpace) -> None:
        """Forget every member's pending change in the row's server (the role itself is
        going away)."""
        async with self.db.write() as session:
            for task in await session.exec(
                select(DiscordRoleTask).where(
                    DiscordRoleTask.space_id == row.space_id,
                    DiscordRoleTask.guild_id == row.guild_id,
                    DiscordRoleTask.user_id != EVERYONE,
                )
            ):
                await session.delete(task)

    # --- the Space live on each Stage (adapters/discord/stage_access.py) ----------------

    async def live_stages(self) -> list[DiscordStageLock]:
        """The channels a live Space holds now (a lock whose Space is over is free)."""
        query = (
            select(DiscordStageLock)
            .join(Space, col(Space.id) == DiscordStageLock.space_id)
            .where(col(Space.status) == SpaceStatus.LIVE.value)
            .order_by(col(DiscordStageLock.channel_id))
        )
        async with self.db.session() as session:
            return list(await session.exec(query))

    async def stage_lock(self, channel_id: int) -> DiscordStageLock | None:
        async with self.db.session() as session:
            return await session.get(DiscordStageLock, str(channel_id))

    async def save_lock(self, lock: DiscordStageLock) -> None:
        async with self.db.write() as session:
            await session.merge(lock)

    async def release_stage(self, channel_id: int, space_id: int) -> DiscordStageLock | None:
        """Free the channel if `space_id` holds it; the lock as it was, else None."""
        async with self.db.write() as session:
            lock = await session.get(DiscordStageLock, str(channel_id))
            if lock is None or lock.space_id != space_id:
                return None
            await session.delete(lock)
            return lock
