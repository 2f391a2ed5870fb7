"""The claim batcher: ticket claims decided in batches, one transaction per batch.

Every claim waits in one queue; a single owned task takes everything that is waiting,
opens ONE write transaction, locks the Spaces involved (`BEGIN IMMEDIATE` on SQLite,
`SELECT ... FOR UPDATE` on PostgreSQL), decides each claim in arrival order against the
seats, the buyer's quota and the buyer's open holds it reads under that lock, writes the
holds, tickets and quotas in bulk, and moves `sold` (free Spaces: tickets) or `held` (paid
Spaces: seats waiting for payment) with ONE conditional `UPDATE ... WHERE sold + held + n
<= capacity RETURNING` per Space — the guard that makes overselling impossible even if the
decision above were wrong. A burst of claims therefore costs a handful of statements, not a
handful per claim (group commit); correctness across processes rests on the row lock and
the guard, never on this process being the only writer.

No seat hoarding: a buyer may have at most `max_open_holds` unpaid holds open across
Spaces. Racing claims by one buyer (other Spaces, other processes) are serialised by a
lock on the buyer's identity row (`FOR UPDATE` on PostgreSQL; SQLite has one writer), taken
after the Spaces' rows, both in id order, so the count read under it stays true. Only
buyers claiming paid seats are counted (a batch of free claims costs nothing more). A
buyer whose unpaid hold on a Space lapsed waits `lapse_cooldown_minutes` before holding
seats of that Space again, so the same accounts cannot keep a Space held hold after hold.

A claim through an invite link takes the link's use the same way
(`bot.services.invites.take`); an invite-only Space takes no other claims.

A claim with a promo code takes the code's uses in the same transaction
(`bot.services.promos.redeem`, one conditional UPDATE), after every other rule has let it
through; its hold costs the discounted price, and a 100% code makes free tickets at once.
A claim carrying both is all or nothing: a code refused after the invite's use was taken
puts that use back in the same transaction.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from bot.actors import Actor
from bot.batching import GroupCommit
from bot.clock import Clock, as_utc
from bot.commands.times import format_delta
from bot.db import Database, table_of
from bot.errors import Conflict, LimitExceeded, NotFound, SoldOut, UserError
from bot.models import (
    BuyerQuota,
    Hold,
    HoldStatus,
    Identity,
    InviteRedemption,
    PromoRedemption,
    Space,
    Ticket,
    TicketStatus,
    Visibility,
    WaitlistEntry,
    WaitlistStatus,
)
from bot.services import communities, invites, promos, refusals
from bot.services.identities import IdentityService

log = structlog.get_logger(__name__)
_WAITLIST = table_of(WaitlistEntry)

#: The capacity rule, the one place it is written: seats move only if they fit. `:sold`
#: seats become tickets, `:held` seats wait for payment.
TAKE_SEATS = sa.text(
    """
    UPDATE spaces SET sold = sold + :sold, held = held + :held
    WHERE id = :space_id AND status IN ('scheduled', 'live')
      AND sold + held + :sold + :held <= capacity
    RETURNING sold
    """
)
#: A paid hold's seats become tickets (no seat is taken or freed).
SELL_HELD = sa.text("UPDATE spaces SET held = held - :n, sold = sold + :n WHERE id = :space_id")
#: A hold that lapsed or was released gives its seats back.
FREE_HELD = sa.text("UPDATE spaces SET held = held - :n WHERE id = :space_id")
#: A refunded or revoked ticket gives its seat back.
FREE_SOLD = sa.text("UPDATE spaces SET sold = sold - :n WHERE id = :space_id")
ADD_QUOTA = sa.text(
    """
    INSERT INTO buyer_quotas (space_id, buyer_id, taken) VALUES (:space_id, :buyer_id, :n)
    ON CONFLICT (space_id, buyer_id) DO UPDATE SET taken = buyer_quotas.taken + excluded.taken
    """
)


async def waiting_counts(conn: AsyncConnection, space_ids: list[int]) -> dict[int, int]:
    """How many people wait in line for each of `space_ids` (absent: none)."""
    rows = await conn.execute(
        sa.select(_WAITLIST.c.space_id, sa.func.count())
        .where(
            _WAITLIST.c.space_id.in_(space_ids),
            _WAITLIST.c.status == WaitlistStatus.WAITING.value,
        )
        .group_by(_WAITLIST.c.space_id)
    )
    return {space_id: n for space_id, n in rows}


def _waitlisted(space: Space | None, waiting: int) -> UserError | None:
    """While people wait in line, a seat that comes back is theirs (`bot.services.waitlist`)."""
    if space is None or not waiting:
        return None
    return SoldOut(
        f"{waiting} {'person is' if waiting == 1 else 'people are'} on the waitlist of "
        f"Space #{space.id}; seats that come back go to them first. "
        f"Join the line with /ticket waitlist {space.id}."
    )


def _paid(space: Space | None) -> bool:
    return space is not None and not space.is_free


def new_id() -> str:
    return secrets.token_hex(8)


def new_tickets(hold: Hold, now: datetime, *, fee_minor: int = 0) -> list[Ticket]:
    """The valid tickets a hold becomes: its amount and fee shared equally."""
    return [
        Ticket(
            id=new_id(),
            space_id=hold.space_id,
            holder_id=hold.buyer_id,
            hold_id=hold.id,
            status=TicketStatus.VALID,
            price_minor=hold.amount_minor // hold.quantity,
            fee_minor=fee_minor // hold.quantity,
            currency=hold.currency,
            issued_at=now,
        )
        for _ in range(hold.quantity)
    ]


@dataclass(frozen=True, slots=True)
class Granted:
    """A successful claim: the Space as read under the lock, the hold, free tickets."""

    space: Space
    hold: Hold
    tickets: list[Ticket]


@dataclass(slots=True)
class _OpenHolds:
    """A buyer's unpaid holds as read under their lock: how many, the first to lapse."""

    count: int = 0
    first_lapse: datetime | None = None
    #: Spaces this buyer let a hold lapse on lately, and when each may be held again
    cooling: dict[int, datetime] = field(default_factory=dict)


