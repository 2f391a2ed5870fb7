"""Reminder subscriptions. Delivery (when and how often) belongs to the scheduler."""

from __future__ import annotations

from sqlmodel import select

from bot.actors import Actor
from bot.errors import Conflict
from bot.events import ReminderSet
from bot.models import Identity, Reminder
from bot.services import audit, refusals
from bot.services.context import Service, ServiceContext
from bot.services.spaces import SpaceService


class ReminderService(Service):
    def __init__(self, ctx: ServiceContext, spaces: SpaceService) -> None:
        super().__init__(ctx)
        self.spaces = spaces

    async def set(self, actor: Actor, space_id: int, on: bool) -> bool:
        space = await self.spaces.get_in(space_id, actor.community_id)
        if on and space.status.is_final:
            raise refusals.no_reminders(space)
        me = await self.identities.ensure(actor)
        changed = await self.subscribe(me, space_id, on)
        if not changed:
            raise Conflict("You will already be reminded." if on else "You had no reminder set.")
        return changed

    async def subscribe(self, identity: Identity, space_id: int, on: bool) -> bool:
        """Idempotent: True when something changed."""
        assert identity.id is not None
        space = await self.spaces.get(space_id)
        async with self.db.write() as session:
            existing = await session.get(Reminder, (space_id, identity.id))
            if on == (existing is not None):
                return False
            if on:
                session.add(
                    Reminder(
                        space_id=space_id, identity_id=identity.id, created_at=self.clock.now()
                    )
                )
            elif existing is not None:
                await session.delete(existing)
            audit.record(
                session,
                self.clock,
                "reminder.on" if on else "reminder.off",
                actor_id=identity.id,
                space_id=space_id,
            )
        self.bus.publish(
            ReminderSet(
                space_id=space_id,
                community_id=space.community_id,
                identity_key=identity.key,
                on=on,
                actor_key=identity.key,
            )
        )
        return True

    async def subscribers(self, space_id: int) -> list[int]:
        async with self.db.session() as session:
            return list(
                await session.exec(
                    select(Reminder.identity_id).where(Reminder.space_id == space_id)
                )
            )
