"""Fixtures for the scheduler: a `Scheduling` on the test core (manual clock), attached
to its events and registered for /slot, never electing itself (tests call `run_due`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from adapters.shell.chat import Chat
from bot.clock import ManualClock
from bot.commands.handlers import Dispatcher
from bot.commands.types import SlotCommand
from bot.core import Core
from scheduler.commands import SlotCommands
from scheduler.service import Scheduling

# a Monday, in winter time for Europe/Berlin (UTC+1) and America/New_York (UTC-5)
START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def scheduling(core: Core, dispatcher: Dispatcher) -> AsyncIterator[Scheduling]:
    scheduling = Scheduling(core)
    await scheduling.open()
    scheduling.attach()
    dispatcher.register(SlotCommand, SlotCommands(scheduling.slots, dispatcher).handle)
    yield scheduling
    await core.bus.drain()
    await scheduling.close()


@pytest.fixture
async def room(chat: Chat, scheduling: Scheduling) -> Chat:
    """The in-memory chat with the scheduler installed."""
    return chat
