"""Listeners over a Space: each open room's listener count, reported to the core when it
changes, so the host's desk can draw it (`HostDeskService.record_listeners`).

Sampled rather than pushed on every join and leave: a burst of joins is one report, and
the room engine stays free of the core. Only the node that mixes a room reports it (an
edge counts its own listeners only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from audio.registry import RoomRegistry

logger = logging.getLogger(__name__)

SAMPLE_SECONDS = 2.0

Report = Callable[[int, int], Awaitable[None]]
"""``report(space_id, count)``."""


class ListenerLog:
    def __init__(self, registry: RoomRegistry, report: Report) -> None:
        self.registry = registry
        self.report = report
        self._last: dict[int, int] = {}

    async def sample(self) -> None:
        """Report every count that changed since the last sample; a room that closed with
        listeners in it reports 0."""
        if self.registry.relays:
            return
        now = {room.space_id: room.listener_count for room in self.registry}
        for space_id, count in now.items():
            if self._last.get(space_id) != count:
                await self.report(space_id, count)
        for space_id in self._last.keys() - now.keys():
            if self._last[space_id]:
                await self.report(space_id, 0)
        self._last = now

    async def run(self, stop: asyncio.Event, every: float = SAMPLE_SECONDS) -> None:
        while not stop.is_set():
            try:
                await self.sample()
            except Exception:
                logger.exception("recording listener counts failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
