"""`DiscordBridges`: the running bridges of this process, one per live Space with a channel.

The hook between the Discord adapter (which knows a Space's Stage channel and holds the
discord.py client) and the audio rooms (which `RoomRegistry` holds). Each bridge runs as
an owned, named task; `stop` and `aclose` end them and wait. A bridge's failures never
close the room: the room keeps running without Discord.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord

from audio.bridge.bridge import VoiceBridge, on_stage
from audio.bridge.speakers import Seat, nobody
from audio.registry import RoomRegistry
from bot.tasks import TaskGroup

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Running:
    bridge: VoiceBridge
    stop: asyncio.Event
    task: asyncio.Task[None]


SpaceSeats = Callable[[int, discord.Member], Awaitable[Seat]]
"""``(space_id, member) -> Seat``: what a Space says about a member of its channel."""


async def _nobody(space_id: int, member: discord.Member) -> Seat:
    return await nobody(member)


class DiscordBridges:
    """The running bridges. ``seats`` is set by the Discord adapter (it asks the core);
    until then nobody in a bridged channel is admitted to the room."""

    def __init__(self, registry: RoomRegistry) -> None:
        self._registry = registry
        self.seats: SpaceSeats = _nobody
        self._running: dict[int, _Running] = {}
        self._tasks = TaskGroup("discord-bridges")

    def get(self, space_id: int) -> VoiceBridge | None:
        running = self._running.get(space_id)
        return running.bridge if running is not None else None

    async def start(
        self, space_id: int, channel: discord.VoiceChannel | discord.StageChannel
    ) -> VoiceBridge:
        """Bridge ``channel`` into the Space's room (opened if needed); idempotent."""
        running = self._running.get(space_id)
        if running is not None and not running.task.done():
            return running.bridge
        room = await self._registry.open(space_id)
        seats = functools.partial(self.seats, space_id)
        bridge = VoiceBridge(room, on_stage(channel), seats=seats)
        stop = asyncio.Event()
        task = self._tasks.spawn(bridge.run(channel, stop), name=f"space-{space_id}")
        self._running[space_id] = _Running(bridge, stop, task)
        logger.info("bridging space %s with Discord channel %s", space_id, channel.id)
        return bridge

    def lists(self, space_id: int, user_id: int) -> bool:
        """Whether the Space's bridge has the room list this Discord member now."""
        bridge = self.get(space_id)
        return bridge is not None and bridge.roster.identity_key(user_id) is not None

    async def reseat(self, space_id: int, user_id: int) -> bool:
        """Ask the Space about a member of its bridged channel again now (their right to
        listen changed); False if no bridge runs or they are not in its channel."""
        running = self._running.get(space_id)
        return running is not None and await running.bridge.reseat(user_id)

    async def stop(self, space_id: int) -> bool:
        """Leave the channel and detach from the room; False if no bridge ran."""
        running = self._running.pop(space_id, None)
        if running is None:
            return False
        running.stop.set()
        await asyncio.gather(running.task, return_exceptions=True)
        return True

    async def aclose(self) -> None:
        for space_id in list(self._running):
            await self.stop(space_id)
        await self._tasks.close()
