"""Holds and tickets: reserve without overselling, confirm, release, close, verify.

The capacity rule lives in ONE conditional statement (`claims.TAKE_SEATS`): read-then-write
counting oversells on SQLite and PostgreSQL alike (DESIGN.md). Claims are decided in
batches by the claim batcher (`bot.services.claims`), which also keeps the per-buyer limit
in `buyer_quotas` and the open-holds cap; claims are rate-limited first (`bot.ratelimits`).
The invariants, checked by the tests: `spaces.sold == valid tickets`, `spaces.held ==
quantity of active holds`, `sold + held <= capacity`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from bot.actors import Actor
from bot.commands.times import format_when
from bot.errors import InvalidInput, NotFound, PermissionDenied
from bot.events import HoldCreated, HoldReleased, TicketClosed, TicketIssued
from bot.models import (
    Hold,
    HoldStatus,
    Identity,
    Platform,
    Space,
    SpaceStatus,
    Ticket,
    TicketStatus,
)
from bot.money import format_minor
from bot.permissions import Action, SpaceRole, require, staff_role
from bot.ports import Checkout, Confirmation, Payment, PaymentRecorder
from bot.ratelimits import ClaimLimits
from bot.refund_policy import check_refund_window
from bot.services import audit, invites, refusals
from bot.services.claims import FREE_HELD, FREE_SOLD, ClaimBatcher
from bot.services.confirmations import ConfirmBatcher
from bot.services.context import Service, ServiceContext
from bot.services.invites import InviteService
from bot.services.promos import give_back, promo_code
from bot.services.spaces import SpaceService
from bot.services.waitlist import Offer, WaitlistService, offer_seats
from bot.tokens import InvalidToken, TicketClaims, TokenSigner

log = structlog.get_logger(__name__)

_GIVE_QUOTA = sa.text(
    "UPDATE buyer_quotas SET taken = taken - :n WHERE space_id = :space_id AND buyer_id = :buyer_id"
)


@dataclass(frozen=True, slots=True)
class Reservation:
    """What `reserve` produced: a hold, and for a free Space the issued tickets."""

    hold: Hold
    space: Space
    tickets: list[Ticket] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    checkout: Checkout | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """A verified token: who it admits to which Space, in which role."""

    claims: TicketClaims
    space: Space
    ticket: Ticket | None


@dataclass(frozen=True, slots=True)
class ClosedTicket:
    """A ticket closed (refunded or revoked) at ``at``, and the event that said so."""

    at: datetime
    event: TicketClosed


ProgressFn = Callable[[int, int], Awaitable[None]]


class TicketService(Service):
    def __init__(self, ctx: ServiceContext, spaces: SpaceService, signer: TokenSigner) -> None:
        super().__init__(ctx)
        self.spaces = spaces
        self.signer = signer
        s = ctx.settings
        self.limits = ClaimLimits(
            ctx.clock,
            per_person=s.claims_per_minute_person,
            per_community=s.claims_per_minute_community,
        )
        self.claims = ClaimBatcher(
            ctx.db,
            ctx.clock,
            ctx.identities,
            s.hold_minutes,
            max_open_holds=s.max_open_holds,
            lapse_cooldown_minutes=s.hold_lapse_cooldown_minutes,
        )
        self.confirmations = ConfirmBatcher(ctx.db, ctx.bus, ctx.clock)
        self.waitlist = WaitlistService(ctx, spaces)
        self.invites = InviteService(ctx, spaces, signer)

    # --- reserving -----------------------------------------------------------------------

    async def reserve(
        self,
        actor: Actor,
        space_id: int,
        quantity: int = 1,
        *,
        code: str | None = None,
        invite: str | None = None,
    ) -> Reservation:
        """Take a hold on `quantity` seats, atomically; free Spaces (and 100% promo codes)
        issue tickets at once. A promo `code` (and an `invite` link, by its id) takes its
        uses in the claim's transaction.

        The seats are decided by the claim batcher (`bot.services.claims`): the one place
        where the capacity, per-buyer and open-holds rules are applied. A claim too fast
        (`bot.ratelimits`) is refused with `RateLimited` before anything is read."""
        if not 1 <= quantity <= self.settings.max_per_buyer:
            raise InvalidInput(
                f"You can buy between 1 and {self.settings.max_per_buyer} tickets at a time.",
                field="quantity",
            )
        if code is not None:
            code = promo_code(code)
        self.limits.admit(actor)
        try:
            granted = await self.claims.claim(space_id, actor, quantity, code, invite)
        except refusals.BuyerLimitReached as exc:
            raise await self.limit_refusal(actor, exc) from None
        hold, space = granted.hold, granted.space
        self.bus.publish(
            HoldCreated(
                space_id=space_id,
                community_id=space.community_id,
                hold_id=hold.id,
                buyer_key=actor.key,
                quantity=quantity,
                expires_at=hold.expires_at,
                actor_key=actor.key,
            )
        )
        if granted.tickets:
            self._issued(space, actor.key, hold.id, granted.tickets)
            tokens = [self.token_for(t, space) for t in granted.tickets]
            return Reservation(hold=hold, space=space, tickets=granted.tickets, tokens=tokens)
        buyer = await self.identities.get(hold.buyer_id)
        try:
            checkout = await self.payments.start_checkout(
                hold=hold, space=space, buyer=buyer, email=actor.email
            )
        except Exception:
            await self.release(hold.id, expired=False)
            raise
        return Reservation(hold=hold, space=space, checkout=checkout)

    async def limit_refusal(
        self, actor: Actor, refusal: refusals.BuyerLimitReached
    ) -> refusals.BuyerLimitReached:
        """The per-buyer limit refusal, saying what the buyer already holds: their
        tickets' ids and their pending holds (with the pay link of the first)."""
        me = await self.identities.ensure(actor)
        assert me.id is not None
        tickets = await self.tickets_of(me.id, refusal.space_id)
        holds = await self.pending_holds(me.id, refusal.space_id)
        have = [f"ticket {t.id}" for t in tickets]
        pay_url = None
        for hold in holds:
            paid = format_minor(hold.amount_minor, hold.currency)
            have.append(
                f"{hold.quantity} seat(s) held for you, awaiting payment of {paid} until "
                f"{format_when(hold.expires_at, ZoneInfo(me.tz))}"
            )
            pay_url = pay_url or await self.payments.pay_link(hold)
        if not have:
            return refusal
        limit = refusal.limit
        text = (
            f"You can have at most {limit} ticket{'s' if limit > 1 else ''} for Space "
            f"#{refusal.space_id}, and you already have {'; '.join(have)}."
        )
        if holds:
            text += " Pay for it to keep your seats" + (f": {pay_url}" if pay_url else ".")
        else:
            text += f" See them with /ticket show {refusal.space_id}."
        return refusals.BuyerLimitReached(
            text, space_id=refusal.space_id, limit=limit, pay_url=pay_url
        )

    def _issued(self, space: Space, holder_key: str, hold_id: str, tickets: list[Ticket]) -> None:
        assert space.id is not None
        self.bus.publish(
            TicketIssued(
                space_id=space.id,
                community_id=space.community_id,
                ticket_ids=tuple(t.id for t in tickets),
                holder_key=holder_key,
                hold_id=hold_id,
            )
        )

    # --- confirming and releasing --------------------------------------------------------

    async def confirm(
        self,
        hold_id: str,
        *,
        fee_minor: int = 0,
        reference: str = "",
        recorder: PaymentRecorder | None = None,
        record: object = None,
    ) -> Confirmation:
        """Turn a paid hold into tickets. Idempotent: a second call returns the same
        tickets. A hold that expired meanwhile takes its seats again if any are left;
        otherwise `sold_out_late` tells the caller to refund.

        Confirmations are decided in batches by the confirm batcher
        (`bot.services.confirmations`); `recorder` keeps the gateway's own records of the
        payment (`record`) in the same transaction (see `PaymentRecorder`)."""
        return await self.confirmations.confirm(
            Payment(hold_id, fee_minor, reference, recorder=recorder, record=record)
        )

    async def redeem(
        self,
        actor: Actor,
        token: str,
        quantity: int = 1,
        *,
        space_id: int | None = None,
        code: str | None = None,
    ) -> Reservation:
        """A ticket through an invite (`/ticket redeem TOKEN`, the API's `invite`, the
        invite page): the token is checked first (for `space_id` when given), then it is a
        claim like any other, taking one of the invite's uses per ticket (and a promo
        `code`'s, all or nothing)."""
        claims = self.invites.read(token, self.clock.now())
        if space_id is not None and claims.space_id != space_id:
            raise InvalidToken(f"This invite is for another Space than #{space_id}.")
        return await self.reserve(
            actor, claims.space_id, quantity, code=code, invite=claims.ticket_id
        )

    async def release(self, hold_id: str, *, expired: bool) -> bool:
        """Give an active hold's seats (and its promo code's uses) back. False when it was
        no longer active."""
        status = HoldStatus.EXPIRED if expired else HoldStatus.RELEASED
        async with self.db.write_conn() as conn:
            row = (
                await conn.execute(
                    sa.update(Hold)
                    .where(col(Hold.id) == hold_id, col(Hold.status) == HoldStatus.ACTIVE.value)
                    .values(status=status.value, resolved_at=self.clock.now())
                    .returning(col(Hold.space_id), col(Hold.buyer_id), col(Hold.quantity))
                )
            ).first()
            if row is None:
                return False
            params = {"space_id": row.space_id, "buyer_id": row.buyer_id, "n": row.quantity}
            await conn.execute(FREE_HELD, params)
            await conn.execute(_GIVE_QUOTA, params)
            await give_back(conn, hold_id)
            await invites.give_back(conn, hold_id)
            offers = await self._offer(conn, row.space_id)
        space = await self.spaces.get(row.space_id)
        buyer = await self.identities.get(row.buyer_id)
        self.bus.publish(
            HoldReleased(
                space_id=row.space_id,
                community_id=space.community_id,
                hold_id=hold_id,
                buyer_key=buyer.key,
                quantity=row.quantity,
                expired=expired,
            )
        )
        await self.waitlist.tell(offers)
        return True

    async def _offer(self, conn: AsyncConnection, space_id: int) -> list[Offer]:
        """The seats just freed go to the Space's waitlist, in the freeing transaction."""
        return await offer_seats(
            conn, space_id, self.clock.now(), self.settings.hold_minutes, lock=False
        )

    async def expire_holds(self) -> int:
        """Release every active hold past its expiry; returns how many."""
        async with self.db.session() as session:
            ids = list(
                await session.exec(
                    select(Hold.id).where(
                        Hold.status == HoldStatus.ACTIVE.value,
                        col(Hold.expires_at) <= self.clock.now(),
                    )
                )
            )
        released = 0
        for hold_id in ids:
            released += await self.release(hold_id, expired=True)
        return released

    # --- closing tickets -----------------------------------------------------------------

    async def close(
        self, ticket_id: str, *, refunded: bool, reason: str, actor_id: int | None = None
    ) -> bool:
        """Mark a valid ticket refunded or revoked and free its seat. Idempotent."""
        status = TicketStatus.REFUNDED if refunded else TicketStatus.REVOKED
        async with self.db.write_conn() as conn:
            row = (
                await conn.execute(
                    sa.update(Ticket)
                    .where(
                        col(Ticket.id) == ticket_id, col(Ticket.status) == TicketStatus.VALID.value
                    )
                    .values(status=status.value, closed_at=self.clock.now(), close_reason=reason)
                    .returning(col(Ticket.space_id), col(Ticket.holder_id))
                )
            ).first()
            if row is None:
                return False
            params = {"space_id": row.space_id, "buyer_id": row.holder_id, "n": 1}
            await conn.execute(FREE_SOLD, params)
            await conn.execute(_GIVE_QUOTA, params)
            offers = await self._offer(conn, row.space_id)
        async with self.db.write() as session:
            audit.record(
                session,
                self.clock,
                "ticket.refunded" if refunded else "ticket.revoked",
                actor_id=actor_id,
                space_id=row.space_id,
                subject=ticket_id,
                reason=reason,
            )
        space = await self.spaces.get(row.space_id)
        holder = await self.identities.get(row.holder_id)
        self.bus.publish(
            TicketClosed(
                space_id=row.space_id,
                community_id=space.community_id,
                ticket_id=ticket_id,
                holder_key=holder.key,
                refunded=refunded,
                reason=reason,
            )
        )
        await self.waitlist.tell(offers)
        return True

    async def closed_since(
        self, since: datetime | None, *, platform: Platform
    ) -> list[ClosedTicket]:
        """The tickets closed after ``since`` (all, with None) whose holders are on
        ``platform``, in Spaces not over yet, oldest first, each with the `TicketClosed`
        event its closing published: a process that did not see the events (another process
        closed the tickets: the Stripe webhook on a web worker) catches up from the
        database."""
        query = (
            select(Ticket, Identity, col(Space.community_id))
            .join(Identity, col(Identity.id) == Ticket.holder_id)
            .join(Space, col(Space.id) == Ticket.space_id)
            .where(
                col(Ticket.closed_at).is_not(None),
                col(Identity.platform) == platform.value,
                col(Space.status).not_in([s.value for s in SpaceStatus if s.is_final]),
            )
            .order_by(col(Ticket.closed_at))
        )
        if since is not None:
            query = query.where(col(Ticket.closed_at) > since)
        async with self.db.session() as session:
            rows = (await session.exec(query)).all()
        return [
            ClosedTicket(
                ticket.closed_at,
                TicketClosed(
                    space_id=ticket.space_id,
                    community_id=community_id,
                    ticket_id=ticket.id,
                    holder_key=holder.key,
                    refunded=ticket.status == TicketStatus.REFUNDED,
                    reason=ticket.close_reason or "",
                ),
            )
            for ticket, holder, community_id in rows
            if ticket.closed_at is not None
        ]

    async def refund(self, ticket: Ticket, *, reason: str, actor_id: int | None = None) -> bool:
        """Refund through the gateway (paid tickets) or revoke (free ones), once."""
        if ticket.status != TicketStatus.VALID:
            return False
        if ticket.price_minor > 0:
            await self.payments.refund(ticket, reason=reason)
            return await self.close(ticket.id, refunded=True, reason=reason, actor_id=actor_id)
        return await self.close(ticket.id, refunded=False, reason=reason, actor_id=actor_id)

    async def cancel_space(
        self,
        actor: Actor | None,
        space_id: int,
        reason: str = "",
        progress: ProgressFn | None = None,
        *,
        confirm_live: bool = False,
    ) -> tuple[int, int]:
        """Cancel a Space, release its holds and refund every valid ticket exactly once
        (a live one only with `confirm_live`: it ends, and everyone is refunded).

        Returns (closed, failed). A refund that fails is logged and left valid, so the
        next run (or billing's reconciliation) finishes it; it is never done twice."""
        space = await self.spaces.mark_cancelled(actor, space_id, reason, confirm_live=confirm_live)
        return await self.close_all(
            space, reason=reason or "The Space was cancelled.", progress=progress
        )

    async def close_all(
        self, space: Space, *, reason: str, progress: ProgressFn | None = None
    ) -> tuple[int, int]:
        async with self.db.session() as session:
            holds = list(
                await session.exec(
                    select(Hold.id).where(
                        Hold.space_id == space.id, Hold.status == HoldStatus.ACTIVE.value
                    )
                )
            )
            tickets = list(
                await session.exec(
                    select(Ticket).where(
                        Ticket.space_id == space.id, Ticket.status == TicketStatus.VALID.value
                    )
                )
            )
        for hold_id in holds:
            await self.release(hold_id, expired=False)
        done = failed = 0
        for ticket in tickets:
            try:
                await self.refund(ticket, reason=reason)
                done += 1
            except Exception:
                failed += 1
                log.exception("refund failed", ticket_id=ticket.id, space_id=space.id)
            if progress is not None:
                await progress(done + failed, len(tickets))
        return done, failed

    async def refund_one(self, actor: Actor, ticket_id: str) -> Ticket:
        """`/ticket refund`: the holder refunds their own ticket, or the host refunds one
        of their Space's; both within the refund policy (`bot.refund_policy`)."""
        ticket = await self.get(ticket_id)
        space = await self.spaces.get_in(ticket.space_id, actor.community_id)
        me = await self.identities.ensure(actor)
        if ticket.holder_id == me.id:
            return await self.refund_own(me, ticket)
        require(Action.REFUND, await self.spaces.roles(space, actor))
        if ticket.status != TicketStatus.VALID:
            raise refusals.ticket_closed(ticket_id, ticket.status.value)
        check_refund_window(space, ticket, self.settings, self.clock.now(), ZoneInfo(me.tz))
        await self.refund(ticket, reason="Refunded by the host.", actor_id=me.id)
        return await self.get(ticket_id)

    async def refund_own(self, holder: Identity, ticket: Ticket) -> Ticket:
        """The holder refunds (a free ticket: gives back) their own ticket, within the
        host's refund policy; past it they are told when it closed and to ask the host.
        Chat (`/ticket refund`) and the manage-my-ticket page both come here."""
        if ticket.holder_id != holder.id:
            raise PermissionDenied("This is not your ticket.")
        if ticket.status != TicketStatus.VALID:
            raise refusals.ticket_closed(ticket.id, ticket.status.value)
        space = await self.spaces.get(ticket.space_id)
        check_refund_window(
            space, ticket, self.settings, self.clock.now(), ZoneInfo(holder.tz), holder=True
        )
        await self.refund(ticket, reason="Refunded at your request.", actor_id=holder.id)
        return await self.get(ticket.id)

    # --- reading -------------------------------------------------------------------------

    async def get(self, ticket_id: str) -> Ticket:
        async with self.db.session() as session:
            ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            raise NotFound(f"There is no ticket {ticket_id}.")
        return ticket

    async def tickets_of(
        self, holder_id: int, space_id: int | None = None, *, valid_only: bool = True
    ) -> list[Ticket]:
        query = select(Ticket).where(Ticket.holder_id == holder_id).order_by(col(Ticket.issued_at))
        if space_id is not None:
            query = query.where(Ticket.space_id == space_id)
        if valid_only:
            query = query.where(Ticket.status == TicketStatus.VALID.value)
        async with self.db.session() as session:
            return list(await session.exec(query))

    async def pending_holds(self, buyer_id: int, space_id: int | None = None) -> list[Hold]:
        """`buyer_id`'s active holds (seats held, awaiting payment), soonest to lapse first."""
        query = (
            select(Hold)
            .where(
                Hold.buyer_id == buyer_id,
                Hold.status == HoldStatus.ACTIVE.value,
                col(Hold.expires_at) > self.clock.now(),
            )
            .order_by(col(Hold.expires_at))
        )
        if space_id is not None:
            query = query.where(Hold.space_id == space_id)
        async with self.db.session() as session:
            return list(await session.exec(query))

    async def holders(self, space_id: int) -> list[Identity]:
        """Everyone holding a valid ticket for a Space, once each (whom its changes concern)."""
        async with self.db.session() as session:
            rows = await session.exec(
                select(Identity)
                .where(
                    col(Identity.id).in_(
                        select(Ticket.holder_id).where(
                            Ticket.space_id == space_id,
                            Ticket.status == TicketStatus.VALID.value,
                        )
                    )
                )
                .order_by(col(Identity.id))
            )
            return list(rows)

    async def get_hold(self, hold_id: str) -> Hold:
        async with self.db.session() as session:
            hold = await session.get(Hold, hold_id)
        if hold is None:
            raise NotFound(f"There is no hold {hold_id}.")
        return hold

    # --- tokens --------------------------------------------------------------------------

    def token_expiry(self, space: Space) -> datetime:
        return self.spaces.ends_at(space) + timedelta(days=1)

    def token_for(self, ticket: Ticket, space: Space) -> str:
        return self.signer.sign(
            TicketClaims(
                ticket_id=ticket.id,
                space_id=ticket.space_id,
                holder_key=str(ticket.holder_id),
                role="listener",
                expires_at=self.token_expiry(space),
            )
        )

    async def staff_pass(self, actor: Actor, space: Space) -> str:
        """A staff token for ``actor`` naming their strongest staff role in ``space`` (host,
        co-host, or the platform's moderator); `PermissionDenied` if they hold none."""
        role = staff_role(await self.spaces.roles(space, actor))
        if role is None:
            raise PermissionDenied("Only the host, co-hosts and moderators get a host pass.")
        return self.staff_token(space, await self.identities.ensure(actor), role.value)

    def staff_token(self, space: Space, identity: Identity, role: str) -> str:
        """A token for the host, a co-host or a moderator: no ticket behind it."""
        assert space.id is not None
        return self.signer.sign(
            TicketClaims(
                ticket_id=f"staff-{identity.id}",
                space_id=space.id,
                holder_key=str(identity.id),
                role=role,
                expires_at=self.token_expiry(space),
            )
        )

    async def verify_token(self, token: str, *, space_id: int | None = None) -> Admission:
        """Signature, expiry, Space, and revocation: everything the room must know."""
        claims = self.signer.verifier.verify(token, now=self.clock.now())
        if space_id is not None and claims.space_id != space_id:
            raise InvalidToken("This ticket is for another Space.")
        space = await self.spaces.get(claims.space_id)
        if claims.ticket_id.startswith("staff-"):
            identity = await self.identities.get(int(claims.holder_key))
            # Host and co-host are re-read; a moderator's platform rights cannot be, so a
            # moderator's pass stands on its signature until it expires.
            held = {SpaceRole.MODERATOR} if claims.role == SpaceRole.MODERATOR else set()
            if identity.id == space.host_id:
                held.add(SpaceRole.HOST)
            if identity.id in await self.spaces.cohost_ids(space.id or 0):
                held.add(SpaceRole.COHOST)
            if staff_role(frozenset(held)) is None:
                raise PermissionDenied("This host pass is no longer valid.")
            return Admission(claims, space, None)
        try:
            ticket = await self.get(claims.ticket_id)
        except NotFound:
            raise InvalidToken("This ticket token is not valid.") from None
        if str(ticket.holder_id) != claims.holder_key:
            raise InvalidToken("This ticket token is not valid.")
        if ticket.status != TicketStatus.VALID:
            raise PermissionDenied(f"This ticket was {ticket.status.value}.")
        return Admission(claims, space, ticket)
