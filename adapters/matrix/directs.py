"""The direct room of each person: opened by the bot once (invited, `is_direct`), kept in
`matrix_direct_rooms` and used for every DM after."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from adapters.matrix.client import Connection
from adapters.matrix.models import MatrixDirectRoom
from bot.db import Database


class Directs:
    def __init__(self, db: Database, connection: Connection, *, encrypted: bool) -> None:
        self.db = db
        self.connection = connection
        self.encrypted = encrypted
        self._locks: dict[str, asyncio.Lock] = {}

    async def room_ids(self) -> set[str]:
        async with self.db.session() as session:
            return set((await session.exec(select(MatrixDirectRoom.room_id))).all())

    async def room_of(self, user_id: str) -> str:
        """`user_id`'s direct room, opened on the first DM (one at a time per person). An
        encrypted one is used once they have joined it (a `TimeoutError` after 30 s: the
        outbox tries again later)."""
        async with self._locks.setdefault(user_id, asyncio.Lock()):
            async with self.db.session() as session:
                row = await session.get(MatrixDirectRoom, user_id)
            if row is not None:
                room_id = row.room_id
            else:
                room_id = await self.connection.open_direct(user_id, encrypted=self.encrypted)
                async with self.db.write() as session:
                    session.add(MatrixDirectRoom(user_id=user_id, room_id=room_id))
        if self.encrypted:  # keys go to members' devices: wait for the person to join
            await self.connection.joined(room_id, user_id)
        return room_id
