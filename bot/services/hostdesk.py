"""The host's desk: a Space's holders, sales and refunds, for its host, co-hosts and
moderators — on the web (`/spaces/{id}/manage`) and in chat (`/space tickets`).

Reached by a desk link: a signed token of kind "desk" naming one Space and one identity,
good for `DESK_LINK_TTL`. Rights are re-read on every request (`admit`): a co-host
removed since the link was sent is refused. A moderator's platform rights cannot be
re-read from the web, so a moderator's link stands on its signature until it expires
(an hour), as the room's staff pass does.

`sheet` answers every row and total in a fixed handful of queries, whatever the size.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from bot.actors import Actor
from bot.errors import NotFound, PermissionDenied
from bot.models import (
    AuditEntry,
    Hold,
    HoldStatus,
    Identity,
    Space,
    SpaceStatus,
    Ticket,
    TicketStatus,
)
from bot.permissions import Action, SpaceRole, allowed, require, staff_role
from bot.ports import Recording
from bot.refund_policy import check_refund_window, policy_text
from bot.services import audit, refusals
from bot.services.links import LinkService
from bot.services.waitlist import Line
from bot.tokens import DESK_KIND, InvalidToken, TicketClaims

DESK_LINK_TTL = timedelta(hours=1)
LISTENERS_ACTION = "room.listeners"
"""The audit log's entry for a listener count the room reported (details: ``count``)."""


class EntryStatus(enum.StrEnum):
    PAID = "paid"
    FREE = "free"
    PENDING = "pending hold"
    REFUNDED = "refunded"
    VOIDED = "voided"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class DeskRow:
    """One ticket (quantity 1) or one pending hold (its seats) of a Space."""

    ref: str  # the ticket id, or the hold's id
    holder: Identity
    status: EntryStatus
    quantity: int
    amount_minor: int
    fee_minor: int
    at: datetime  # issued, or held
    expires_at: datetime | None = None  # a pending hold's expiry

    @property
    def refundable(self) -> bool:
        return self.status in (EntryStatus.PAID, EntryStatus.FREE, EntryStatus.REMOVED)


@dataclass(frozen=True, slots=True)
class DeskTotals:
    currency: str
    tickets: int  # valid
    held: int  # seats in pending holds
    refunded: int
    gross_minor: int  # valid tickets' prices
    fee_minor: int  # the platform's cut of those
    refunded_minor: int
    tips: int
    tips_minor: int
    tip_fee_minor: int

    @property
    def host_minor(self) -> int:
        """What the host keeps: sales and tips after the platform's cut."""
        return self.gross_minor - self.fee_minor + self.tips_minor - self.tip_fee_minor


@dataclass(frozen=True, slots=True)
class DeskPass:
    """Who opened the desk, for which Space, with which rights (re-read just now)."""

    space: Space
    identity: Identity
    roles: frozenset[SpaceRole]
    token: str

    @property
    def may_refund(self) -> bool:
        return allowed(Action.REFUND, self.roles)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeskSheet:
    space: Space
    rows: list[DeskRow]  # newest first
    totals: DeskTotals
    sales: list[tuple[datetime, int]]  # valid tickets over time, oldest first
    policy: str
    waitlist: Line = field(default_factory=lambda: Line([], []))  # the line, in order
    listeners: list[tuple[datetime, int]] = field(default_factory=list)
    """People listening in the room over the Space, as the room reported them, oldest first."""
    replays: list[Recording] = field(default_factory=list)  # recordings still kept
    replays_until: datetime | None = None  # when holders stop hearing them (after the end)


