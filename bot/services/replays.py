"""Replays: a Space's recordings, for its ticket holders, for a window after it ends.

The window is the host's (`/space edit SPACE replay_days:N`, stored on the Space) or the
deployment's default (STAGEPASS_REPLAY_DAYS); 0 keeps no replays. Inside it a holder of a
valid ticket may play the recordings (the room page with the ticket's token, the
manage-my-ticket page with its link); past it nothing is served, and `purge_expired`
(a scheduled job) deletes the files. The host and co-hosts may delete a recording at any
time, in chat (`/space replays SPACE delete:N`) or on the desk.

The files are the audio package's: it hands the core its store (`use_store`); without
audio in this process the store is empty and nothing is purged here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import structlog
from sqlmodel import col, select

from bot.actors import Actor
from bot.commands.times import format_when
from bot.errors import Conflict, NotFound
from bot.models import Space, SpaceStatus
from bot.permissions import Action, require
from bot.ports import NoRecordings, Recording, RecordingStore
from bot.services.context import Service, ServiceContext
from bot.services.spaces import SpaceService

log = structlog.get_logger(__name__)


class ReplayService(Service):
    def __init__(self, ctx: ServiceContext, spaces: SpaceService) -> None:
        super().__init__(ctx)
        self.spaces = spaces
        self.store: RecordingStore = NoRecordings()
        self.has_store = False

    def use_store(self, store: RecordingStore) -> None:
        """The recordings of this process (the audio package's installer calls this)."""
        self.store = store
        self.has_store = True

    # --- the window ------------------------------------------------------------------------

    def days(self, space: Space) -> int:
        return self.settings.replay_days if space.replay_days is None else space.replay_days

    def until(self, space: Space) -> datetime | None:
        """When the Space's replays stop: its end plus the window; None before the end."""
        if space.status != SpaceStatus.ENDED:
            return None
        ended = space.ended_at or self.spaces.ends_at(space)
        return ended + timedelta(days=self.days(space))

    def is_open(self, space: Space) -> bool:
        until = self.until(space)
        return until is not None and self.clock.now() < until and space.replays_deleted_at is None

    def check_open(self, space: Space, tz: ZoneInfo) -> None:
        """`Conflict` saying why the Space's recordings cannot be played now."""
        if space.status != SpaceStatus.ENDED:
            raise Conflict("Recordings can be replayed once the Space has ended.")
        if self.days(space) == 0:
            raise Conflict(f"The host keeps no replays of Space #{space.id}.")
        if not self.is_open(space):
            until = self.until(space)
            assert until is not None
            raise Conflict(
                f"Replays of Space #{space.id} were available until {format_when(until, tz)}."
            )

    # --- reading ---------------------------------------------------------------------------

    async def available(self, space: Space) -> list[Recording]:
        """The recordings a holder may play now: none outside the window."""
        if not self.is_open(space):
            return []
        assert space.id is not None
        return await self.store.parts(space.id)

    async def part(self, space: Space, number: int, tz: ZoneInfo) -> Recording:
        """One recording to serve: `Conflict` outside the window, `NotFound` if gone."""
        self.check_open(space, tz)
        for part in await self.available(space):
            if part.number == number:
                return part
        raise NotFound("There is no such recording.")

    async def of_host(self, actor: Actor, space_id: int) -> tuple[Space, list[Recording]]:
        """The Space's recordings for its host or a co-host (`/space replays`)."""
        space = await self.spaces.get_in(space_id, actor.community_id)
        require(Action.RECORD, await self.spaces.roles(space, actor))
        return space, await self.of_space(space)

    async def of_space(self, space: Space) -> list[Recording]:
        """Every recording still kept, whatever the window (the host's desk lists them)."""
        assert space.id is not None
        return await self.store.parts(space.id)

    # --- deleting --------------------------------------------------------------------------

    async def delete(self, actor: Actor, space_id: int, number: int) -> None:
        """The host (or a co-host) deletes one recording of their Space."""
        space = await self.spaces.get_in(space_id, actor.community_id)
        require(Action.RECORD, await self.spaces.roles(space, actor))
        await self.delete_part(space, number)

    async def delete_part(self, space: Space, number: int) -> None:
        """Delete one recording of `space` (its rights already checked: the desk)."""
        assert space.id is not None
        if not await self.store.delete(space.id, number):
            raise NotFound(f"Space #{space.id} has no recording {number}.")
        log.info("recording deleted", space_id=space.id, part=number)

    async def purge_expired(self) -> int:
        """Delete the recordings of every Space whose replay window has closed; how many
        Spaces were purged. Only where this process holds the recordings."""
        if not self.has_store:
            return 0
        now = self.clock.now()
        async with self.db.session() as session:
            ended = list(
                await session.exec(
                    select(Space).where(
                        Space.status == SpaceStatus.ENDED.value,
                        col(Space.replays_deleted_at).is_(None),
                    )
                )
            )
        purged = 0
        for space in ended:
            until = self.until(space)
            if until is None or until > now:
                continue
            assert space.id is not None
            gone = await self.store.delete(space.id)
            async with self.db.write_conn() as conn:
                await conn.execute(
                    sa.update(Space).where(col(Space.id) == space.id).values(replays_deleted_at=now)
                )
            log.info("replays purged", space_id=space.id, parts=gone)
            purged += 1
        return purged
