"""The scheduler: reminders, recurring slots, and the Space lifecycle on the clock.

`install(stagepass)` is the package's one entry point (the wiring calls it): it starts
APScheduler paused on the project's database, follows the core's events to keep each
Space's jobs in step, adds the calendar rules to Space creation, takes over `/slot`, and
adds the background job that elects this process as the scheduler's owner (or standby).

    Scheduling          scheduler/service.py   jobs, election, run_due()
    ReminderSender      scheduler/reminders.py exactly-once reminders
    Lifecycle           scheduler/lifecycle.py auto start / cancel / end
    SlotService         scheduler/slots.py     booking, materialising, removing slots
    SchedulePolicy      scheduler/policy.py    horizon, per-host limit, overlaps
    Recurrence          scheduler/recurrence.py the weekly rule, DST-safe
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

from bot.commands.types import SlotCommand
from scheduler.commands import SlotCommands
from scheduler.service import DueWork, Scheduling

if TYPE_CHECKING:
    from bot.wiring import Stagepass

__all__ = ["DueWork", "Scheduling", "install", "installed"]

# app id -> (the app, weakly; its Scheduling). The weak reference guards against a new
# app that happens to get the id of one that is gone.
_INSTALLED: dict[int, tuple[weakref.ref[Stagepass], Scheduling]] = {}


async def install(stagepass: Stagepass) -> None:
    """Add the scheduler to `stagepass` (nothing when STAGEPASS_SCHEDULER_ENABLED=false)."""
    if not stagepass.settings.scheduler_enabled or installed(stagepass) is not None:
        return
    scheduling = Scheduling(stagepass.core)
    await scheduling.open()
    scheduling.attach()
    commands = SlotCommands(scheduling.slots, stagepass.dispatcher)
    stagepass.dispatcher.register(SlotCommand, commands.handle)
    _INSTALLED[id(stagepass)] = (weakref.ref(stagepass), scheduling)

    async def scheduler(stop: asyncio.Event) -> None:
        try:
            await scheduling.run(stop)
        finally:
            _INSTALLED.pop(id(stagepass), None)

    stagepass.background.append(scheduler)


def installed(stagepass: Stagepass) -> Scheduling | None:
    """The `Scheduling` that `install` added to `stagepass`, if any."""
    found = _INSTALLED.get(id(stagepass))
    if found is None or found[0]() is not stagepass:
        return None
    return found[1]
