"""The waitlist: people in line for a sold-out Space, served first come, first served.

A seat that comes back (a hold that lapsed or was released, a refunded ticket, a bigger
capacity) is offered to the next person in line as their own hold, in the SAME write
transaction that freed it (`offer_seats`, called by `TicketService.release` and
`.close`; a capacity edit runs it right after). The offer takes its seat through the
claim batcher's conditional seat update (`claims.TAKE_SEATS`), under the Space's row lock,
so no seat is offered twice and none is oversold. An offer on a paid Space is a hold that
lapses like any other; its lapse frees the seat again, which goes to the next in line.
A free Space's offer is a ticket at once (a free claim is confirmed at once too).

While anyone waits, new buyers are sent to the line (`ClaimBatcher` reads `waiting`), so a
seat between its release and its offer cannot be taken past the people waiting for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.actors import Actor
from bot.db import table_of
from bot.errors import Conflict, NotFound
from bot.events import SpaceUpdated, TicketIssued, WaitlistOffered
from bot.models import (
    BuyerQuota,
    Hold,
    HoldStatus,
    Identity,
    Space,
    Ticket,
    TicketStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from bot.services import refusals
from bot.services.claims import ADD_QUOTA, TAKE_SEATS, new_id, new_tickets, waiting_counts
from bot.services.context import Service, ServiceContext
from bot.services.spaces import SpaceService

log = structlog.get_logger(__name__)

_ENTRIES = table_of(WaitlistEntry)
_SPACES = table_of(Space)
_QUOTAS = table_of(BuyerQuota)


@dataclass(frozen=True, slots=True)
class Offer:
    """A freed seat held for the next in line: the hold, and a free Space's ticket."""

    entry_id: int
    hold: Hold
    tickets: list[Ticket]


@dataclass(frozen=True, slots=True)
class Line:
    """A Space's waitlist as its host sees it: who waits, in order, and open offers."""

    waiting: list[Identity]
    offered: list[tuple[Identity, Hold]]


