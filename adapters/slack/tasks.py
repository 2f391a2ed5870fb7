"""The work the adapter does after it has acknowledged Slack, and who owns it.

Slack wants an answer within 3 s; what takes longer (the core, the Web API) runs in a
named task owned by `Tasks`, whose failures are logged in one place and which `close()`
drains and then cancels. `Coalescer` keeps bursts of updates to one Slack object (an
announcement, someone's App Home) down to one call at a time plus one to catch up.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")


class Tasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._seq = itertools.count(1)
        self.failures = 0

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.create_task(coro, name=f"slack:{name}#{next(self._seq)}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.failures += 1
            log.error("slack task failed", task=task.get_name(), exc_info=error)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def idle(self) -> None:
        """Wait until no task is running (tasks may start more)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, grace: float = 10.0) -> None:
        """Let running work finish for `grace` seconds, then cancel what is left."""
        try:
            await asyncio.wait_for(self.idle(), grace)
        except TimeoutError:
            pending = list(self._tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


class Coalescer:
    """Runs `work` for a key at most once at a time; calls that arrive while it runs make
    it run exactly once more afterwards, so the last call's state always lands."""

    def __init__(self) -> None:
        self._dirty: dict[Hashable, bool] = {}

    async def run(self, key: Hashable, work: Callable[[], Awaitable[None]]) -> None:
        if key in self._dirty:
            self._dirty[key] = True
            return
        self._dirty[key] = False
        try:
            while True:
                try:
                    await work()
                except Exception:
                    log.exception("slack update failed", key=repr(key))
                if not self._dirty[key]:
                    return
                self._dirty[key] = False
        finally:
            del self._dirty[key]

    @property
    def busy(self) -> bool:
        return bool(self._dirty)
