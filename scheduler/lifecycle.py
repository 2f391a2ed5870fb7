"""A Space's life on the clock: go live at the start (or prompt the host who starts by
hand), cancel and refund one never started, end one that ran past its time.

Each step reads the Space again and acts only when its time has come by the injected
clock and its state still calls for it, so a stale job, a second run or the catch-up
sweep does nothing. `plan()` says which jobs a Space needs in its current state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlmodel import col, select

from bot.core import Core
from bot.errors import Conflict, NotFound
from bot.models import Space, SpaceStatus
from scheduler import messages
from scheduler.reminders import ReminderSender

log = structlog.get_logger(__name__)

_EARLY = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Step:
    """One timed step of a Space: the job `kind` to run at `at` (UTC)."""

    kind: str  # remind:<offset> | start | abandon | end
    at: datetime


class Lifecycle:
    def __init__(self, core: Core, reminders: ReminderSender) -> None:
        self.core = core
        self.settings = core.settings
        self.reminders = reminders

    # --- when ----------------------------------------------------------------------------

    def abandon_at(self, space: Space) -> datetime:
        return space.starts_at + timedelta(hours=self.settings.auto_cancel_after_hours)

    def end_at(self, space: Space) -> datetime:
        began = space.started_at or space.starts_at
        return began + timedelta(minutes=space.duration_minutes + self.settings.end_grace_minutes)

    def plan(self, space: Space, now: datetime) -> list[Step]:
        """The steps still ahead of `space` (reminders only while within their grace)."""
        steps: list[Step] = []
        if space.status not in (SpaceStatus.SCHEDULED, SpaceStatus.LIVE):
            return steps
        grace = self.reminders.grace
        for offset in self.reminders.offsets():
            due = space.starts_at - timedelta(minutes=offset)
            if due >= now - grace:
                steps.append(Step(f"remind:{offset}", due))
        if space.status == SpaceStatus.SCHEDULED:
            steps.append(Step("start", space.starts_at))
            steps.append(Step("abandon", self.abandon_at(space)))
        else:
            steps.append(Step("end", self.end_at(space)))
        return steps

    # --- doing ---------------------------------------------------------------------------

    async def _get(self, space_id: int) -> Space | None:
        try:
            return await self.core.spaces.get(space_id)
        except NotFound:
            return None

    async def start(self, space_id: int) -> str:
        """At the start time: go live, or prompt a host who starts by hand."""
        space = await self._get(space_id)
        now = self.core.clock.now()
        if space is None or space.status != SpaceStatus.SCHEDULED:
            return "nothing"
        if now < space.starts_at - _EARLY:
            return "early"
        if now >= self.abandon_at(space):
            return await self.abandon(space_id)
        if space.manual_start:
            await self.reminders.deliver(space_id, 0, hosts_only=True)
            return "prompted"
        try:
            await self.core.spaces.start(None, space_id)
        except Conflict:
            return "nothing"  # started (or cancelled) meanwhile
        log.info("space started on time", space_id=space_id)
        return "started"

    async def abandon(self, space_id: int) -> str:
        """A Space never started some hours after its start: cancel and refund it."""
        space = await self._get(space_id)
        now = self.core.clock.now()
        if space is None or space.status != SpaceStatus.SCHEDULED:
            return "nothing"
        if now < self.abandon_at(space) - _EARLY:
            return "early"
        reason = messages.abandoned_reason(self.settings.auto_cancel_after_hours)
        try:
            done, failed = await self.core.tickets.cancel_space(None, space_id, reason)
        except Conflict:
            return "nothing"
        log.info("space abandoned", space_id=space_id, refunded=done, failed=failed)
        return "cancelled"

    async def end(self, space_id: int) -> str:
        """A live Space past its duration plus the grace: end it."""
        space = await self._get(space_id)
        now = self.core.clock.now()
        if space is None or space.status != SpaceStatus.LIVE:
            return "nothing"
        if now < self.end_at(space) - _EARLY:
            return "early"  # extended meanwhile: its moved job ends it
        try:
            await self.core.spaces.end(None, space_id)
        except Conflict:
            return "nothing"
        log.info("space ended on time", space_id=space_id)
        return "ended"

    async def due(self, now: datetime) -> list[tuple[str, int]]:
        """Every lifecycle step whose time has come: (kind, space id)."""
        found: list[tuple[str, int]] = []
        async with self.core.db.session() as session:
            scheduled = await session.exec(
                select(Space).where(
                    Space.status == SpaceStatus.SCHEDULED.value,
                    col(Space.starts_at) <= now + _EARLY,
                )
            )
            for space in scheduled:
                assert space.id is not None
                if now >= self.abandon_at(space) - _EARLY:
                    found.append(("abandon", space.id))
                elif not space.manual_start:
                    found.append(("start", space.id))
                # a manual start's prompt is a host reminder: the reminder sweep has it
            live = await session.exec(select(Space).where(Space.status == SpaceStatus.LIVE.value))
            for space in live:
                assert space.id is not None
                if now >= self.end_at(space) - _EARLY:
                    found.append(("end", space.id))
        return found