@dataclass(slots=True)
class _Claim:
    space_id: int
    buyer: Actor
    quantity: int
    code: str | None = None  # a promo code, upper case
    invite: str | None = None  # an invite link's id (its token already verified)
    buyer_id: int = 0  # resolved inside the batch


class ClaimBatcher:
    """Batches seat claims into group commits: every claim waiting is decided in one write
    transaction (see the module docstring). `close()` stops its owned task."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        identities: IdentityService,
        hold_minutes: int,
        max_open_holds: int = 0,
        lapse_cooldown_minutes: int = 0,
        max_batch: int = 500,
    ) -> None:
        self.db = db
        self.identities = identities
        self.clock = clock
        self.hold_minutes = hold_minutes
        self.max_open_holds = max_open_holds  # 0: no cap
        self.lapse_cooldown = timedelta(minutes=lapse_cooldown_minutes)  # 0: none
        self.commits: GroupCommit[_Claim, Granted] = GroupCommit(
            "claim-batcher", self._decide, max_batch=max_batch
        )

    async def claim(
        self,
        space_id: int,
        buyer: Actor,
        quantity: int,
        code: str | None = None,
        invite: str | None = None,
    ) -> Granted:
        """Seats for one buyer (at a promo `code`'s price, through an `invite` link), or
        the `UserError` saying why not."""
        return await self.commits.submit(_Claim(space_id, buyer, quantity, code, invite))

    async def close(self) -> None:
        await self.commits.close()

    async def _decide(self, claims: list[_Claim]) -> list[Granted | Exception]:
        now = self.clock.now()
        expires = now + timedelta(minutes=self.hold_minutes)
        outcomes: list[Granted | Exception] = [Conflict("not decided")] * len(claims)
        by_space: dict[int, list[int]] = defaultdict(list)
        for index, claim in enumerate(claims):
            by_space[claim.space_id].append(index)
        async with self.db.write() as session:
            conn = await session.connection()
            ids = await self.identities.resolve_many(conn, [c.buyer for c in claims])
            for claim in claims:
                claim.buyer_id = ids[claim.buyer.key]
            query = select(Space).where(col(Space.id).in_(sorted(by_space))).order_by(col(Space.id))
            if not self.db.is_sqlite:
                query = query.with_for_update()
            spaces = {s.id: s for s in await session.exec(query)}
            waiting = await waiting_counts(conn, sorted(by_space))
            shared = await communities.shares(conn, sorted(by_space))
            paying = {c.buyer_id for c in claims if _paid(spaces.get(c.space_id))}
            open_holds = await self._open_holds(conn, paying, now)
            holds: list[dict[str, object]] = []
            tickets: list[dict[str, object]] = []
            redemptions: list[dict[str, object]] = []
            invited: list[dict[str, object]] = []
            granted: dict[int, tuple[Hold, list[Ticket]]] = {}
            for space_id, indexes in by_space.items():
                space = spaces.get(space_id)
                buyers = {claims[i].buyer_id for i in indexes}
                quotas = {
                    q.buyer_id: q.taken
                    for q in await session.exec(
                        select(BuyerQuota).where(
                            BuyerQuota.space_id == space_id, col(BuyerQuota.buyer_id).in_(buyers)
                        )
                    )
                }
                seats = space.taken if space else 0
                sold = 0  # seats that become tickets now (free, or a 100% code)
                deltas: dict[int, int] = defaultdict(int)
                for i in indexes:
                    claim = claims[i]
                    mine = open_holds[claim.buyer_id]
                    refusal = (
                        self._refuse(space, claim, quotas.get(claim.buyer_id, 0), seats, shared)
                        or _waitlisted(space, waiting.get(space_id, 0))
                        or self._hoarding(space, mine, now)
                    )
                    if refusal is not None:
                        outcomes[i] = refusal
                        continue
                    assert space is not None
                    unit = space.price_minor
                    if claim.invite is not None:
                        refused = await invites.take(conn, space, claim.invite, claim.quantity)
                        if refused is not None:
                            outcomes[i] = refused
                            continue
                    redeemed = None
                    if claim.code is not None:
                        result = await promos.redeem(conn, space, claim.code, claim.quantity, now)
                        if isinstance(result, UserError):
                            if claim.invite is not None:  # all or nothing: no use is lost
                                await invites.put_back(conn, claim.invite, claim.quantity)
                            outcomes[i] = result
                            continue
                        redeemed, unit = result, result.unit_minor
                    seats += claim.quantity
                    if unit:
                        mine.count += 1
                        mine.first_lapse = mine.first_lapse or expires
                    else:
                        sold += claim.quantity
                    quotas[claim.buyer_id] = quotas.get(claim.buyer_id, 0) + claim.quantity
                    deltas[claim.buyer_id] += claim.quantity
                    hold, issued = self._grant(space, claim, now, expires, unit)
                    holds.append(hold.model_dump())
                    if redeemed is not None:
                        redemptions.append(
                            {
                                "hold_id": hold.id,
                                "promo_id": redeemed.promo_id,
                                "quantity": claim.quantity,
                            }
                        )
                    if claim.invite is not None:
                        invited.append(
                            {
                                "hold_id": hold.id,
                                "invite_id": claim.invite,
                                "quantity": claim.quantity,
                            }
                        )
                    tickets.extend(t.model_dump() for t in issued)
                    granted[i] = (hold, issued)
                if not deltas:
                    continue
                assert space is not None
                await conn.execute(
                    ADD_QUOTA,
                    [
                        {"space_id": space_id, "buyer_id": b, "n": n}
                        for b, n in sorted(deltas.items())  # one lock order everywhere
                    ],
                )
                taken = seats - space.taken
                held = taken - sold
                move = {"space_id": space_id, "sold": sold, "held": held}
                if (await conn.execute(TAKE_SEATS, move)).first() is None:
                    # Impossible while the lock holds; refuse the batch rather than oversell.
                    log.error("seat guard refused a locked batch", space_id=space_id, n=taken)
                    raise Conflict("Tickets changed hands just now; please try again.")
                # a detached snapshot: the ORM object must not flush an absolute `sold`
                snapshot = Space.model_validate(
                    {**space.model_dump(), "sold": space.sold + sold, "held": space.held + held}
                )
                for i, (hold, issued) in granted.items():
                    if claims[i].space_id == space_id:
                        outcomes[i] = Granted(snapshot, hold, issued)
            if holds:
                await conn.execute(sa.insert(Hold), holds)
            if tickets:
                await conn.execute(sa.insert(Ticket), tickets)
            if redemptions:
                await conn.execute(sa.insert(PromoRedemption), redemptions)
            if invited:
                await conn.execute(sa.insert(InviteRedemption), invited)
        self.identities.remember(ids)
        return outcomes

    async def _open_holds(
        self, conn: AsyncConnection, buyer_ids: set[int], now: datetime
    ) -> defaultdict[int, _OpenHolds]:
        """Each buyer's unpaid holds, read under a lock on the buyer (so a claim racing in
        another process waits for this batch and then counts what it made)."""
        found: defaultdict[int, _OpenHolds] = defaultdict(_OpenHolds)
        if not (self.max_open_holds or self.lapse_cooldown) or not buyer_ids:
            return found
        ordered = sorted(buyer_ids)
        if not self.db.is_sqlite:
            identities = table_of(Identity)
            await conn.execute(
                sa.select(identities.c.id)
                .where(identities.c.id.in_(ordered))
                .order_by(identities.c.id)
                .with_for_update()
            )
        holds = table_of(Hold)
        rows = await conn.execute(
            sa.select(holds.c.buyer_id, sa.func.count(), sa.func.min(holds.c.expires_at))
            .where(
                holds.c.buyer_id.in_(ordered),
                holds.c.status == HoldStatus.ACTIVE.value,
                holds.c.expires_at > now,
            )
            .group_by(holds.c.buyer_id)
        )
        for buyer_id, count, first in rows:
            found[buyer_id] = _OpenHolds(count, first)
        if self.lapse_cooldown:
            lapsed = await conn.execute(
                sa.select(holds.c.buyer_id, holds.c.space_id, sa.func.max(holds.c.expires_at))
                .where(
                    holds.c.buyer_id.in_(ordered),
                    holds.c.status == HoldStatus.EXPIRED.value,
                    holds.c.expires_at > now - self.lapse_cooldown,
                )
                .group_by(holds.c.buyer_id, holds.c.space_id)
            )
            for buyer_id, space_id, last in lapsed:
                found[buyer_id].cooling[space_id] = as_utc(last) + self.lapse_cooldown
        return found

    def _hoarding(self, space: Space | None, mine: _OpenHolds, now: datetime) -> UserError | None:
        """The open-holds cap and the lapse cool-down: paid Spaces only (a free claim
        leaves no hold open)."""
        if space is None or space.is_free:
            return None
        again = mine.cooling.get(space.id or 0)
        if again is not None and again > now:
            return LimitExceeded(
                f"Your last hold on Space #{space.id} lapsed unpaid, so its seats went back to "
                f"other buyers. You can hold seats of it again in {format_delta(again - now)}."
            )
        if not self.max_open_holds or mine.count < self.max_open_holds:
            return None
        cap = self.max_open_holds
        lapse = (
            f" The first lapses in {format_delta(mine.first_lapse - now)}."
            if mine.first_lapse is not None
            else ""
        )
        return LimitExceeded(
            f"You have {cap} unpaid ticket hold{'s' if cap > 1 else ''} open, the most allowed. "
            f"Pay for one (or let it lapse) before holding more.{lapse}"
        )

    @staticmethod
    def _refuse(
        space: Space | None, claim: _Claim, taken: int, seats: int, shared: set[tuple[int, str]]
    ) -> UserError | None:
        if space is None or not communities.shown_here(space, claim.buyer.community_id, shared):
            return NotFound(f"There is no Space #{claim.space_id} here.")
        if space.visibility == Visibility.INVITE and claim.invite is None:
            return NotFound(
                f"Space #{claim.space_id} is invite-only: ask its host for an invite link."
            )
        if space.host_id == claim.buyer_id:
            return Conflict("You are the host of this Space; you don't need a ticket.")
        if not space.status.is_open_for_sale:
            return refusals.not_on_sale(space)
        limit = space.per_buyer_limit
        if taken + claim.quantity > limit:
            return refusals.buyer_limit(space)
        left = space.capacity - seats
        if left <= 0:
            if (space.held if space.is_free else seats - space.sold) > 0:
                return SoldOut(
                    f"Every seat of Space #{space.id} is sold or held for a buyer who has not "
                    "paid yet. Held seats come back if unpaid: join the waitlist with "
                    f"/ticket waitlist {space.id}."
                )
            return SoldOut(
                f"Space #{space.id} is sold out. Join the waitlist: /ticket waitlist {space.id}."
            )
        if claim.quantity > left:
            return SoldOut(f"Only {left} tickets are left for Space #{space.id}.")
        return None

    @staticmethod
    def _grant(
        space: Space, claim: _Claim, now: datetime, expires: datetime, unit_minor: int
    ) -> tuple[Hold, list[Ticket]]:
        """The hold at `unit_minor` a ticket (a promo code's price, or the Space's); a
        hold that costs nothing is confirmed at once and becomes its tickets."""
        assert space.id is not None
        free = unit_minor == 0
        hold = Hold(
            id=new_id(),
            space_id=space.id,
            buyer_id=claim.buyer_id,
            quantity=claim.quantity,
            amount_minor=unit_minor * claim.quantity,
            currency=space.currency,
            status=HoldStatus.CONFIRMED if free else HoldStatus.ACTIVE,
            expires_at=expires,
            created_at=now,
            resolved_at=now if free else None,
        )
        tickets = new_tickets(hold, now) if free else []
        return hold, tickets
