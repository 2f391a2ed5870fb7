"""Reminder delivery: who is reminded of which Space when, exactly once.

Subscriptions are the core's (`ReminderService`, the `reminders` table); this module
decides when they are due and sends them. One delivery is one `reminder_deliveries` row,
inserted with ON CONFLICT DO NOTHING in the transaction that decides to send it: only the
rows that transaction inserted become `ReminderDue` + `DirectMessage` events, after it
commits. A second attempt for the same (Space, person, offset, start time) — a job run
twice, a restart, a failover, the catch-up sweep — inserts nothing and sends nothing.

Rules:
- listeners are reminded at `STAGEPASS_REMINDER_OFFSETS` minutes before the start, hosts
  and co-hosts at `STAGEPASS_HOST_REMINDER_OFFSETS` (and at the start when they start by
  hand);
- a reminder goes to those subscribed before it was due (who subscribes 10 minutes
  before the start gets no "in 30 minutes" message);
- a reminder later than `STAGEPASS_REMINDER_GRACE_SECONDS` is dropped, not sent late;
- moving a Space makes its reminders due again for the new start.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel, col, select

from bot.clock import as_utc
from bot.core import Core
from bot.events import ReminderDue
from bot.models import (
    Identity,
    Reminder,
    Space,
    SpaceCohost,
    SpaceStatus,
    Ticket,
    TicketStatus,
    UTCDateTime,
)
from bot.wording import room_link
from scheduler import messages
from scheduler.models import ReminderDelivery

log = structlog.get_logger(__name__)

HOST, LISTENER = "host", "listener"
_EARLY = timedelta(seconds=1)  # a job may fire a hair before its time
_OPEN = (SpaceStatus.SCHEDULED, SpaceStatus.LIVE)
BATCH = 1000  # reminders claimed in one transaction


@dataclass(frozen=True, slots=True, order=True)
class Due:
    """Reminders of a Space at an offset (minutes before the start); `hosts_only` for
    the prompt a host who starts by hand gets at the start."""

    space_id: int
    offset: int
    hosts_only: bool = False


class ReminderSender:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.settings = core.settings
        self._queue: list[tuple[Due, asyncio.Future[int]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.settings.reminder_grace_seconds)

    def offsets(self) -> list[int]:
        """Every offset someone may be reminded at, largest first (0 always: a host who
        starts by hand is prompted at the start)."""
        return sorted(
            {0, *self.settings.reminder_offsets, *self.settings.host_reminder_offsets},
            reverse=True,
        )

    def cancel_at(self, space: Space) -> datetime:
        return space.starts_at + timedelta(hours=self.settings.auto_cancel_after_hours)

    # --- delivering ----------------------------------------------------------------------

    async def deliver(self, space_id: int, offset: int, *, hosts_only: bool = False) -> int:
        """Send the reminders of `space_id` due `offset` minutes before its start, to
        everyone who should have one and has not had it. Returns how many were sent."""
        return await self.deliver_many([Due(space_id, offset, hosts_only)])

    async def submit(self, space_id: int, offset: int) -> int:
        """`deliver`, batched with whatever else is due at the same moment: the jobs
        that fire together share one read and one write transaction."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((Due(space_id, offset), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="reminders:flush")
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the jobs submitted in the same pass join
        while self._queue:
            batch, self._queue = self._queue[:BATCH], self._queue[BATCH:]
            try:
                counts = await self._deliver_counted([due for due, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for due, future in batch:
                if not future.done():
                    future.set_result(counts.get((due.space_id, due.offset), 0))

    async def deliver_many(self, wanted: list[Due]) -> int:
        return sum((await self._deliver_counted(wanted)).values())

    async def _deliver_counted(self, wanted: list[Due]) -> dict[tuple[int, int], int]:
        core = self.core
        now = core.clock.now()
        ids = sorted({due.space_id for due in wanted})
        async with core.db.session() as session:
            spaces = {
                s.id: s for s in await session.exec(select(Space).where(col(Space.id).in_(ids)))
            }
        groups: dict[tuple[int, datetime, bool, bool], dict[int | None, Space]] = {}
        for due in wanted:
            space = spaces.get(due.space_id)
            if space is None or space.status not in _OPEN:
                continue
            at = space.starts_at - timedelta(minutes=due.offset)
            if now < at - _EARLY:
                continue  # a job left over from an earlier start time
            if now - at > self.grace:
                log.info("reminder missed its grace", space_id=space.id, offset=due.offset)
                continue
            to_hosts = due.hosts_only or due.offset in self.settings.host_reminder_offsets
            to_hosts |= due.offset == 0 and space.manual_start
            to_hosts &= space.created_at <= at + _EARLY
            to_listeners = not due.hosts_only and due.offset in self.settings.reminder_offsets
            if to_hosts or to_listeners:
                key = (due.offset, space.starts_at, to_hosts, to_listeners)
                groups.setdefault(key, {})[space.id] = space
        if not groups:
            return {}
        sent = await self._claim(groups, now)
        await self._publish(spaces, sent, now)
        counts: dict[tuple[int, int], int] = {}
        for space_id, _, offset, _ in sent:
            counts[(space_id, offset)] = counts.get((space_id, offset), 0) + 1
        return counts

    async def _claim(
        self, groups: dict[tuple[int, datetime, bool, bool], dict[int | None, Space]], now: datetime
    ) -> list[tuple[int, int, int, str]]:
        """Insert the delivery rows, all in one transaction; returns what it inserted as
        (space id, identity id, offset, role). Hosts first: a host who also subscribed
        is reminded once, as the host."""
        insert: Any = sqlite.insert if self.core.db.is_sqlite else postgresql.insert
        sent: list[tuple[int, int, int, str]] = []
        async with self.core.db.write_conn() as conn:
            for (offset, starts_at, to_hosts, to_listeners), members in groups.items():
                ids = list(members)
                due = starts_at - timedelta(minutes=offset)

                values = partial(_row, offset=offset, starts_at=starts_at, due=due, now=now)

                selects = []
                if to_hosts:
                    selects.append(
                        sa.select(*values(_S.c.id, _S.c.host_id, HOST)).where(_S.c.id.in_(ids))
                    )
                    cohosts = _C
                    selects.append(
                        sa.select(*values(cohosts.c.space_id, cohosts.c.identity_id, HOST)).where(
                            cohosts.c.space_id.in_(ids)
                        )
                    )
                if to_listeners:
                    selects.append(
                        sa.select(*values(_R.c.space_id, _R.c.identity_id, LISTENER)).where(
                            _R.c.space_id.in_(ids),
                            _R.c.created_at <= sa.literal(due + _EARLY, UTCDateTime()),
                        )
                    )
                for selectable in selects:  # one statement each, so hosts win the key
                    rows = await conn.execute(
                        insert(_D)
                        .from_select(_COLUMNS, selectable)
                        .on_conflict_do_nothing()
                        .returning(_D.c.space_id, _D.c.identity_id, _D.c.offset_minutes, _D.c.role)
                    )
                    sent += [(r[0], r[1], r[2], r[3]) for r in rows]
        return sent

    async def _publish(
        self, spaces: dict[int | None, Space], sent: list[tuple[int, int, int, str]], now: datetime
    ) -> None:
        if not sent:
            return
        core = self.core
        people_ids = sorted({identity_id for _, identity_id, _, _ in sent})
        listened = sorted({space_id for space_id, _, _, role in sent if role == LISTENER})
        tickets: dict[tuple[int, int], Ticket] = {}
        async with core.db.session() as session:
            people = {
                p.id: p
                for p in await session.exec(
                    select(Identity).where(col(Identity.id).in_(people_ids))
                )
            }
            if listened:
                for ticket in await session.exec(
                    select(Ticket).where(
                        col(Ticket.space_id).in_(listened),
                        Ticket.status == TicketStatus.VALID.value,
                        col(Ticket.holder_id).in_(people_ids),
                    )
                ):
                    tickets.setdefault((ticket.space_id, ticket.holder_id), ticket)
        public_url = core.settings.resolved_public_url
        dms: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
        for space_id, identity_id, offset, role in sent:
            space, person = spaces[space_id], people.get(identity_id)
            if person is None:
                continue
            tz = _zone(person)
            links: tuple[tuple[str, str], ...] = ()
            if role == HOST:
                text = messages.host_reminder(
                    space, tz, now, offset=offset, cancel_at=self.cancel_at(space)
                )
                staff = "host" if identity_id == space.host_id else "cohost"
                token = core.tickets.staff_token(space, person, staff)
                links = (("Open the room", room_link(public_url, space_id, token)),)
            else:
                held = tickets.get((space_id, identity_id))
                text = messages.listener_reminder(
                    space, tz, now, has_ticket=held is not None, offset=offset
                )
                if held is not None:
                    token = core.tickets.token_for(held, space)
                    links = (("Join the room", room_link(public_url, space_id, token)),)
            core.bus.publish(
                ReminderDue(
                    space_id=space_id,
                    community_id=space.community_id,
                    identity_key=person.key,
                    minutes_before=offset,
                )
            )
            dms.append((person.key, text, links))
        # kept in the outbox together (one statement per batch), then delivered
        await asyncio.gather(*(core.outbox.send(*dm) for dm in dms))

    # --- finding what is due (the catch-up sweep) ----------------------------------------

    async def due(self, now: datetime) -> list[Due]:
        """Every (Space, offset) due within the grace period that still misses a delivery.

        The anti-joins on the delivery key return only what is missing, so this is cheap
        when everything has been delivered (the usual case for the periodic sweep)."""
        lo = now - self.grace
        open_ = [s.value for s in _OPEN]
        found: set[Due] = set()
        async with self.core.db.session() as session:
            conn = await session.connection()
            for offset in self.offsets():
                shift = timedelta(minutes=offset)
                in_window = sa.and_(
                    _S.c.status.in_(open_),
                    _S.c.starts_at >= sa.literal(lo + shift, UTCDateTime()),
                    _S.c.starts_at <= sa.literal(now + shift, UTCDateTime()),
                )
                if offset in self.settings.reminder_offsets:
                    rows = await conn.execute(
                        sa.select(_R.c.space_id, _R.c.created_at, _S.c.starts_at)
                        .join(_S, _S.c.id == _R.c.space_id)
                        .outerjoin(_D, _delivery_of(_R.c.identity_id, offset))
                        .where(in_window, _D.c.id.is_(None))
                    )
                    for space_id, created_at, starts_at in rows:
                        if as_utc(created_at) <= as_utc(starts_at) - shift + _EARLY:
                            found.add(Due(space_id, offset))
                host_offset = offset in self.settings.host_reminder_offsets
                hosts = await conn.execute(
                    sa.select(_S.c.id, _S.c.created_at, _S.c.starts_at, _S.c.manual_start)
                    .outerjoin(_D, _delivery_of(_S.c.host_id, offset))
                    .where(in_window, _D.c.id.is_(None))
                )
                for space_id, created_at, starts_at, manual in hosts:
                    if (host_offset or (offset == 0 and manual)) and (
                        as_utc(created_at) <= as_utc(starts_at) - shift + _EARLY
                    ):
                        found.add(Due(space_id, offset))
        return sorted(found, key=lambda due: (-due.offset, due.space_id))


_D = SQLModel.metadata.tables[ReminderDelivery.__tablename__]
_COLUMNS = [
    "space_id",
    "identity_id",
    "offset_minutes",
    "starts_at",
    "role",
    "due_at",
    "delivered_at",
]
_R = SQLModel.metadata.tables[Reminder.__tablename__]
_S = SQLModel.metadata.tables[Space.__tablename__]
_C = SQLModel.metadata.tables[SpaceCohost.__tablename__]


def _row(
    space_id: Any,
    identity_id: Any,
    role: str,
    *,
    offset: int,
    starts_at: datetime,
    due: datetime,
    now: datetime,
) -> list[Any]:
    """The SELECT list that fills `_COLUMNS` of one delivery row."""
    return [
        space_id,
        identity_id,
        sa.literal(offset),
        sa.literal(starts_at, UTCDateTime()),
        sa.literal(role),
        sa.literal(due, UTCDateTime()),
        sa.literal(now, UTCDateTime()),
    ]


def _delivery_of(who: Any, offset: int) -> Any:
    """Join condition: the delivery row of `who` for a Space's current start."""
    return sa.and_(
        _D.c.space_id == _S.c.id,
        _D.c.identity_id == who,
        _D.c.offset_minutes == offset,
        _D.c.starts_at == _S.c.starts_at,
    )


def _zone(person: Identity) -> ZoneInfo:
    try:
        return ZoneInfo(person.tz)
    except Exception:
        return ZoneInfo("UTC")
