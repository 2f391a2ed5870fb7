"""Spaces: create, edit, start, end, cancel, co-hosts — and who holds which role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.actors import Actor, UserRef
from bot.errors import Conflict, InvalidInput, LimitExceeded, NotFound
from bot.events import (
    CohostChanged,
    FieldChange,
    SpaceAnnounced,
    SpaceCancelled,
    SpaceEnded,
    SpaceStarted,
    SpaceUpdated,
)
from bot.models import (
    DESCRIPTION_LENGTH,
    BridgeMode,
    Identity,
    Space,
    SpaceCohost,
    SpaceShare,
    SpaceStatus,
    Ticket,
    TicketStatus,
    Visibility,
)
from bot.money import currency as lookup_currency
from bot.money import format_minor, parse_amount
from bot.permissions import Action, SpaceRole, require
from bot.services import audit, refusals
from bot.services.communities import CommunityService
from bot.services.context import Service, ServiceContext
from bot.services.eligibility import HostEligibility


@dataclass(frozen=True, slots=True)
class SpaceDraft:
    """What a host asks for; validated by `SpaceService` against the settings."""

    title: str
    starts_at: datetime
    capacity: int
    price_minor: int = 0
    currency: str = "usd"
    duration_minutes: int | None = None
    description: str = ""
    per_buyer_limit: int | None = None
    manual_start: bool = False
    visibility: Visibility = Visibility.PUBLIC
    also: tuple[str, ...] = ()
    """Linked communities to announce it in too, as typed (`slack`, `all`, a name)."""


@dataclass(frozen=True, slots=True)
class SpaceChanges:
    """Fields of an edit; `None` leaves a field as it is."""

    title: str | None = None
    starts_at: datetime | None = None
    capacity: int | None = None
    price: str | None = None
    """The amount as typed (`4`, `4.50`): read in `currency` when given, else in the
    Space's own currency, so a price edit never switches the currency."""
    currency: str | None = None
    duration_minutes: int | None = None
    description: str | None = None
    per_buyer_limit: int | None = None
    voice_bridge: BridgeMode | None = None
    visibility: Visibility | None = None
    replay_days: int | None = None
    """Days after the end that holders may replay the recordings (editable after the end)."""

    def given(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


@dataclass(frozen=True, slots=True)
class ScheduleRequest:
    """A Space about to be put on (or moved in) the calendar, for the schedule checks."""

    host_id: int
    community_id: str
    starts_at: datetime
    duration_minutes: int
    space_id: int | None = None  # set when an existing Space moves
    title: str = ""


#: the fields an edit may change, in the order a reply lists them
EDITABLE = (
    "title",
    "description",
    "starts_at",
    "duration_minutes",
    "price_minor",
    "currency",
    "capacity",
    "per_buyer_limit",
    "visibility",
)


@dataclass(frozen=True, slots=True)
class SpaceEdit:
    """An edit's outcome: the Space as saved and what changed, old and new values."""

    space: Space
    changes: tuple[FieldChange, ...]


#: starting more than this many minutes before the announced time needs confirm:yes
EARLY_START_MINUTES = 15
MAX_REPLAY_DAYS = 365
"""The longest replay window a host may set (`replay_days:`)."""

ScheduleCheck = Callable[[AsyncSession, ScheduleRequest], Awaitable[None]]
StartCheck = Callable[[AsyncSession, Space], Awaitable[None]]


class SpaceService(Service):
    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        self.eligibility = HostEligibility(ctx.settings.host_rules)
        self.communities = CommunityService(ctx, lambda: self.eligibility)
        self._schedule_checks: list[ScheduleCheck] = []
        self._start_checks: list[StartCheck] = []

    def add_schedule_check(self, check: ScheduleCheck) -> None:
        """Run `check` inside the write transaction of every create, and of every edit
        that moves or lengthens a Space; it raises a `UserError` to refuse (the scheduler
        adds its overlap, horizon and per-host limits this way)."""
        self._schedule_checks.append(check)

    def add_start_check(self, check: StartCheck) -> None:
        """Run `check` inside the write transaction that makes a Space live; it raises a
        `UserError` to refuse the start (Discord's one-Space-per-Stage lock does)."""
        self._start_checks.append(check)

    async def _check_schedule(self, session: AsyncSession, request: ScheduleRequest) -> None:
        for check in self._schedule_checks:
            await check(session, request)

    # --- reading -------------------------------------------------------------------------

    async def get(self, space_id: int) -> Space:
        async with self.db.session() as session:
            space = await session.get(Space, space_id)
        if space is None:
            raise NotFound(f"There is no Space #{space_id}.")
        return space

    async def get_in(self, space_id: int, community_id: str) -> Space:
        """A Space, but only if the asking community shows it (its own, or a linked
        community it was announced in)."""
        space = await self.get(space_id)
        if not await self.communities.is_shown_in(space, community_id):
            raise NotFound(f"There is no Space #{space_id} here.")
        return space

    async def list_spaces(
        self,
        community_id: str | None = None,
        *,
        upcoming_only: bool = True,
        limit: int = 50,
        listed_only: bool = False,
    ) -> list[Space]:
        """Spaces by start; `listed_only`: not the invite-only ones (public listings)."""
        query = select(Space).order_by(col(Space.starts_at)).limit(limit)
        if listed_only:
            query = query.where(Space.visibility == Visibility.PUBLIC.value)
        if community_id is not None:
            shared = select(SpaceShare.space_id).where(SpaceShare.community_id == community_id)
            query = query.where(
                sa.or_(col(Space.community_id) == community_id, col(Space.id).in_(shared))
            )
        if upcoming_only:
            query = query.where(
                col(Space.status).in_([SpaceStatus.SCHEDULED.value, SpaceStatus.LIVE.value])
            )
        async with self.db.session() as session:
            return list(await session.exec(query))

    async def cohost_ids(self, space_id: int) -> list[int]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(SpaceCohost.identity_id).where(SpaceCohost.space_id == space_id)
            )
            return list(rows)

    async def roles(self, space: Space, actor: Actor) -> frozenset[SpaceRole]:
        """Every role `actor` holds for `space`."""
        identity = await self.identities.ensure(actor)
        roles = {SpaceRole.MEMBER}
        if actor.is_moderator and await self.communities.is_shown_in(space, actor.community_id):
            roles.add(SpaceRole.MODERATOR)
        if identity.id == space.host_id:
            roles.add(SpaceRole.HOST)
        async with self.db.session() as session:
            if await session.get(SpaceCohost, (space.id, identity.id)):
                roles.add(SpaceRole.COHOST)
            held = (
                await session.exec(
                    select(Ticket.id).where(
                        Ticket.space_id == space.id,
                        Ticket.holder_id == identity.id,
                        Ticket.status == TicketStatus.VALID.value,
                    )
                )
            ).first()
        if held is not None:
            roles.add(SpaceRole.TICKET_HOLDER)
        return frozenset(roles)

    # --- validation: one place for every limit -------------------------------------------

    def _validate(
        self, draft: SpaceDraft, *, sold: int = 0, check_start: bool = True
    ) -> SpaceDraft:
        s = self.settings
        title = " ".join(draft.title.split())
        if not title:
            raise InvalidInput("A Space needs a title.", field="title")
        if len(title) > s.max_title_length:
            raise InvalidInput(
                f"The title is {len(title)} characters long; the limit is {s.max_title_length}.",
                field="title",
            )
        if len(draft.description) > DESCRIPTION_LENGTH:
            raise InvalidInput(
                f"The description is longer than {DESCRIPTION_LENGTH:,} characters.",
                field="description",
            )
        if draft.starts_at.tzinfo is None:
            raise InvalidInput("The start time needs a time zone.", field="starts")
        if check_start and draft.starts_at <= self.clock.now():
            raise InvalidInput("The start time is in the past; pick a time ahead.", field="starts")
        cur = lookup_currency(draft.currency)
        if draft.price_minor < 0:
            raise InvalidInput("The price cannot be negative.", field="price")
        max_minor = s.max_price * 10**cur.exponent
        if draft.price_minor > max_minor:
            raise InvalidInput(
                f"The price is above the limit of {format_minor(max_minor, cur.code)}.",
                field="price",
            )
        if 0 < draft.price_minor < cur.minimum_charge:
            raise InvalidInput(
                f"The lowest price for a paid Space is {format_minor(cur.minimum_charge, cur.code)}"
                " (make it 0 for a free Space).",
                field="price",
            )
        if draft.capacity < 1:
            raise InvalidInput("A Space needs at least 1 ticket.", field="tickets")
        if draft.capacity > s.max_tickets:
            raise LimitExceeded(
                f"A Space can have at most {s.max_tickets:,} tickets.", field="tickets"
            )
        if draft.capacity < sold:
            raise refusals.capacity_below_taken(sold)
        duration = draft.duration_minutes or s.default_duration_minutes
        if not 1 <= duration <= s.max_duration_minutes:
            raise InvalidInput(
                f"The duration must be between 1 and {s.max_duration_minutes} minutes.",
                field="duration",
            )
        limit = draft.per_buyer_limit or min(s.default_per_buyer, draft.capacity)
        if not 1 <= limit <= s.max_per_buyer:
            raise LimitExceeded(
                f"Tickets per buyer must be between 1 and {s.max_per_buyer}.", field="limit"
            )
        return replace(
            draft,
            title=title,
            currency=cur.code,
            duration_minutes=duration,
            per_buyer_limit=min(limit, draft.capacity),
        )

    def check_draft(self, draft: SpaceDraft) -> SpaceDraft:
        """Validate a draft against every limit without creating anything (slot booking
        checks a series' fields once, before its Spaces are created over the weeks)."""
        return self._validate(draft)

    # --- changing ------------------------------------------------------------------------

    async def create(self, actor: Actor, draft: SpaceDraft) -> Space:
        self.eligibility.check(actor, self.clock.now())
        draft = self._validate(draft)
        host = await self.identities.ensure(actor)
        also = await self.communities.resolve_also(actor, draft.also)
        return await self.create_for(host, draft, actor_key=actor.key, also=also)

    async def create_for(
        self,
        host: Identity,
        draft: SpaceDraft,
        *,
        actor_key: str | None = None,
        also: tuple[str, ...] = (),
    ) -> Space:
        """Create a Space for a known host, announced in the linked communities `also`
        (ids, checked by `CommunityService.resolve_also`) too. The platform eligibility
        check is the caller's (`create` does it; the scheduler did it for a slot)."""
        now = self.clock.now()
        draft = self._validate(draft)
        await self.payments.ensure_can_sell(host, draft.price_minor)
        assert draft.duration_minutes is not None and draft.per_buyer_limit is not None
        assert host.id is not None
        space = Space(
            community_id=host.community_id,
            host_id=host.id,
            title=draft.title,
            description=draft.description,
            starts_at=draft.starts_at,
            duration_minutes=draft.duration_minutes,
            status=SpaceStatus.SCHEDULED,
            price_minor=draft.price_minor,
            currency=draft.currency,
            capacity=draft.capacity,
            per_buyer_limit=draft.per_buyer_limit,
            manual_start=draft.manual_start,
            visibility=draft.visibility,
            created_at=now,
            updated_at=now,
        )
        async with self.db.write() as session:
            await self._check_schedule(
                session,
                ScheduleRequest(
                    host_id=host.id,
                    community_id=host.community_id,
                    starts_at=draft.starts_at,
                    duration_minutes=draft.duration_minutes,
                    title=draft.title,
                ),
            )
            session.add(space)
            await session.flush()
            self.communities.add_shares(session, space, also)
            audit.record(
                session,
                self.clock,
                "space.created",
                actor_id=host.id,
                space_id=space.id,
                subject=space.title,
                price=space.price_minor,
                currency=space.currency,
                capacity=space.capacity,
                starts_at=space.starts_at.isoformat(),
            )
        assert space.id is not None
        self.bus.publish(
            SpaceAnnounced(space_id=space.id, community_id=space.community_id, actor_key=actor_key)
        )
        return space

    async def edit(self, actor: Actor, space_id: int, changes: SpaceChanges) -> SpaceEdit:
        """Change a Space. A price is read in the Space's currency unless the edit names
        another; the outcome lists each changed field with its old and new value."""
        space = await self.get_in(space_id, actor.community_id)
        require(Action.EDIT, await self.roles(space, actor))
        given = changes.given()
        replays_only = set(given) == {"replay_days"} and space.status == SpaceStatus.ENDED
        if space.status.is_final and not replays_only:
            raise refusals.not_now(space, Action.EDIT)
        if not given:
            raise InvalidInput('Say what to change, e.g. title:"New title" or starts:"fri 18:00".')
        if space.status == SpaceStatus.LIVE and "starts_at" in given:
            raise refusals.start_cannot_move(space)
        if "price" in given:
            code = lookup_currency(given.get("currency", space.currency)).code
            given["price_minor"] = parse_amount(given.pop("price"), code)
        if "currency" in given:
            given["currency"] = lookup_currency(given["currency"]).code
        if space.taken and (
            given.get("price_minor", space.price_minor) != space.price_minor
            or given.get("currency", space.currency) != space.currency
        ):
            raise refusals.price_locked(space)
        bridge = given.pop("voice_bridge", space.voice_bridge)
        replay_days = given.pop("replay_days", space.replay_days)
        if replay_days is not None and not 0 <= replay_days <= MAX_REPLAY_DAYS:
            raise InvalidInput(
                f"replay_days: must be between 0 and {MAX_REPLAY_DAYS}.", field="replay_days"
            )
        current = SpaceDraft(
            title=space.title,
            starts_at=space.starts_at,
            capacity=space.capacity,
            price_minor=space.price_minor,
            currency=space.currency,
            duration_minutes=space.duration_minutes,
            description=space.description,
            per_buyer_limit=space.per_buyer_limit,
            manual_start=space.manual_start,
            visibility=space.visibility,
        )
        draft = self._validate(
            replace(current, **given), sold=space.taken, check_start="starts_at" in given
        )
        if draft.price_minor != space.price_minor:
            host = await self.identities.get(space.host_id)
            await self.payments.ensure_can_sell(host, draft.price_minor)
        changed = tuple(
            name for name in EDITABLE if getattr(draft, name) != getattr(space, name)
        ) + (("voice_bridge",) if bridge != space.voice_bridge else ())
        changed += ("replay_days",) if replay_days != space.replay_days else ()
        if not changed:
            return SpaceEdit(space, ())
        identity = await self.identities.ensure(actor)
        async with self.db.write() as session:
            fresh = await session.get(Space, space_id, with_for_update=not self.db.is_sqlite)
            assert fresh is not None
            if draft.capacity < fresh.taken:
                raise refusals.capacity_below_taken(fresh.taken)
            if "starts_at" in changed or "duration_minutes" in changed:
                assert draft.duration_minutes is not None
                await self._check_schedule(
                    session,
                    ScheduleRequest(
                        host_id=fresh.host_id,
                        community_id=fresh.community_id,
                        starts_at=draft.starts_at,
                        duration_minutes=draft.duration_minutes,
                        space_id=space_id,
                        title=draft.title,
                    ),
                )
            diff = tuple(
                FieldChange(
                    name,
                    getattr(fresh, name),
                    {"voice_bridge": bridge, "replay_days": replay_days}.get(
                        name, getattr(draft, name, None)
                    ),
                )
                for name in changed
            )
            for change in diff:
                setattr(fresh, change.name, change.new)
            fresh.updated_at = self.clock.now()
            session.add(fresh)
            audit.record(
                session,
                self.clock,
                "space.edited",
                actor_id=identity.id,
                space_id=space_id,
                subject=fresh.title,
                changed={c.name: f"{c.old} -> {c.new}" for c in diff},
            )
        self.bus.publish(
            SpaceUpdated(
                space_id=space_id,
                community_id=fresh.community_id,
                changed=changed,
                changes=diff,
                actor_key=actor.key,
            )
        )
        return SpaceEdit(fresh, diff)

    async def _transition(
        self,
        actor: Actor | None,
        space_id: int,
        action: Action,
        allowed_from: set[SpaceStatus],
        to: SpaceStatus,
        *,
        reason: str | None = None,
    ) -> Space:
        if actor is not None:
            space = await self.get_in(space_id, actor.community_id)
            require(action, await self.roles(space, actor))
            actor_id = (await self.identities.ensure(actor)).id
        else:
            space = await self.get(space_id)
            actor_id = None
        now = self.clock.now()
        async with self.db.write() as session:
            fresh = await session.get(Space, space_id, with_for_update=not self.db.is_sqlite)
            assert fresh is not None
            if fresh.status not in allowed_from:
                raise refusals.not_now(fresh, action)
            if to == SpaceStatus.LIVE:
                for check in self._start_checks:
                    await check(session, fresh)
            fresh.status = to
            fresh.updated_at = now
            if to == SpaceStatus.LIVE:
                fresh.started_at = now
            elif to in (SpaceStatus.ENDED, SpaceStatus.CANCELLED):
                fresh.ended_at = now
            if reason:
                fresh.cancel_reason = reason
            session.add(fresh)
            audit.record(
                session,
                self.clock,
                f"space.{to.value}",
                actor_id=actor_id,
                space_id=space_id,
                subject=fresh.title,
                reason=reason,
            )
        return fresh

    async def start(self, actor: Actor | None, space_id: int, *, confirm: bool = False) -> Space:
        """Go live. A person starting more than `EARLY_START_MINUTES` before the announced
        time must `confirm` (ticket holders are told it started early)."""
        early = 0
        if actor is not None:
            space = await self.get_in(space_id, actor.community_id)
            ahead = space.starts_at - self.clock.now()
            early = max(0, -(-int(ahead.total_seconds()) // 60))
            if (
                early > EARLY_START_MINUTES
                and not confirm
                and space.status == SpaceStatus.SCHEDULED
            ):
                require(Action.START, await self.roles(space, actor))
                raise refusals.early_start(space, ahead)
        space = await self._transition(
            actor, space_id, Action.START, {SpaceStatus.SCHEDULED}, SpaceStatus.LIVE
        )
        self.bus.publish(
            SpaceStarted(
                space_id=space_id,
                community_id=space.community_id,
                actor_key=actor.key if actor else None,
                early_minutes=early if early > EARLY_START_MINUTES else 0,
            )
        )
        return space

    async def end(self, actor: Actor | None, space_id: int) -> Space:
        space = await self._transition(
            actor, space_id, Action.END, {SpaceStatus.LIVE}, SpaceStatus.ENDED
        )
        self.bus.publish(
            SpaceEnded(
                space_id=space_id,
                community_id=space.community_id,
                actor_key=actor.key if actor else None,
            )
        )
        return space

    async def mark_cancelled(
        self, actor: Actor | None, space_id: int, reason: str, *, confirm_live: bool = False
    ) -> Space:
        """Only the state change; `TicketService.cancel_space` also refunds. A live Space
        is cancelled (ended, and every ticket refunded) only with `confirm_live`."""
        allowed = {SpaceStatus.DRAFT, SpaceStatus.SCHEDULED}
        if confirm_live:
            allowed.add(SpaceStatus.LIVE)
        was_live = (await self.get(space_id)).status == SpaceStatus.LIVE
        space = await self._transition(
            actor,
            space_id,
            Action.CANCEL,
            allowed,
            SpaceStatus.CANCELLED,
            reason=reason or "cancelled",
        )
        self.bus.publish(
            SpaceCancelled(
                space_id=space_id,
                community_id=space.community_id,
                reason=reason,
                was_live=was_live,
                actor_key=actor.key if actor else None,
            )
        )
        return space

    async def set_cohost(self, actor: Actor, space_id: int, who: UserRef, add: bool) -> Space:
        space = await self.get_in(space_id, actor.community_id)
        require(Action.MANAGE_COHOSTS, await self.roles(space, actor))
        if space.status.is_final:
            raise refusals.not_now(space, Action.MANAGE_COHOSTS)
        target = await self.identities.ensure(actor.peer(who))
        if target.id == space.host_id:
            raise InvalidInput("The host is already on stage; pick someone else as co-host.")
        me = await self.identities.ensure(actor)
        async with self.db.write() as session:
            existing = await session.get(SpaceCohost, (space_id, target.id))
            if add:
                if existing:
                    raise Conflict(f"{target.display_name} is already a co-host.")
                count = len(
                    list(
                        await session.exec(
                            select(SpaceCohost.identity_id).where(SpaceCohost.space_id == space_id)
                        )
                    )
                )
                if count >= self.settings.max_cohosts:
                    raise LimitExceeded(
                        f"A Space can have at most {self.settings.max_cohosts} co-hosts."
                    )
                session.add(
                    SpaceCohost(
                        space_id=space_id, identity_id=target.id or 0, added_at=self.clock.now()
                    )
                )
            else:
                if not existing:
                    raise NotFound(f"{target.display_name} is not a co-host of Space #{space_id}.")
                await session.delete(existing)
            audit.record(
                session,
                self.clock,
                "cohost.added" if add else "cohost.removed",
                actor_id=me.id,
                space_id=space_id,
                subject=target.key,
            )
        self.bus.publish(
            CohostChanged(
                space_id=space_id,
                community_id=space.community_id,
                identity_key=target.key,
                added=add,
                actor_key=actor.key,
            )
        )
        return space

    def ends_at(self, space: Space) -> datetime:
        return space.starts_at + timedelta(minutes=space.duration_minutes)

    def bridge_mode(self, space: Space) -> BridgeMode:
        """Whether (and how) the Space's Discord channel is bridged into its room: the
        host's choice, else DISCORD_VOICE_BRIDGE (on: LISTEN, off: OFF)."""
        if space.voice_bridge != BridgeMode.DEFAULT:
            return space.voice_bridge
        return BridgeMode.LISTEN if self.settings.discord_voice_bridge else BridgeMode.OFF
