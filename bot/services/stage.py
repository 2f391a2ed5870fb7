"""The stage of a live Space: hands, speakers, mutes, removals (and `allow`, their undo),
the speaker cap, and the one seat rule (`StageService.seat`) that the room's gate, the
Discord stage sync, the CLI, the API and every listing map instead of working it out."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from bot.actors import Actor, UserRef
from bot.errors import Conflict, InvalidInput, LimitExceeded, NotFound
from bot.events import StageChanged
from bot.models import (
    BridgeMode,
    Identity,
    Space,
    SpaceCohost,
    SpaceStatus,
    StageInvite,
    StageMember,
    StageRole,
    Ticket,
    TicketStatus,
)
from bot.permissions import Action, SpaceRole, require
from bot.services import audit, refusals
from bot.services.context import Service, ServiceContext
from bot.services.spaces import SpaceService


class SeatRole(enum.StrEnum):
    """Where someone sits on a Space's stage; the same words as the room's roles."""

    HOST = "host"
    COHOST = "cohost"
    SPEAKER = "speaker"
    LISTENER = "listener"


@dataclass(frozen=True, slots=True)
class Seat:
    """The one answer to "what may this person do on this Space's stage", worked out once
    here and only mapped by the room, the Discord stage sync and every listing."""

    role: SeatRole
    muted: bool
    removed: bool
    """A moderator removed them; `/stage allow` undoes it."""
    may_speak: bool
    """Heard on the stage: the host, a co-host, or a promoted speaker who still holds a
    valid ticket; never someone removed."""
    may_listen: bool
    """Admitted at all: a valid ticket, or staff (host, co-host, moderator); not removed."""
    holds_ticket: bool
    hand_raised: bool


@dataclass(frozen=True, slots=True)
class Seated:
    """A person in a stage listing, with their seat."""

    identity: Identity
    seat: Seat
    hand_raised_at: datetime | None


@dataclass(frozen=True, slots=True)
class StageState:
    space: Space
    speakers: list[Seated]  # only those who may speak
    queue: list[Seated]  # hands raised, oldest first


class StageService(Service):
    def __init__(self, ctx: ServiceContext, spaces: SpaceService) -> None:
        super().__init__(ctx)
        self.spaces = spaces

    async def _live(self, actor: Actor, space_id: int) -> Space:
        space = await self.spaces.get_in(space_id, actor.community_id)
        if space.status != SpaceStatus.LIVE:
            raise refusals.not_now(space, Action.RUN_STAGE)
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
            raise refusals.removed_from_stage()
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
            raise refusals.removed_from_stage(target.display_name)
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

    async def invite(self, actor: Actor, space_id: int, who: UserRef) -> StageMember:
        """Make someone a speaker ahead of time (a scheduled or live Space): by the seat
        rule they are a speaker as soon as they join with a ticket (`_rule`)."""
        space = await self.spaces.get_in(space_id, actor.community_id)
        if not space.status.is_open_for_sale:
            raise refusals.not_now(space, Action.RUN_STAGE)
        target, seat = await self._target(actor, space, who)
        if target.id == space.host_id or target.id in await self.spaces.cohost_ids(space_id):
            raise Conflict(f"{target.display_name} is a host and always on stage.")
        if seat.removed:
            raise refusals.removed_from_stage(target.display_name)
        if seat.role == StageRole.SPEAKER:
            raise Conflict(f"{target.display_name} is already a speaker.")
        me = await self.identities.ensure(actor)
        assert me.id is not None and target.id is not None
        seat.role = StageRole.SPEAKER
        seat.hand_raised_at = None
        async with self.db.write() as session:
            await session.merge(
                StageInvite(
                    space_id=space_id,
                    identity_id=target.id,
                    invited_by=me.id,
                    created_at=self.clock.now(),
                )
            )
        await self._save(actor, seat, space, target, "invited")
        return seat

    async def dismiss(self, actor: Actor, space_id: int, who: UserRef) -> StageMember:
        """Lower someone else's raised hand (staff turning a request to speak down)."""
        space = await self._live(actor, space_id)
        target, seat = await self._target(actor, space, who)
        if seat.hand_raised_at is None:
            raise Conflict(f"{target.display_name} has no hand raised.")
        seat.hand_raised_at = None
        await self._save(actor, seat, space, target, "hand_lowered")
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

    async def allow(self, actor: Actor, space_id: int, who: UserRef) -> StageMember:
        """Undo a removal: they may join (as a listener) and ask to speak again."""
        space = await self._live(actor, space_id)
        target, seat = await self._target(actor, space, who)
        if not seat.removed:
            raise Conflict(f"{target.display_name} was not removed; nothing to undo.")
        seat.removed = False
        await self._save(actor, seat, space, target, "allowed")
        return seat

    # --- the seat rule -------------------------------------------------------------------

    async def seat(self, space: Space, identity: Identity, *, moderator: bool = False) -> Seat:
        """What `identity` may do on `space`'s stage (`moderator`: the platform says they
        moderate this community; a moderator may listen without a ticket)."""
        assert identity.id is not None
        moderators = frozenset({identity.id}) if moderator else frozenset()
        return (await self._seats(space, [identity.id], moderators=moderators))[identity.id]

    async def seats(self, space: Space, identity_ids: Iterable[int]) -> dict[int, Seat]:
        """`seat` for many people at once (a listing of a whole Space's holders)."""
        return await self._seats(space, identity_ids)

    async def _seats(
        self,
        space: Space,
        identity_ids: Iterable[int],
        *,
        moderators: frozenset[int] = frozenset(),
    ) -> dict[int, Seat]:
        """The seat rule for several people at once (three queries, whatever their number)."""
        ids = list(dict.fromkeys(identity_ids))
        async with self.db.session() as session:
            rows = {
                m.identity_id: m
                for m in await session.exec(
                    select(StageMember).where(
                        StageMember.space_id == space.id, col(StageMember.identity_id).in_(ids)
                    )
                )
            }
            cohosts = set(
                await session.exec(
                    select(SpaceCohost.identity_id).where(
                        SpaceCohost.space_id == space.id, col(SpaceCohost.identity_id).in_(ids)
                    )
                )
            )
            holders = set(
                await session.exec(
                    select(Ticket.holder_id).where(
                        Ticket.space_id == space.id,
                        Ticket.status == TicketStatus.VALID.value,
                        col(Ticket.holder_id).in_(ids),
                    )
                )
            )
        return {
            i: _rule(space, i, rows.get(i), i in cohosts, i in holders, i in moderators)
            for i in ids
        }

    def may_speak_in_voice(self, space: Space, seat: Seat) -> bool:
        """In a bridged Discord voice channel (no speaker rules): those who may speak on
        the stage, and with the host's `bridge:speak` everyone admitted."""
        if seat.may_speak:
            return True
        return self.spaces.bridge_mode(space) == BridgeMode.SPEAK and seat.may_listen

    async def state(self, space_id: int) -> StageState:
        """The speakers (by the seat rule: a revoked speaker is not one) and the raised
        hands of a Space."""
        space = await self.spaces.get(space_id)
        async with self.db.session() as session:
            rows = list(
                await session.exec(
                    select(StageMember, Identity)
                    .join(Identity, col(Identity.id) == StageMember.identity_id)
                    .where(StageMember.space_id == space_id, col(StageMember.removed).is_(False))
                )
            )
        seats = await self._seats(space, [m.identity_id for m, _ in rows])
        seated = [Seated(i, seats[m.identity_id], m.hand_raised_at) for m, i in rows]
        speakers = [s for s in seated if s.seat.role == SeatRole.SPEAKER and s.seat.may_speak]
        queue = sorted(
            (s for s in seated if s.hand_raised_at is not None),
            key=lambda s: s.hand_raised_at or space.starts_at,
        )
        return StageState(space, speakers, queue)

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

    async def seat_of(self, actor: Actor, space: Space) -> Seat:
        """`seat` of a platform user as their platform sees them: a moderator counts as one
        only in a community that shows `space`. Its ``may_listen`` is `admit`'s answer, for
        a caller that maps it instead of raising (the voice bridge's list of who is in)."""
        [seat] = await self.seats_of([actor], space)
        return seat

    async def seats_of(self, actors: Sequence[Actor], space: Space) -> list[Seat]:
        """`seat_of` for many platform users at once, in their order (everyone on a live
        Space's Stage, which the Discord adapter checks again every few seconds): the seat
        rule's three queries for all of them, and none per known identity."""
        people: list[int] = []
        moderators: set[int] = set()
        for actor in actors:
            me = await self.identities.ensure(actor)  # a cached row: no query
            assert me.id is not None
            people.append(me.id)
            if actor.is_moderator and await self.spaces.communities.is_shown_in(
                space, actor.community_id
            ):
                moderators.add(me.id)
        seats = await self._seats(space, people, moderators=frozenset(moderators))
        return [seats[person] for person in people]

    async def admit(self, actor: Actor, space: Space) -> Seat:
        """Whether `actor` may listen to `space` live (its Stage, its room), by the seat
        rule: the host, co-hosts, moderators and holders of a valid ticket for *this*
        Space, unless they were removed from it. Returns their seat; raises
        `PermissionDenied` saying what to do next."""
        seat = await self.seat_of(actor, space)
        if seat.removed:
            raise refusals.removed_from_live(space)
        if not seat.may_listen:
            raise refusals.listening_needs_ticket(space)
        return seat


def _rule(
    space: Space,
    identity_id: int,
    row: StageMember | None,
    cohost: bool,
    ticket: bool,
    moderator: bool,
) -> Seat:
    """The seat rule itself, on rows already read."""
    removed = row is not None and row.removed and identity_id != space.host_id
    if identity_id == space.host_id:
        role = SeatRole.HOST
    elif cohost:
        role = SeatRole.COHOST
    elif row is not None and row.role == StageRole.SPEAKER and ticket and not removed:
        role = SeatRole.SPEAKER
    else:
        role = SeatRole.LISTENER
    staff = role in (SeatRole.HOST, SeatRole.COHOST)
    return Seat(
        role=role,
        muted=row is not None and row.muted,
        removed=removed,
        may_speak=role != SeatRole.LISTENER and not removed,
        may_listen=not removed and (staff or ticket or moderator),
        holds_ticket=ticket,
        hand_raised=row is not None and row.hand_raised_at is not None,
    )