async def offer_seats(
    conn: AsyncConnection, space_id: int, now: datetime, hold_minutes: int, *, lock: bool
) -> list[Offer]:
    """Offer every free seat of a Space to the next people in line, in the caller's write
    transaction (`lock`: take the Space's row lock, PostgreSQL; SQLite has one writer).

    Each offer is one seat: a hold for one person, made through `TAKE_SEATS`; a person who
    may no longer take a seat (their per-buyer limit is used up) leaves the line."""
    query = sa.select(_SPACES).where(_SPACES.c.id == space_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        return []
    space = Space.model_validate(row._mapping)
    if not space.status.is_open_for_sale:
        return []
    free = space.capacity - space.sold - space.held
    offers: list[Offer] = []
    expires = now + timedelta(minutes=hold_minutes)
    after = 0  # the line is read in `id` order, a batch at a time
    while free > len(offers):
        entries = list(
            await conn.execute(
                sa.select(_ENTRIES.c.id, _ENTRIES.c.identity_id)
                .where(
                    _ENTRIES.c.space_id == space_id,
                    _ENTRIES.c.status == WaitlistStatus.WAITING.value,
                    _ENTRIES.c.id > after,
                )
                .order_by(_ENTRIES.c.id)
                .limit(free - len(offers))
            )
        )
        if not entries:
            break
        quotas: dict[int, int] = dict(
            (
                await conn.execute(
                    sa.select(_QUOTAS.c.buyer_id, _QUOTAS.c.taken).where(
                        _QUOTAS.c.space_id == space_id,
                        _QUOTAS.c.buyer_id.in_([e.identity_id for e in entries]),
                    )
                )
            ).all()
        )
        after = entries[-1].id
        for entry in entries:
            if quotas.get(entry.identity_id, 0) + 1 > space.per_buyer_limit:
                await _set(conn, entry.id, WaitlistStatus.LEFT)
                continue
            offers.append(_offer(space, entry.id, entry.identity_id, now, expires))
    if not offers:
        return []
    sold = sum(1 for o in offers if o.tickets)
    move = {"space_id": space_id, "sold": sold, "held": len(offers) - sold}
    if (await conn.execute(TAKE_SEATS, move)).first() is None:
        # Impossible under the lock; refuse rather than oversell (the caller rolls back).
        log.error("seat guard refused waitlist offers", space_id=space_id, n=len(offers))
        raise Conflict("Tickets changed hands just now; please try again.")
    await conn.execute(sa.insert(Hold), [o.hold.model_dump() for o in offers])
    tickets = [t.model_dump() for o in offers for t in o.tickets]
    if tickets:
        await conn.execute(sa.insert(Ticket), tickets)
    await conn.execute(
        ADD_QUOTA,
        [{"space_id": space_id, "buyer_id": o.hold.buyer_id, "n": 1} for o in offers],
    )
    for offer in offers:
        await conn.execute(
            sa.update(_ENTRIES)
            .where(_ENTRIES.c.id == offer.entry_id)
            .values(status=WaitlistStatus.OFFERED.value, offered_at=now, hold_id=offer.hold.id)
        )
    return offers


def _offer(space: Space, entry_id: int, buyer_id: int, now: datetime, expires: datetime) -> Offer:
    assert space.id is not None
    free = space.is_free
    hold = Hold(
        id=new_id(),
        space_id=space.id,
        buyer_id=buyer_id,
        quantity=1,
        amount_minor=space.price_minor,
        currency=space.currency,
        status=HoldStatus.CONFIRMED if free else HoldStatus.ACTIVE,
        expires_at=expires,
        created_at=now,
        resolved_at=now if free else None,
    )
    return Offer(entry_id, hold, new_tickets(hold, now) if free else [])


async def _set(conn: AsyncConnection, entry_id: int, status: WaitlistStatus) -> None:
    await conn.execute(
        sa.update(_ENTRIES).where(_ENTRIES.c.id == entry_id).values(status=status.value)
    )


class WaitlistService(Service):
    """Joining and leaving the line, the host's view of it, and telling people of offers."""

    def __init__(self, ctx: ServiceContext, spaces: SpaceService) -> None:
        super().__init__(ctx)
        self.spaces = spaces
        ctx.bus.subscribe(SpaceUpdated, self._on_updated)

    async def _on_updated(self, event: SpaceUpdated) -> None:
        """More seats: the line gets them first."""
        for change in event.changes:
            if change.name == "capacity" and int(change.new) > int(change.old):
                await self.offer_free_seats(event.space_id)

    async def join(self, actor: Actor, space_id: int) -> int:
        """Put `actor` in line for a Space with no seat left; returns their place (1 =
        next). Refused when a seat can be bought now or they already have one."""
        space = await self.spaces.get_in(space_id, actor.community_id)
        me = await self.identities.ensure(actor)
        assert me.id is not None
        if me.id == space.host_id:
            raise Conflict("You are the host of this Space; you don't need a ticket.")
        if not space.status.is_open_for_sale:
            raise refusals.not_on_sale(space)
        async with self.db.write() as session:
            conn = await session.connection()
            if await self._has_seat(session, space_id, me.id):
                raise Conflict(
                    f"You already have a ticket (or a seat held) for Space #{space_id}; "
                    "see /ticket show."
                )
            waiting = await self._waiting_entry(session, space_id, me.id)
            if waiting is not None:
                place = await self._place(conn, space_id, waiting)
                raise Conflict(
                    f"You are already on the waitlist of Space #{space_id}, number {place} in line."
                )
            fresh = await session.get(Space, space_id)
            assert fresh is not None
            if fresh.tickets_left > 0 and not (await waiting_counts(conn, [space_id])):
                raise Conflict(
                    f"Space #{space_id} has seats left: get one with /ticket buy {space_id}."
                )
            entry = WaitlistEntry(
                space_id=space_id,
                identity_id=me.id,
                status=WaitlistStatus.WAITING,
                joined_at=self.clock.now(),
            )
            session.add(entry)
            try:
                await session.flush()
            except sa.exc.IntegrityError:
                raise Conflict(f"You are already on the waitlist of Space #{space_id}.") from None
            assert entry.id is not None
            return await self._place(conn, space_id, entry.id)

    async def leave(self, actor: Actor, space_id: int) -> None:
        space = await self.spaces.get_in(space_id, actor.community_id)
        me = await self.identities.ensure(actor)
        assert me.id is not None
        async with self.db.write() as session:
            entry = await self._waiting_entry(session, space_id, me.id)
            if entry is None:
                raise NotFound(f"You are not on the waitlist of Space #{space.id}.")
            await _set(await session.connection(), entry, WaitlistStatus.LEFT)

    async def place_of(self, identity_id: int, space_id: int) -> int | None:
        """Where someone stands in a Space's line (1 = next), or None."""
        async with self.db.session() as session:
            entry = await self._waiting_entry(session, space_id, identity_id)
            if entry is None:
                return None
            return await self._place(await session.connection(), space_id, entry)

    async def line(self, space_id: int) -> Line:
        """Who waits (in order) and whose offer is open: the host's desk and /space info."""
        now = self.clock.now()
        async with self.db.session() as session:
            waiting = await session.exec(
                select(Identity)
                .join(WaitlistEntry, col(WaitlistEntry.identity_id) == Identity.id)
                .where(
                    WaitlistEntry.space_id == space_id,
                    WaitlistEntry.status == WaitlistStatus.WAITING.value,
                )
                .order_by(col(WaitlistEntry.id))
            )
            offered = await session.exec(
                select(Identity, Hold)
                .join(WaitlistEntry, col(WaitlistEntry.identity_id) == Identity.id)
                .join(Hold, col(Hold.id) == WaitlistEntry.hold_id)
                .where(
                    WaitlistEntry.space_id == space_id,
                    WaitlistEntry.status == WaitlistStatus.OFFERED.value,
                    Hold.status == HoldStatus.ACTIVE.value,
                    col(Hold.expires_at) > now,
                )
                .order_by(col(WaitlistEntry.id))
            )
            return Line(list(waiting), [(i, h) for i, h in offered])

    async def offer_free_seats(self, space_id: int) -> list[Offer]:
        """Offer a Space's free seats to its line in a transaction of its own (after a
        capacity increase), and tell each person."""
        async with self.db.write_conn() as conn:
            offers = await offer_seats(
                conn,
                space_id,
                self.clock.now(),
                self.settings.hold_minutes,
                lock=not self.db.is_sqlite,
            )
        await self.tell(offers)
        return offers

    async def tell(self, offers: list[Offer]) -> None:
        """After the offers' transaction: a paid offer opens its checkout and the person
        hears of it (`WaitlistOffered`); a free one is a ticket (`TicketIssued`). A checkout
        that cannot open is logged: the hold lapses and the seat passes on."""
        for offer in offers:
            hold = offer.hold
            space = await self.spaces.get(hold.space_id)
            buyer = await self.identities.get(hold.buyer_id)
            if offer.tickets:
                self.bus.publish(
                    TicketIssued(
                        space_id=hold.space_id,
                        community_id=space.community_id,
                        ticket_ids=tuple(t.id for t in offer.tickets),
                        holder_key=buyer.key,
                        hold_id=hold.id,
                    )
                )
                continue
            url: str | None = None
            try:
                url = (
                    await self.payments.start_checkout(
                        hold=hold, space=space, buyer=buyer, email=None
                    )
                ).url
            except Exception:
                log.exception("waitlist checkout failed", hold_id=hold.id)
            self.bus.publish(
                WaitlistOffered(
                    space_id=hold.space_id,
                    community_id=space.community_id,
                    hold_id=hold.id,
                    buyer_key=buyer.key,
                    expires_at=hold.expires_at,
                    pay_url=url,
                )
            )

    # --- reading helpers -------------------------------------------------------------------

    @staticmethod
    async def _has_seat(session: AsyncSession, space_id: int, identity_id: int) -> bool:
        ticket = await session.exec(
            select(Ticket.id).where(
                Ticket.space_id == space_id,
                Ticket.holder_id == identity_id,
                Ticket.status == TicketStatus.VALID.value,
            )
        )
        if ticket.first() is not None:
            return True
        hold = await session.exec(
            select(Hold.id).where(
                Hold.space_id == space_id,
                Hold.buyer_id == identity_id,
                Hold.status == HoldStatus.ACTIVE.value,
            )
        )
        return hold.first() is not None

    @staticmethod
    async def _waiting_entry(session: AsyncSession, space_id: int, identity_id: int) -> int | None:
        found = await session.exec(
            select(WaitlistEntry.id).where(
                WaitlistEntry.space_id == space_id,
                WaitlistEntry.identity_id == identity_id,
                WaitlistEntry.status == WaitlistStatus.WAITING.value,
            )
        )
        return found.first()

    @staticmethod
    async def _place(conn: AsyncConnection, space_id: int, entry_id: int) -> int:
        row = await conn.execute(
            sa.select(sa.func.count()).where(
                _ENTRIES.c.space_id == space_id,
                _ENTRIES.c.status == WaitlistStatus.WAITING.value,
                _ENTRIES.c.id <= entry_id,
            )
        )
        return int(row.scalar_one())