class HostDeskService(LinkService):
    # --- the link ------------------------------------------------------------------------

    async def link_token(self, actor: Actor, space_id: int) -> str:
        """A desk token for `actor` (host, co-host or moderator of the Space), good for an
        hour; `PermissionDenied` for anyone else."""
        space = await self.spaces.get_in(space_id, actor.community_id)
        roles = await self.spaces.roles(space, actor)
        require(Action.SEE_SALES, roles)
        role = staff_role(roles)
        assert role is not None and space.id is not None
        identity = await self.identities.ensure(actor)
        return self.signer.sign(
            TicketClaims(
                ticket_id=f"desk-{identity.id}",
                space_id=space.id,
                holder_key=str(identity.id),
                role=role.value,
                expires_at=self.clock.now() + DESK_LINK_TTL,
                kind=DESK_KIND,
            )
        )

    async def admit(self, token: str, space_id: int) -> DeskPass:
        """The rights a desk token gives now: `InvalidToken` (forged, expired, another
        Space's), `PermissionDenied` (the rights behind it are gone)."""
        claims = self.signer.verifier.verify(token, now=self.clock.now(), kind=DESK_KIND)
        if claims.space_id != space_id:
            raise InvalidToken("This desk link is for another Space.")
        space = await self.spaces.get(space_id)
        identity = await self.identities.get(int(claims.holder_key))
        roles = {SpaceRole.MEMBER}
        if claims.role == SpaceRole.MODERATOR:
            roles.add(SpaceRole.MODERATOR)
        if identity.id == space.host_id:
            roles.add(SpaceRole.HOST)
        if identity.id in await self.spaces.cohost_ids(space_id):
            roles.add(SpaceRole.COHOST)
        if not allowed(Action.SEE_SALES, frozenset(roles)):
            raise PermissionDenied(
                "Your rights to this Space's desk are gone, so this link no longer works."
            )
        return DeskPass(space, identity, frozenset(roles), token)

    # --- what the desk shows -------------------------------------------------------------

    async def sheet_for(self, actor: Actor, space_id: int, tz: ZoneInfo) -> DeskSheet:
        """The sheet for someone in chat (`/space tickets`), after the same rights check."""
        space = await self.spaces.get_in(space_id, actor.community_id)
        require(Action.SEE_SALES, await self.spaces.roles(space, actor))
        return await self.sheet(space, tz)

    async def sheet(self, space: Space, tz: ZoneInfo) -> DeskSheet:
        """Every ticket and pending hold of `space`, the totals and the sales curve."""
        async with self.db.session() as session:
            tickets = list(
                await session.exec(
                    select(Ticket, Identity)
                    .join(Identity, col(Identity.id) == col(Ticket.holder_id))
                    .where(Ticket.space_id == space.id)
                )
            )
            holds = list(
                await session.exec(
                    select(Hold, Identity)
                    .join(Identity, col(Identity.id) == col(Hold.buyer_id))
                    .where(Hold.space_id == space.id, Hold.status == HoldStatus.ACTIVE.value)
                )
            )
        assert space.id is not None
        tips = await self.payments.tips(space.id)
        valid_holders = {t.holder_id for t, _ in tickets if t.status == TicketStatus.VALID}
        seats = await self.stage.seats(space, sorted(valid_holders))
        rows: list[DeskRow] = []
        events: list[tuple[datetime, int]] = []
        for ticket, holder in tickets:
            events.append((ticket.issued_at, 1))
            if ticket.status == TicketStatus.VALID:
                if seats[ticket.holder_id].removed:
                    status = EntryStatus.REMOVED
                else:
                    status = EntryStatus.PAID if ticket.price_minor else EntryStatus.FREE
            else:
                status = (
                    EntryStatus.REFUNDED
                    if ticket.status == TicketStatus.REFUNDED
                    else EntryStatus.VOIDED
                )
                events.append((ticket.closed_at or ticket.issued_at, -1))
            rows.append(
                DeskRow(
                    ticket.id,
                    holder,
                    status,
                    1,
                    ticket.price_minor,
                    ticket.fee_minor,
                    ticket.issued_at,
                )
            )
        for hold, buyer in holds:
            rows.append(
                DeskRow(
                    hold.id,
                    buyer,
                    EntryStatus.PENDING,
                    hold.quantity,
                    hold.amount_minor,
                    0,
                    hold.created_at,
                    hold.expires_at,
                )
            )
        rows.sort(key=lambda r: (r.at, r.ref), reverse=True)
        valid = [r for r in rows if r.refundable]
        refunded = [r for r in rows if r.status == EntryStatus.REFUNDED]
        totals = DeskTotals(
            currency=space.currency,
            tickets=len(valid),
            held=sum(r.quantity for r in rows if r.status == EntryStatus.PENDING),
            refunded=len(refunded),
            gross_minor=sum(r.amount_minor for r in valid),
            fee_minor=sum(r.fee_minor for r in valid),
            refunded_minor=sum(r.amount_minor for r in refunded),
            tips=tips.count,
            tips_minor=tips.amount_minor,
            tip_fee_minor=tips.fee_minor,
        )
        sales: list[tuple[datetime, int]] = []
        count = 0
        for at, step in sorted(events, key=lambda e: e[0]):
            count += step
            sales.append((at, count))
        line = await self.tickets.waitlist.line(space.id)
        return DeskSheet(
            space=space,
            rows=rows,
            totals=totals,
            sales=sales,
            policy=policy_text(space, self.settings, tz),
            waitlist=line,
            listeners=await self._listeners_until_now(space),
            replays=await self.replays.of_space(space),
            replays_until=self.replays.until(space),
        )

    async def _listeners_until_now(self, space: Space) -> list[tuple[datetime, int]]:
        """`listeners`, the last count carried on to now while the Space is live."""
        assert space.id is not None
        points = await self.listeners(space.id)
        if points and space.status == SpaceStatus.LIVE:
            points.append((self.clock.now(), points[-1][1]))
        return points

    # --- listeners over the Space --------------------------------------------------------

    async def record_listeners(self, space_id: int, count: int) -> None:
        """The room reports how many listen now (it calls on a change, not on every join)."""
        async with self.db.write() as session:
            audit.record(session, self.clock, LISTENERS_ACTION, space_id=space_id, count=count)

    async def listeners(self, space_id: int) -> list[tuple[datetime, int]]:
        """The listener counts the room reported for `space_id`, oldest first."""
        async with self.db.session() as session:
            rows = await session.exec(
                select(AuditEntry.at, AuditEntry.details)
                .where(AuditEntry.space_id == space_id, AuditEntry.action == LISTENERS_ACTION)
                .order_by(col(AuditEntry.at), col(AuditEntry.id))
            )
            return [(at, int(details.get("count", 0))) for at, details in rows]

    # --- refunding -----------------------------------------------------------------------

    async def refund(self, desk: DeskPass, ticket_id: str, tz: ZoneInfo) -> Ticket:
        """Refund one ticket of the desk's Space through the core's refund, within the
        policy; only those allowed to refund (the host)."""
        require(Action.REFUND, desk.roles)
        try:
            ticket = await self.tickets.get(ticket_id)
        except NotFound:
            raise NotFound(f"Space #{desk.space.id} has no ticket {ticket_id}.") from None
        if ticket.space_id != desk.space.id:
            raise NotFound(f"Space #{desk.space.id} has no ticket {ticket_id}.")
        if ticket.status != TicketStatus.VALID:
            raise refusals.ticket_closed(ticket_id, ticket.status.value)
        check_refund_window(desk.space, ticket, self.settings, self.clock.now(), tz)
        await self.tickets.refund(ticket, reason="Refunded by the host.", actor_id=desk.identity.id)
        return await self.tickets.get(ticket_id)

    # --- recordings ----------------------------------------------------------------------

    async def delete_recording(self, desk: DeskPass, number: int) -> None:
        """Delete one recording of the desk's Space (those who may record: host, co-hosts)."""
        require(Action.RECORD, desk.roles)
        await self.replays.delete_part(desk.space, number)
