"""Invite links: signed tokens that get someone a ticket to a Space, invite-only or not.

A link names an `InviteLink` row (its id) in a token signed like a ticket's
(`bot.tokens`, kind "invite"), so a forged or altered link is refused before anything is
read. A redemption is a claim (`TicketService.reserve(..., invite=...)`): the claim batcher
takes the link's use in the claim's transaction (`take`), and an unpaid hold that lapses
gives it back (`give_back`): counted as promo codes are (`bot.services.uses`).

A host withdraws a link (`revoke`) by setting its `revoked_at` with one conditional UPDATE;
`take` only counts a use on a link that is not revoked, in the same UPDATE that checks
its uses. The row lock both take orders them: a redemption racing a revoke either took
its use before the revoke committed, or is refused; none is counted after it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from bot.actors import Actor
from bot.db import table_of
from bot.errors import Conflict, InvalidInput, LimitExceeded, NotFound, UserError
from bot.models import InviteLink, InviteRedemption, Space
from bot.permissions import Action, require
from bot.services.context import Service, ServiceContext
from bot.services.spaces import SpaceService
from bot.services.uses import UseCounter
from bot.tokens import TicketClaims, TokenSigner

INVITE_KIND = "invite"
_LINKS = table_of(InviteLink)
_USES = UseCounter(_LINKS, table_of(InviteRedemption), "invite_id")
SHORT_ID = 8
"""How many of a link's id characters `/space invites` shows and `revoke:` needs at least
(the full id is 16 hex characters; any unique start of it names the link)."""
_ID = re.compile(r"^[0-9a-f]{1,32}$")
WITHDRAWN = "This invite was withdrawn by the host."


def short_id(link: InviteLink) -> str:
    return link.id[:SHORT_ID]


async def take(
    conn: AsyncConnection, space: Space, invite_id: str, quantity: int
) -> UserError | None:
    """Take `quantity` uses of an invite in the caller's transaction, or the refusal: one
    conditional UPDATE decides, so a revoked link (or one with too few uses) takes none."""
    taken = await _USES.take(
        conn,
        quantity,
        _LINKS.c.id == invite_id,
        _LINKS.c.space_id == space.id,
        _LINKS.c.revoked_at.is_(None),
    )
    if taken is not None:
        return None
    revoked = await conn.scalar(sa.select(_LINKS.c.revoked_at).where(_LINKS.c.id == invite_id))
    if revoked is not None:
        return Conflict(WITHDRAWN)
    return LimitExceeded(f"This invite link to Space #{space.id} is used up.")


async def give_back(conn: AsyncConnection, hold_id: str) -> None:
    """An unpaid hold's use goes back to its invite (in the release's transaction)."""
    await _USES.give_back(conn, hold_id)


async def put_back(conn: AsyncConnection, invite_id: str, quantity: int) -> None:
    """Undo `take` in the same transaction: the claim was refused after it (its promo
    code), so it keeps no use of the link."""
    await _USES.put_back(conn, invite_id, quantity)


@dataclass(frozen=True, slots=True)
class Invite:
    """A new invite link: the row, and the signed token that names it."""

    link: InviteLink
    token: str


@dataclass(frozen=True, slots=True)
class Revoked:
    """A link just withdrawn, with the uses it had taken when the revoke committed (no
    more are taken after it)."""

    link: InviteLink
    space: Space


class InviteService(Service):
    """Hosts and co-hosts make, list and withdraw invite links; anyone reads a link's
    Space from its token."""

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

    async def list_links(self, actor: Actor, space_id: int) -> tuple[Space, list[InviteLink]]:
        """A Space's invite links, oldest first, for those who may withdraw them."""
        space = await self.spaces.get_in(space_id, actor.community_id)
        require(Action.WITHDRAW_INVITES, await self.spaces.roles(space, actor))
        async with self.db.session() as session:
            links = await session.exec(
                select(InviteLink)
                .where(InviteLink.space_id == space_id)
                .order_by(col(InviteLink.created_at), col(InviteLink.id))
            )
            return space, list(links)

    async def revoke(self, actor: Actor, space_id: int, wanted: str) -> Revoked:
        """Withdraw the Space's link whose id starts with `wanted` (as `/space invites`
        shows it). Redemptions after this are refused; tickets already got stay."""
        space = await self.spaces.get_in(space_id, actor.community_id)
        require(Action.WITHDRAW_INVITES, await self.spaces.roles(space, actor))
        link = await self._named(space, wanted)
        now = self.clock.now()
        async with self.db.write_conn() as conn:
            row = (
                await conn.execute(
                    sa.update(_LINKS)
                    .where(_LINKS.c.id == link.id, _LINKS.c.revoked_at.is_(None))
                    .values(revoked_at=now)
                    .returning(_LINKS.c.uses)
                )
            ).first()
        if row is None:
            raise Conflict(f"Invite {short_id(link)} of Space #{space_id} is already withdrawn.")
        link.uses, link.revoked_at = row.uses, now
        return Revoked(link, space)

    async def _named(self, space: Space, wanted: str) -> InviteLink:
        """The Space's link `wanted` names, or why not: no such link, another Space's,
        or too short to say which."""
        text = wanted.strip().lower()
        if not _ID.match(text):
            raise InvalidInput(
                f"{wanted.strip()[:40]!r} is not an invite id: /space invites "
                f"{space.id} lists them.",
                field="revoke",
            )
        async with self.db.session() as session:
            found = list(
                await session.exec(
                    select(InviteLink).where(col(InviteLink.id).startswith(text)).limit(50)
                )
            )
        mine = [link for link in found if link.space_id == space.id]
        if len(mine) == 1:
            return mine[0]
        if len(mine) > 1:
            raise InvalidInput(
                f"{text} starts {len(mine)} invites of Space #{space.id}: give more of its id.",
                field="revoke",
            )
        if found:
            raise NotFound(
                f"Invite {text} is not one of Space #{space.id}'s: /space invites "
                f"{space.id} lists them.",
                field="revoke",
            )
        raise NotFound(
            f"There is no invite {text}: /space invites {space.id} lists them.", field="revoke"
        )

    async def get(self, invite_id: str) -> InviteLink | None:
        """The invite row a token names (None: there is none)."""
        async with self.db.session() as session:
            return await session.get(InviteLink, invite_id)

    def expires_at(self, space: Space) -> datetime:
        """When a Space's invite links stop working: a day after its end."""
        return self.spaces.ends_at(space) + timedelta(days=1)

    def token_for(self, link: InviteLink, space: Space) -> str:
        return self.signer.sign(
            TicketClaims(
                ticket_id=link.id,
                space_id=link.space_id,
                holder_key="",
                role="listener",
                expires_at=self.expires_at(space),
                kind=INVITE_KIND,
            )
        )

    def read(self, token: str, now: datetime) -> TicketClaims:
        """The invite a token names (`InvalidToken` when forged, altered or expired)."""
        return self.signer.verifier.verify(token, now=now, kind=INVITE_KIND)
