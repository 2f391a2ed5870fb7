"""Invite links: signed tokens that get someone a ticket to a Space, invite-only or not.

A link names an `InviteLink` row (its id) in a token signed like a ticket's
(`bot.tokens`, kind "invite"), so a forged or altered link is refused before anything is
read. A redemption is a claim (`TicketService.reserve(..., invite=...)`): the claim batcher
takes the link's use in the claim's transaction (`take`), and an unpaid hold that lapses
gives it back (`give_back`): counted as promo codes are (`bot.services.uses`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.actors import Actor
from bot.db import table_of
from bot.errors import InvalidInput, LimitExceeded, UserError
from bot.models import InviteLink, InviteRedemption, Space
from bot.permissions import Action, require
from bot.services.context import Service, ServiceContext
from bot.services.spaces import SpaceService
from bot.services.uses import UseCounter
from bot.tokens import TicketClaims, TokenSigner

INVITE_KIND = "invite"
_LINKS = table_of(InviteLink)
_USES = UseCounter(_LINKS, table_of(InviteRedemption), "invite_id")


async def take(
    conn: AsyncConnection, space: Space, invite_id: str, quantity: int
) -> UserError | None:
    """Take `quantity` uses of an invite in the caller's transaction, or the refusal."""
    taken = await _USES.take(
        conn, quantity, _LINKS.c.id == invite_id, _LINKS.c.space_id == space.id
    )
    if taken is not None:
        return None
    return LimitExceeded(f"This invite link to Space #{space.id} is used up.")


async def give_back(conn: AsyncConnection, hold_id: str) -> None:
    """An unpaid hold's use goes back to its invite (in the release's transaction)."""
    await _USES.give_back(conn, hold_id)


@dataclass(frozen=True, slots=True)
class Invite:
    """A new invite link: the row, and the signed token that names it."""

    link: InviteLink
    token: str


class InviteService(Service):
    """Hosts and co-hosts make invite links; anyone reads a link's Space from its token."""

    def __init__(self, ctx: ServiceContext, spaces: SpaceService, signer: TokenSigner) -> None:
        super().__init__(ctx)
        self.spaces = spaces
        self.signer = signer

    async def create(self, actor: Actor, space_id: int, uses: int) -> Invite:
        space = await self.spaces.get_in(space_id, actor.community_id)
        require(Action.INVITE, await self.spaces.roles(space, actor))
        if not 1 <= uses <= 100_000:
            raise InvalidInput("uses: must be within 1..100,000.", field="uses")
        me = await self.identities.ensure(actor)
        assert me.id is not None
        link = InviteLink(
            id=secrets.token_hex(8),
            space_id=space_id,
            max_uses=uses,
            created_by=me.id,
            created_at=self.clock.now(),
        )
        async with self.db.write() as session:
            session.add(link)
        return Invite(link, self.token_for(link, space))

    async def get(self, invite_id: str) -> InviteLink | None:
        """The invite row a token names (None: there is none, the host revoked it)."""
        async with self.db.session() as session:
            return await session.get(InviteLink, invite_id)

    def token_for(self, link: InviteLink, space: Space) -> str:
        return self.signer.sign(
            TicketClaims(
                ticket_id=link.id,
                space_id=link.space_id,
                holder_key="",
                role="listener",
                expires_at=self.spaces.ends_at(space) + timedelta(days=1),
                kind=INVITE_KIND,
            )
        )

    def read(self, token: str, now: datetime) -> TicketClaims:
        """The invite a token names (`InvalidToken` when forged, altered or expired)."""
        return self.signer.verifier.verify(token, now=now, kind=INVITE_KIND)
