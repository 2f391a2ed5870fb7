"""The scheduler: reminders, recurring slots, and the Space lifecycle on the clock.

`install(host)` is the package's installer (`package`, the ``stagepass.packages`` entry
point; after billing, whose gateway checks a paid slot's host): it starts
APScheduler paused on the project's database, follows the core's events to keep each
Space's jobs in step, adds the calendar rules to Space creation, takes over `/slot`, and
adds the background job that elects this process as the scheduler's owner (or standby).
It offers its `Scheduling` as the ``"scheduling"`` service (`installed(host)`).

    Scheduling          scheduler/service.py   jobs, election, run_due()
    ReminderSender      scheduler/reminders.py exactly-once reminders
    Lifecycle           scheduler/lifecycle.py auto start / cancel / end
    SlotService         scheduler/slots.py     booking, materialising, removing slots
    SchedulePolicy      scheduler/policy.py    horizon, per-host limit, overlaps
    Recurrence          scheduler/recurrence.py the weekly rule, DST-safe
    ReminderDelivery,   scheduler/models.py    the scheduler's tables (and APScheduler's)
    SlotSeries, ...
    recurrence_of       scheduler/series.py    the Recurrence a stored SlotSeries means
    SlotCommands        scheduler/commands.py  /slot add|list|remove
    (messages)          scheduler/messages.py  reminders, start prompts, slot notices
    (jobs)              scheduler/jobs.py      what APScheduler stores: functions, plain ids
    ProjectJobStore,    scheduler/jobstore.py  APScheduler 3 on our async engine
    BridgedScheduler
    PostgresLock,       scheduler/ownership.py one process runs the jobs (elected)
    FileLock
"""

from __future__ import annotations

import asyncio

from bot.commands.types import SlotCommand
from bot.host import Host, Package
from scheduler.commands import SlotCommands
from scheduler.service import DueWork, Scheduling

__all__ = ["DueWork", "Scheduling", "install", "installed", "package"]

SERVICE = "scheduling"


async def install(host: Host) -> None:
    """Add the scheduler to `host` (nothing when STAGEPASS_SCHEDULER_ENABLED=false)."""
    if not host.settings.scheduler_enabled or installed(host) is not None:
        return
    scheduling = Scheduling(host.core)
    await scheduling.open()
    scheduling.attach()
    commands = SlotCommands(scheduling.slots, host.dispatcher)
    host.dispatcher.register(SlotCommand, commands.handle)
    host.provide(SERVICE, scheduling)

    async def scheduler(stop: asyncio.Event) -> None:
        await scheduling.run(stop)

    host.add_background(scheduler)


def installed(host: Host) -> Scheduling | None:
    """The `Scheduling` that `install` added to `host`, if any."""
    return host.service(SERVICE, Scheduling)


package = Package("scheduler", install, after=("billing",))
"""The ``stagepass.packages`` entry point."""
