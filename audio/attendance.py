"""Listeners over a Space: each open room's listener count, reported to the core when it
changes, so the host's desk can draw it (`HostDeskService.record_listeners`).

Sampled rather than pushed on every join and leave: a burst of joins is one report, and
the room engine stays free of the core. Only the node that mixes a room (its origin)
reports to the core; with audio edges (`audio.edges`) every edge tells the origins its own
count of each room on NATS at every sample, and the origin reports the sum:

    stagepass.audio.<space>.listeners   {"node": "<edge link id>", "count": 3}

An edge repeats its count at every sample while the room has listeners there (a heartbeat,
one tiny message per room every `SAMPLE_SECONDS`), and says 0 once when they are gone; an
origin forgets an edge's count it has not heard for `EDGE_COUNT_TTL`, so an edge that died
stops counting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from audio.registry import RoomRegistry

logger = logging.getLogger(__name__)

SAMPLE_SECONDS = 2.0
EDGE_COUNT_TTL = 3 * SAMPLE_SECONDS
"""How long an origin keeps an edge's last count without hearing it again, seconds."""
LISTENERS_SUBJECTS: Final = "stagepass.audio.*.listeners"
"""Every Space's listener-count subject (origins follow them all)."""

Report = Callable[[int, int], Awaitable[None]]
"""``report(space_id, count)``."""


def listeners_subject(space_id: int) -> str:
    return f"stagepass.audio.{space_id}.listeners"


def encode_count(node: str, count: int) -> bytes:
    return json.dumps({"node": node, "count": count}, separators=(",", ":")).encode()


def decode_count(subject: str, data: bytes) -> tuple[int, str, int]:
    """``(space_id, node, count)`` of a listener-count message; ValueError if it is not one."""
    parts = subject.split(".")
    if len(parts) != 4 or parts[3] != "listeners" or not parts[2].isdigit():
        raise ValueError(f"not a listener-count subject: {subject[:80]!r}")
    try:
        body = json.loads(data)
        node, count = body["node"], body["count"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a listener-count message: {data[:80]!r}") from exc
    if not isinstance(node, str) or not node or not isinstance(count, int) or count < 0:
        raise ValueError(f"not a listener-count message: {data[:80]!r}")
    return int(parts[2]), node, count


@dataclass(slots=True)
class _Heard:
    count: int
    at: float


class EdgeCounts:
    """An origin's tally of the listeners edges serve: per Space, each edge's last count,
    while it is fresher than ``ttl`` seconds of ``clock``."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, ttl: float = EDGE_COUNT_TTL
    ) -> None:
        self._clock = clock
        self._ttl = ttl
        self._heard: dict[int, dict[str, _Heard]] = {}

    def heard(self, space_id: int, node: str, count: int) -> None:
        edges = self._heard.setdefault(space_id, {})
        if count:
            edges[node] = _Heard(count, self._clock())
        else:
            edges.pop(node, None)
            if not edges:
                del self._heard[space_id]

    def forget(self, space_id: int) -> None:
        """The room closed: nobody listens to it anywhere."""
        self._heard.pop(space_id, None)

    def count(self, space_id: int) -> int:
        """The listeners on edges in ``space_id``'s room now (stale counts dropped)."""
        edges = self._heard.get(space_id)
        if not edges:
            return 0
        oldest = self._clock() - self._ttl
        for node in [n for n, heard in edges.items() if heard.at < oldest]:
            del edges[node]
        return sum(heard.count for heard in edges.values())


class ListenerLog:
    """Samples a registry's rooms. On an origin (or a node without edges) it reports each
    room's count, plus what ``edges`` says the edges serve, to ``report`` when it changed;
    on an edge it hands every count to ``share`` instead (the origin reports)."""

    def __init__(
        self,
        registry: RoomRegistry,
        report: Report,
        *,
        edges: Callable[[int], int] | None = None,
        share: Report | None = None,
    ) -> None:
        self.registry = registry
        self.report = report
        self.edges = edges
        self.share = share
        self._last: dict[int, int] = {}

    async def sample(self) -> None:
        """Report every count that changed since the last sample; a room that closed with
        listeners in it reports 0."""
        if self.registry.relays:
            await self._share()
            return
        extra = self.edges or (lambda _space_id: 0)
        now = {room.space_id: room.listener_count + extra(room.space_id) for room in self.registry}
        for space_id, count in now.items():
            if self._last.get(space_id) != count:
                await self.report(space_id, count)
        for space_id in self._last.keys() - now.keys():
            if self._last[space_id]:
                await self.report(space_id, 0)
        self._last = now

    async def _share(self) -> None:
        """An edge: every room's count again while it has listeners, 0 once when not."""
        if self.share is None:
            return
        now = {room.space_id: room.listener_count for room in self.registry}
        for space_id, count in now.items():
            if count or self._last.get(space_id):
                await self.share(space_id, count)
        for space_id in self._last.keys() - now.keys():
            if self._last[space_id]:
                await self.share(space_id, 0)
        self._last = now

    async def run(self, stop: asyncio.Event, every: float = SAMPLE_SECONDS) -> None:
        while not stop.is_set():
            try:
                await self.sample()
            except Exception:
                logger.exception("recording listener counts failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
