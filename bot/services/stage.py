"""The stage of a live Space: hands, speakers, mutes, removals, and the speaker cap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from bot.actors import Actor, UserRef
from bot.errors import Conflict, InvalidInput, LimitExceeded, NotFound, PermissionDenied
from bot.events import StageChanged
from bot.models import Identity, Space, SpaceStatus, StageMember, StageRole
from bot.permissions import Action, SpaceRole, allowed, require
from bot.services import audit
from bot.services.context import Service, ServiceContext
from bot.services.spaces import SpaceService


@dataclass(frozen=True, slots=True)
class Seat:
    identity: Identity
    role: StageRole
    muted: bool
    hand_raised_at: datetime | None


@dataclass(frozen=True, slots=True)
class StageState:
    space: Space
    speakers: list[Seat]
    queue: list[Seat]  # hands raised, oldest first


class StageService(Service):
    def __init__(self, ctx: ServiceContext, spaces: SpaceService) -> None:
        super().__init__(ctx)
        self.spaces = spaces

    async def _live(self, actor: Actor, space_id: int) -> Space:
        space = await self.spaces.get_in(space_id, actor.community_id)
        if space.status != SpaceStatus.LIVE:
            raise Conflict(f"Space #{space_id} is not live (it is {space.status.value}).")
        return space

    async def _seat(self, space_id: int, identity_id: int) -> StageMember:
        async with self.db.session() as session:
            seat = await session.get(StageMember, (space_id, identity_id))
        return seat or StageMember(
            space_id=space_id,
            identity_id=identity_id,
            role=StageRole.LISTENER,
            updated_at=self.clock.now(),
        )

    async def _save(
        self, actor: Actor, seat: StageMember, space: Space, target: Identity, change: str
    ) -> None:
        me = await self.identities.ensure(actor)
        seat.updated_at = self.clock.now()
        async with self.db.write() as session:
            await session.merge(seat)
            audit.record(
                session,
                self.clock,
                f"stage.{change}",
                actor_id=me.id,
                space_id=space.id,
                subject=target.key,
            )
        assert space.id is not None
        self.bus.publish(
            StageChanged(
                space_id=space.id,
                community_id=space.community_id,
                identity_key=target.key,
                change=change,
                actor_key=actor.key,
            )
        )

    async def raise_hand(self, actor: Actor, space_id: int, up: bool = True) -> StageMember:
        """Ask to speak (`up`) or withdraw the request."""
        space = await self._live(actor, space_id)
        roles = await self.spaces.roles(space, actor)
        require(Action.REQUEST_TO_SPEAK, roles)
        me = await self.identities.ensure(actor)
        assert me.id is not None
        seat = await self._seat(space_id, me.id)
        if seat.removed:
            raise Conflict("You were removed from this Space's stage.")
        if up and (seat.role == StageRole.SPEAKER or roles & {SpaceRole.HOST, SpaceRole.COHOST}):
            raise Conflict("You are already a speaker.")
        if up == (seat.hand_raised_at is not None):
            raise Conflict("Your hand is already up." if up else "Your hand is not raised.")
        seat.hand_raised_at = self.clock.now() if up else None
        await self._save(actor, seat, space, me, "hand_raised" if up else "hand_lowered")
        return seat

    async def _target(
        self, actor: Actor, space: Space, who: UserRef
    ) -> tuple[Identity, StageMember]:
        require(Action.RUN_STAGE, await self.spaces.roles(space, actor))
        target = await self.identities.ensure(actor.peer(who))
        assert target.id is not None and space.id is not None
        return target, await self._seat(space.id, target.id)

    async def promote(self, actor: Actor, space_id: int, who: UserRef) -> StageMember:
        space = await self._live(actor, space_id)
        target, seat = await self._target(actor, space, who)
        if target.id == space.host_id or target.id in await self.spaces.cohost_ids(space_id):
            raise Conflict(f"{target.display_name} is a host and always on stage.")
        if seat.role == StageRole.SPEAKER:
            raise Conflict(f"{target.display_name} is already a speaker.")
        if seat.removed:
            raise Conflict(f"{target.display_name} was removed from this Space.")
        roles = await self.spaces.roles(space, actor.peer(who))
        if SpaceRole.TICKET_HOLDER not in roles:
            raise InvalidInput(f"{target.display_name} has no ticket for this Space.")
        async with self.db.session() as session:
            speakers = len(
                list(
                    await session.exec(
                        select(StageMember.identity_id).where(
                            StageMember.space_id == space_id,
                            StageMember.role == StageRole.SPEAKER.value,
                        )
                    )
                )
            )
        if speakers >= self.settings.max_speakers:
            raise LimitExceeded(
                f"The stage is full: {self.settings.max_speakers} speakers besides the hosts. "
                "Demote someone first."
            )
        seat.role = StageRole.SPEAKER
        seat.hand_raised_at = None
        seat.muted = False
        await self._save(actor, seat, space, target, "promoted")
        return seat

    async def demote(self, actor: Actor, space_id: int, who: UserRef) -> StageMember:
        space = await self._live(actor, space_id)
        target, seat = await self._target(actor, space, who)
        if seat.role != StageRole.SPEAKER:
            raise Conflict(f"{target.display_name} is not a speaker.")
        seat.role = StageRole.LISTENER
        await self._save(actor, seat, space, target, "demoted")
        return seat

    async def mute(
        self, actor: Actor, space_id: int, who: UserRef, muted: bool = True
    ) -> StageMember:
        space = await self._live(actor, space_id)
        target, seat = await self._target(actor, space, who)
        if seat.muted == muted:
            raise Conflict(f"{target.display_name} is already {'muted' if muted else 'unmuted'}.")
        seat.muted = muted
        await self._save(actor, seat, space, target, "muted" if muted else "unmuted")
        return seat

    async def remove(self, actor: Actor, space_id: int, who: UserRef) -> StageMember:
        space = await self._live(actor, space_id)
        target, seat = await self._target(actor, space, who)
        if target.id == space.host_id:
            raise Conflict("The host cannot be removed from their own Space.")
        if seat.removed:
            raise Conflict(f"{target.display_name} was already removed.")
        seat.removed = True
        seat.role = StageRole.LISTENER
        seat.hand_raised_at = None
        await self._save(actor, seat, space, target, "removed")
        return seat

    async def state(self, space_id: int) -> StageState:
        space = await self.spaces.get(space_id)
        async with self.db.session() as session:
            rows = list(
                await session.exec(
                    select(StageMember, Identity)
                    .join(Identity, col(Identity.id) == StageMember.identity_id)
                    .where(StageMember.space_id == space_id, col(StageMember.removed).is_(False))
                )
            )
        speakers = [
            Seat(i, m.role, m.muted, m.hand_raised_at)
            for m, i in rows
            if m.role == StageRole.SPEAKER
        ]
        queue = sorted(
            (
                Seat(i, m.role, m.muted, m.hand_raised_at)
                for m, i in rows
                if m.hand_raised_at is not None
            ),
            key=lambda s: s.hand_raised_at or space.starts_at,
        )
        return StageState(space, speakers, queue)

    async def is_removed(self, space_id: int, identity_id: int) -> bool:
        return (await self._seat(space_id, identity_id)).removed

    async def queue(self, actor: Actor, space_id: int) -> StageState:
        space = await self.spaces.get_in(space_id, actor.community_id)
        require(Action.RUN_STAGE, await self.spaces.roles(space, actor))
        return await self.state(space_id)

    async def find_live(self, actor: Actor) -> Space:
        """The Space meant when a stage command names none: the one live here."""
        spaces = await self.spaces.list_spaces(actor.community_id)
        live = [s for s in spaces if s.status == SpaceStatus.LIVE]
        if not live:
            raise NotFound("No Space is live here right now; name one, e.g. space:12.")
        if len(live) > 1:
            ids = ", ".join(f"#{s.id}" for s in live)
            raise InvalidInput(
                f"Several Spaces are live ({ids}); name one, e.g. space:{live[0].id}."
            )
        return live[0]

    async def admit(self, actor: Actor, space: Space) -> None:
        """Whether `actor` may listen to `space` live (its Stage, its room): the host,
        co-hosts, moderators and holders of a valid ticket for *this* Space, unless they
        were removed from it. Raises `PermissionDenied` saying what to do next."""
        assert space.id is not None
        if not allowed(Action.LISTEN, await self.spaces.roles(space, actor)):
            raise PermissionDenied(
                f"“{space.title}” (Space #{space.id}) is live on this stage, and listening "
                f"needs a ticket for it. Get one with /ticket buy {space.id}, then join again."
            )
        me = await self.identities.ensure(actor)
        assert me.id is not None
        if (await self._seat(space.id, me.id)).removed:
            raise PermissionDenied(
                f"You were removed from “{space.title}” (Space #{space.id}); a moderator of "
                "the Space can let you back in."
            )
