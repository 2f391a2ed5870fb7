"""Small helpers for the scheduler tests."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select

from adapters.shell.chat import Chat
from bot.clock import ManualClock
from bot.core import Core
from scheduler.models import ReminderDelivery
from scheduler.service import DueWork, Scheduling


async def say_ok(chat: Chat, who: str, text: str) -> str:
    reply = await chat.say(who, text)
    assert not reply.error, reply.text
    return reply.text


async def at(clock: ManualClock, scheduling: Scheduling, when: datetime) -> DueWork:
    """Move the clock to `when` and do the due work, as the owner would."""
    clock.set(when)
    work = await scheduling.run_due()
    await scheduling.core.bus.drain()
    return work


async def deliveries(core: Core) -> list[tuple[int, int, int, str]]:
    async with core.db.session() as session:
        rows = await session.exec(select(ReminderDelivery).order_by(sa.text("id")))
        return [(r.space_id, r.identity_id, r.offset_minutes, r.role) for r in rows]


def reminders_of(chat: Chat, who: str) -> list[str]:
    """The reminders `who` received (not the ticket, refund or other notices)."""
    return [
        m.splitlines()[0]
        for m in chat.dms(who)
        if not m.startswith(("Your ticket", "Your recurring"))
        and ("starts" in m or "live now" in m or "time to start" in m)
    ]
