"""Manage my ticket: a holder's own page for one ticket (`/tickets/{id}?token=…`).

Reached by a manage link: a signed token of kind "manage" naming one ticket and its
holder, good for `MANAGE_LINK_TTL` (the ticket DM carries one, and `/ticket show` gives a
fresh one). It is not the room token: it admits nobody to the room, and the room token
does not open this page. The page shows the ticket and its Space, and offers what the
holder may do now: join the room while live, refund within the host's policy, replay the
recordings in the replay window. A refunded (or revoked) ticket's page still opens, but
offers nothing, and every action on it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.errors import Conflict, NotFound, PermissionDenied
from bot.models import Identity, Space, SpaceStatus, Ticket, TicketStatus
from bot.ports import Recording
from bot.refund_policy import refund_deadline, refund_open
from bot.services.links import LinkService
from bot.tokens import MANAGE_KIND, InvalidToken, TicketClaims

MANAGE_LINK_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class TicketPass:
    """A manage link, checked: whose ticket, for which Space (read just now)."""

    ticket: Ticket
    space: Space
    holder: Identity
    token: str

    @property
    def valid(self) -> bool:
        return self.ticket.status == TicketStatus.VALID


@dataclass(frozen=True, slots=True)
class TicketView:
    """What the holder's page shows and offers now."""

    ticket: Ticket
    space: Space
    refundable: bool  # within the policy, and the ticket still valid
    refund_deadline: datetime
    room_token: str | None  # while live (and the holder may listen)
    replays: list[Recording] = field(default_factory=list)
    replays_until: datetime | None = None


class MyTicketService(LinkService):
    def link_token(self, ticket: Ticket) -> str:
        """A manage token for `ticket`'s holder, good for `MANAGE_LINK_TTL`."""
        return self.signer.sign(
            TicketClaims(
                ticket_id=ticket.id,
                space_id=ticket.space_id,
                holder_key=str(ticket.holder_id),
                role="holder",
                expires_at=self.clock.now() + MANAGE_LINK_TTL,
                kind=MANAGE_KIND,
            )
        )

    async def admit(self, token: str, ticket_id: str) -> TicketPass:
        """The ticket a manage token opens: `InvalidToken` (forged, expired, a room or
        desk token), `PermissionDenied` (another ticket's link, another person's ticket)."""
        claims = self.signer.verifier.verify(token, now=self.clock.now(), kind=MANAGE_KIND)
        if claims.ticket_id != ticket_id:
            raise PermissionDenied("This link is for another ticket.")
        try:
            ticket = await self.tickets.get(ticket_id)
        except NotFound:
            raise InvalidToken("This link is not valid.") from None
        if str(ticket.holder_id) != claims.holder_key:
            raise PermissionDenied("This is not your ticket.")
        space = await self.spaces.get(ticket.space_id)
        holder = await self.identities.get(ticket.holder_id)
        return TicketPass(ticket, space, holder, token)

    async def view(self, held: TicketPass) -> TicketView:
        ticket, space = held.ticket, held.space
        now = self.clock.now()
        room_token = None
        replays: list[Recording] = []
        if held.valid:
            seat = await self.stage.seat(space, held.holder)
            if space.status == SpaceStatus.LIVE and seat.may_listen:
                room_token = self.tickets.token_for(ticket, space)
            replays = await self.replays.available(space)
        return TicketView(
            ticket=ticket,
            space=space,
            refundable=held.valid
            and space.status == SpaceStatus.SCHEDULED
            and refund_open(space, ticket, self.settings, now),
            refund_deadline=refund_deadline(space, self.settings),
            room_token=room_token,
            replays=replays,
            replays_until=self.replays.until(space) if replays else None,
        )

    def require_valid(self, held: TicketPass) -> None:
        """Actions on a refunded or revoked ticket are refused."""
        if not held.valid:
            raise Conflict(
                f"Ticket {held.ticket.id} was {held.ticket.status.value}; it no longer "
                "admits you or plays replays."
            )

    async def refund(self, held: TicketPass) -> Ticket:
        """The holder's refund, as `/ticket refund` does it (the core's `refund_own`)."""
        self.require_valid(held)
        return await self.tickets.refund_own(held.holder, held.ticket)

    async def replay(self, held: TicketPass, number: int) -> Recording:
        """One recording to play: the ticket valid, inside the replay window."""
        self.require_valid(held)
        return await self.replays.part(held.space, number, ZoneInfo(held.holder.tz))
