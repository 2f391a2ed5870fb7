"""The outbox: direct messages kept in the database until their platform delivers them.

`send` writes the message and publishes it as a `DirectMessage` carrying the row's id. The
adapter of the person's platform acknowledges: `sent`, `failed` (transient: retried with
backoff, up to `max_attempts`, then given up and logged) or `refused` (for good: DMs
closed, no such user; never retried). `sweep` re-publishes what is due and unsent, only
for the platforms this process delivers (each adapter registers with `delivers`): a DM
lost to a crash, or to a platform's bad minute, goes out later, at least once.

An attempt is counted when the message is published, not when it is answered, so one
that no adapter ever answers is still given up after `max_attempts`. A published message
is not due again before its backoff delay: that delay is also how long the first
delivery has before the sweep takes it for lost (after a crash: up to that long after
the restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.batching import GroupCommit
from bot.clock import Clock
from bot.db import Database, table_of
from bot.events import DirectMessage, EventBus
from bot.models import OutboxMessage, OutboxStatus, Platform

log = structlog.get_logger(__name__)

_OUTBOX = table_of(OutboxMessage)

#: how often `stagepass run` sweeps
SWEEP_INTERVAL = timedelta(seconds=30)


class Outbox:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        clock: Clock,
        *,
        max_attempts: int = 8,
        first_delay: timedelta = timedelta(minutes=1),
        max_delay: timedelta = timedelta(hours=1),
        batch: int = 100,
    ) -> None:
        self.db = db
        self.bus = bus
        self.clock = clock
        self.max_attempts = max_attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.batch = batch
        self.platforms: set[Platform] = set()
        self._desk: GroupCommit[DirectMessage, int] = GroupCommit("outbox", self._keep)

    def delivers(self, platform: Platform) -> None:
        """An adapter of this process delivers `platform`'s DMs: the sweep resends them."""
        self.platforms.add(platform)

    def delay(self, attempts: int) -> timedelta:
        """How long after its `attempts`-th attempt a message is due again."""
        doubled: timedelta = self.first_delay * 2 ** max(attempts - 1, 0)
        return min(doubled, self.max_delay)

    async def send(
        self, identity_key: str, text: str, links: tuple[tuple[str, str], ...] = ()
    ) -> int:
        """Keep a DM for `identity_key` and publish it (its first attempt); its row id.
        DMs sent together (a reminder minute, a burst of tickets) are kept in one
        statement (`bot.batching`)."""
        return await self._desk.submit(
            DirectMessage(identity_key=identity_key, text=text, links=links)
        )

    async def _keep(self, messages: list[DirectMessage]) -> list[int | Exception]:
        now = self.clock.now()
        rows = [
            OutboxMessage(
                platform=Platform(m.identity_key.partition(":")[0]),
                identity_key=m.identity_key,
                text=m.text,
                links=[[label, url] for label, url in m.links],
                status=OutboxStatus.PENDING,
                attempts=1,
                created_at=now,
                next_attempt_at=now + self.delay(1),
            ).model_dump(exclude={"id"})
            for m in messages
        ]
        async with self.db.write_conn() as conn:
            ids = list(
                (
                    await conn.execute(
                        sa.insert(_OUTBOX).returning(_OUTBOX.c.id, sort_by_parameter_order=True),
                        rows,
                    )
                ).scalars()
            )
        for message, message_id in zip(messages, ids, strict=True):
            self.bus.publish(dataclasses.replace(message, id=message_id))
        return list(ids)

    async def close(self) -> None:
        await self._desk.close()

    async def sent(self, message_id: int | None) -> None:
        """The platform took the message. (`None`: a DM not kept in the outbox.)"""
        if message_id is None:
            return
        async with self.db.write() as session:
            row = await session.get(OutboxMessage, message_id, with_for_update=True)
            if row is None or row.status == OutboxStatus.SENT:
                return
            row.status = OutboxStatus.SENT
            row.sent_at = self.clock.now()
            session.add(row)

    async def failed(self, message_id: int | None, error: str) -> None:
        """A transient failure (a 5xx, rate limited, the network): retried when due."""
        if message_id is None:
            return
        async with self._pending(message_id) as (session, row):
            if row is None:
                return
            row.last_error = error[:500]
            if row.attempts >= self.max_attempts:
                self._give_up(row)
            else:
                row.next_attempt_at = self.clock.now() + self.delay(row.attempts)
            session.add(row)

    async def refused(self, message_id: int | None, error: str) -> None:
        """The platform refused for good (DMs closed, no such user): never retried."""
        if message_id is None:
            return
        async with self._pending(message_id) as (session, row):
            if row is None:
                return
            row.status = OutboxStatus.REFUSED
            row.last_error = error[:500]
            session.add(row)
        log.info("direct message refused; not retried", outbox_id=message_id, error=error)

    @contextlib.asynccontextmanager
    async def _pending(
        self, message_id: int
    ) -> AsyncIterator[tuple[AsyncSession, OutboxMessage | None]]:
        """A write transaction with the message locked: None unless it is still pending."""
        async with self.db.write() as session:
            row = await session.get(OutboxMessage, message_id, with_for_update=True)
            yield session, row if row is not None and row.status == OutboxStatus.PENDING else None

    def _give_up(self, row: OutboxMessage) -> None:
        row.status = OutboxStatus.GAVE_UP
        _log_given_up(row)

    async def sweep(self) -> int:
        """Re-publish the due, unsent DMs of the platforms this process delivers (giving
        up those out of attempts); how many were published."""
        if not self.platforms:
            return 0
        now = self.clock.now()
        pending = OutboxStatus.PENDING.value
        due = (
            sa.select(_OUTBOX)
            .where(
                col(OutboxMessage.status) == pending,
                col(OutboxMessage.platform).in_(sorted(p.value for p in self.platforms)),
                col(OutboxMessage.next_attempt_at) <= now,
            )
            .order_by(col(OutboxMessage.id))
            .limit(self.batch)
        )
        claimed: list[DirectMessage] = []
        async with self.db.write_conn() as conn:
            for row in (await conn.execute(due)).all():
                given_up = row.attempts >= self.max_attempts
                values: dict[str, object] = (
                    {"status": OutboxStatus.GAVE_UP.value}
                    if given_up
                    else {
                        "attempts": row.attempts + 1,
                        "next_attempt_at": now + self.delay(row.attempts + 1),
                    }
                )
                # taken only if unchanged since read: a second process sweeping the same
                # database (PostgreSQL) or a late acknowledgement wins
                taken = await conn.execute(
                    sa.update(_OUTBOX)
                    .where(
                        col(OutboxMessage.id) == row.id,
                        col(OutboxMessage.status) == pending,
                        col(OutboxMessage.attempts) == row.attempts,
                        col(OutboxMessage.next_attempt_at) <= now,
                    )
                    .values(**values)
                )
                if taken.rowcount != 1:
                    continue
                if given_up:
                    _log_given_up(row)
                    continue
                links = tuple((label, url) for label, url in row.links)
                claimed.append(
                    DirectMessage(
                        identity_key=row.identity_key, text=row.text, links=links, id=row.id
                    )
                )
        for message in claimed:
            self.bus.publish(message)
        if claimed:
            log.info("outbox: direct messages resent", count=len(claimed))
        return len(claimed)

    async def sweep_periodically(self, stop: asyncio.Event) -> None:
        """The background job of `stagepass run`: sweep at start (what a crashed process
        left unsent) and every `SWEEP_INTERVAL` until `stop`."""
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("outbox sweep failed; the next one retries")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=SWEEP_INTERVAL.total_seconds())


def _log_given_up(row: Any) -> None:
    """`row`: an `OutboxMessage`, or a result row with the same columns."""
    log.error(
        "direct message given up",
        outbox_id=row.id,
        identity_key=row.identity_key,
        attempts=row.attempts,
        created_at=row.created_at.isoformat(),
        last_error=row.last_error,
        text=row.text[:200],
    )
