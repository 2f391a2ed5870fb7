"""The functions APScheduler stores, by reference, with plain ids as arguments.

A stored job is `scheduler.jobs:remind(12, 30)`: nothing but importable names and ids,
so it survives restarts and upgrades. Each function hands over to the `Scheduling` that
owns this process, whose methods are plain coroutines (tests call those directly).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scheduler.service import Scheduling

_owner: Scheduling | None = None


def bind(owner: Scheduling) -> None:
    global _owner
    _owner = owner


def unbind(owner: Scheduling) -> None:
    global _owner
    if _owner is owner:
        _owner = None


async def _run(work: Callable[[Scheduling], Awaitable[Any]]) -> None:
    owner = _owner
    if owner is None:
        raise RuntimeError("a scheduler job ran in a process that does not own the scheduler")
    task = asyncio.current_task()
    if task is not None:
        owner.inflight.add(task)
    try:
        await work(owner)
    finally:
        if task is not None:
            owner.inflight.discard(task)


async def remind(space_id: int, offset: int) -> None:
    await _run(lambda s: s.reminders.submit(space_id, offset))


async def start(space_id: int) -> None:
    await _run(lambda s: s.lifecycle.start(space_id))


async def abandon(space_id: int) -> None:
    await _run(lambda s: s.lifecycle.abandon(space_id))


async def end(space_id: int) -> None:
    await _run(lambda s: s.lifecycle.end(space_id))


async def expire_holds() -> None:
    await _run(lambda s: s.core.tickets.expire_holds())


async def purge_replays() -> None:
    """Delete the recordings whose replay window has closed (`ReplayService`)."""
    await _run(lambda s: s.core.replays.purge_expired())


async def materialise_slots() -> None:
    await _run(lambda s: s.slots.materialise_all())


async def sweep() -> None:
    """The catch-up net: whatever is due by now and not done (see `Scheduling.run_due`)."""
    await _run(lambda s: s.catch_up())
