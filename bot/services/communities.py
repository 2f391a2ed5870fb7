"""Linked communities: one Space announced in several communities a host runs.

A person with host rights asks for a one-time code in one community (`/community link`)
and enters it in the other (`/community link CODE`): both sides agreed, the two are linked.
`/space create … also:slack` then announces the Space in linked communities too (a
`SpaceShare` row each, written in the Space's own transaction): one capacity, one stage,
one room; people there see it and buy its seats as if it were theirs.

Each adapter keeps one announcement per Space and community, so a Space may be shown in
two servers of one platform (two Discord servers, two Slack workspaces); its Stage is
opened in one of them only (`stage_on`).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.actors import Actor
from bot.errors import Conflict, InvalidInput, NotFound
from bot.models import Community, CommunityLink, CommunityLinkCode, Platform, Space, SpaceShare
from bot.services import audit
from bot.services.context import Service, ServiceContext
from bot.services.eligibility import HostEligibility

#: how long a `/community link` code may be entered on the other side
CODE_MINUTES = 15
#: letters a code is made of: no 0/O or 1/I/L to misread
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_LENGTH = 8
_SHARES_KEPT = 10_000
#: `also:` words naming every linked community
ALL = "all"


@dataclass(frozen=True, slots=True)
class LinkCode:
    code: str
    expires_at: datetime


def label(community: Community) -> str:
    """How a community is named to people: its name and platform, e.g. `Acme (slack)`."""
    return f"{community.name or community.external_id} ({community.platform.value})"


def ordered(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


async def shares(conn: AsyncConnection, space_ids: Sequence[int]) -> set[tuple[int, str]]:
    """(space id, community id) of every linked community these Spaces are announced in,
    read in the caller's transaction (the claim batcher's)."""
    if not space_ids:
        return set()
    rows = await conn.execute(
        sa.select(col(SpaceShare.space_id), col(SpaceShare.community_id)).where(
            col(SpaceShare.space_id).in_(space_ids)
        )
    )
    return {(row.space_id, row.community_id) for row in rows}


def shown_here(space: Space, community_id: str, shared: set[tuple[int, str]]) -> bool:
    """Whether people of `community_id` see `space`: its own community, or one it was
    announced in (`shared`, from `shares`)."""
    return space.community_id == community_id or (space.id or 0, community_id) in shared


class CommunityService(Service):
    def __init__(self, ctx: ServiceContext, eligibility: Callable[[], HostEligibility]) -> None:
        super().__init__(ctx)
        self._eligibility = eligibility
        # shares are written with their Space and never change: cached once read
        self._shares: OrderedDict[int, tuple[str, ...]] = OrderedDict()

    # --- linking -------------------------------------------------------------------------

    def _check_host(self, actor: Actor) -> None:
        """Linking needs host rights in the community (STAGEPASS_HOST_RULES)."""
        self._eligibility().check(actor, self.clock.now())

    async def link_code(self, actor: Actor) -> LinkCode:
        """A one-time code for `/community link CODE` in the other community."""
        self._check_host(actor)
        me = await self.identities.ensure(actor)
        assert me.id is not None
        now = self.clock.now()
        code = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_LENGTH))
        expires = now + timedelta(minutes=CODE_MINUTES)
        async with self.db.write() as session:
            await (await session.connection()).execute(
                sa.delete(CommunityLinkCode).where(col(CommunityLinkCode.expires_at) <= now)
            )
            session.add(
                CommunityLinkCode(
                    code=code, community_id=actor.community_id, created_by=me.id, expires_at=expires
                )
            )
            audit.record(session, self.clock, "community.link_code", actor_id=me.id)
        return LinkCode(code, expires)

    async def confirm(self, actor: Actor, code: str) -> Community:
        """Link the community of `code` with the actor's; the code works once. Returns
        the other community."""
        self._check_host(actor)
        me = await self.identities.ensure(actor)
        assert me.id is not None
        word = code.strip().upper().replace("-", "")
        now = self.clock.now()
        async with self.db.write() as session:
            row = await session.get(CommunityLinkCode, word)
            if row is None or row.expires_at <= now:
                raise InvalidInput(
                    "That link code is unknown or has expired. Ask for a new one with "
                    "/community link in the other community.",
                    field="code",
                )
            if row.community_id == actor.community_id:
                raise InvalidInput(
                    "That code was made in this community: enter it in the other one."
                )
            await session.delete(row)  # one time, even when the link exists already
            first, second = ordered(row.community_id, actor.community_id)
            other = await session.get(Community, row.community_id)
            assert other is not None
            if await session.get(CommunityLink, (first, second)) is not None:
                raise Conflict(f"This community is already linked with {label(other)}.")
            session.add(
                CommunityLink(first_id=first, second_id=second, linked_by=me.id, created_at=now)
            )
            audit.record(session, self.clock, "community.linked", actor_id=me.id, subject=other.id)
        return other

    async def linked(self, community_id: str) -> list[Community]:
        """The communities linked with `community_id`, by name."""
        async with self.db.session() as session:
            return await self._linked(session, community_id)

    @staticmethod
    async def _linked(session: AsyncSession, community_id: str) -> list[Community]:
        links = await session.exec(
            select(CommunityLink).where(
                sa.or_(
                    col(CommunityLink.first_id) == community_id,
                    col(CommunityLink.second_id) == community_id,
                )
            )
        )
        others = [
            link.second_id if link.first_id == community_id else link.first_id for link in links
        ]
        if not others:
            return []
        rows = await session.exec(select(Community).where(col(Community.id).in_(others)))
        return sorted(rows, key=lambda c: (c.name.lower(), c.id))

    async def unlink(self, actor: Actor, which: str) -> Community:
        """Remove the link with the community `which` names. Spaces already announced
        there stay announced (their tickets are sold); new ones can't be."""
        self._check_host(actor)
        me = await self.identities.ensure(actor)
        async with self.db.write() as session:
            linked = await self._linked(session, actor.community_id)
            found = self._named(linked, which)
            if len(found) != 1:
                names = ", ".join(label(c) for c in found)
                raise InvalidInput(f"{which!r} names several communities ({names}); name one.")
            [other] = found
            first, second = ordered(actor.community_id, other.id)
            await (await session.connection()).execute(
                sa.delete(CommunityLink).where(
                    col(CommunityLink.first_id) == first, col(CommunityLink.second_id) == second
                )
            )
            audit.record(
                session, self.clock, "community.unlinked", actor_id=me.id, subject=other.id
            )
        return other

    @staticmethod
    def _named(linked: list[Community], word: str) -> list[Community]:
        """The linked communities one `also:`/unlink word names: `all`, a platform, a
        community's name or its id (`slack:T123`)."""
        text = word.strip().lower()
        if not linked:
            raise NotFound(
                "This community is not linked with any other. Link one first: /community link"
            )
        names = ", ".join(label(c) for c in linked)
        if text == ALL:
            return linked
        found = [c for c in linked if c.platform.value == text] or [
            c for c in linked if text in (c.id.lower(), c.name.lower(), c.external_id.lower())
        ]
        if not found:
            raise NotFound(f"No linked community is called {word!r}. Linked here: {names}.")
        return found

    # --- Spaces across communities -------------------------------------------------------

    async def resolve_also(self, actor: Actor, words: Iterable[str]) -> tuple[str, ...]:
        """The community ids an `also:` option names (comma-separated words), checked:
        linked with the actor's community."""
        chosen: dict[str, Community] = {}
        wanted = [w for word in words for w in word.split(",") if w.strip()]
        if not wanted:
            return ()
        linked = await self.linked(actor.community_id)
        for word in wanted:
            for community in self._named(linked, word):
                chosen[community.id] = community
        return tuple(sorted(chosen))

    def add_shares(self, session: AsyncSession, space: Space, community_ids: Sequence[str]) -> None:
        """Announce `space` in linked communities too; inside its creating transaction."""
        assert space.id is not None
        for community_id in community_ids:
            session.add(
                SpaceShare(
                    space_id=space.id, community_id=community_id, created_at=space.created_at
                )
            )
        self._remember(space.id, tuple(community_ids))

    def _remember(self, space_id: int, found: tuple[str, ...]) -> None:
        self._shares[space_id] = found
        self._shares.move_to_end(space_id)
        while len(self._shares) > _SHARES_KEPT:
            self._shares.popitem(last=False)

    async def shared_with(self, space_id: int) -> tuple[str, ...]:
        """The linked communities a Space is announced in besides its own."""
        found = self._shares.get(space_id)
        if found is None:
            async with self.db.session() as session:
                rows = await session.exec(
                    select(SpaceShare.community_id).where(SpaceShare.space_id == space_id)
                )
                found = tuple(sorted(rows))
            self._remember(space_id, found)
        return found

    async def shown_in(self, space: Space) -> tuple[str, ...]:
        """Every community that shows `space`: its own first."""
        assert space.id is not None
        return (space.community_id, *await self.shared_with(space.id))

    async def is_shown_in(self, space: Space, community_id: str) -> bool:
        if space.community_id == community_id:
            return True
        assert space.id is not None
        return community_id in await self.shared_with(space.id)

    async def shown_on(
        self, space_id: int, community_id: str, platform: Platform
    ) -> tuple[str, ...]:
        """The communities of `platform` that show a Space (`community_id`: its own, as
        every core event carries it), its own first: where an adapter renders the Space."""
        prefix = f"{platform.value}:"
        own = (community_id,) if community_id.startswith(prefix) else ()
        return own + tuple(c for c in await self.shared_with(space_id) if c.startswith(prefix))

    async def stage_on(self, space_id: int, community_id: str, platform: Platform) -> str | None:
        """The one community of `platform` whose Stage a Space is run on: its own when it
        is on `platform`, else the first linked one that shows it; None when none does.
        A ticket opens that Stage only, never another community's."""
        shown = await self.shown_on(space_id, community_id, platform)
        return shown[0] if shown else None
