"""Who owns a background task: `TaskGroup`.

Every task the house starts belongs to a group: it is named ``<group>:<name>#<n>``, its
failure is logged once with the context it was started with (and counted in `failures`),
and `close()` lets running work finish for a grace period, then cancels and awaits the
rest. A leaf module (standard library and structlog only), so every layer may import it,
audio's engine included.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")


class TaskGroup:
    """A set of named tasks that live no longer than their owner.

    Unlike `asyncio.TaskGroup` one failure does not cancel the others: it is logged as
    `failed` (with the group, the task's name and the `context` given to `spawn`) and the
    rest go on."""

    def __init__(self, name: str, *, failed: str = "task failed") -> None:
        self.name = name
        self.failed = failed
        self.failures = 0
        self.closed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._seq = itertools.count(1)

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def busy(self) -> bool:
        """Whether any task is still running."""
        return bool(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str, **context: Any) -> asyncio.Task[T]:
        """Run `coro` as an owned task; `context` goes into the log line if it fails.
        Raises `RuntimeError` once the group is closed (the coroutine is closed unrun)."""
        if self.closed:
            coro.close()
            raise RuntimeError(f"{self.name} is closed; cannot start {name}")
        task = asyncio.get_running_loop().create_task(
            coro, name=f"{self.name}:{name}#{next(self._seq)}"
        )
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._forget(done, context))
        return task

    def _forget(self, task: asyncio.Task[Any], context: dict[str, Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.failures += 1
            log.error(self.failed, group=self.name, task=task.get_name(), exc_info=error, **context)

    async def idle(self) -> None:
        """Wait until no task is running (tasks may start more; the caller's own task,
        if it is one of ours, is not waited for)."""
        current = asyncio.current_task()
        while others := [t for t in self._tasks if t is not current]:
            await asyncio.gather(*others, return_exceptions=True)

    async def close(self, grace: float = 0.0) -> None:
        """Refuse new tasks, let running ones finish for `grace` seconds, then cancel
        what is left (except the caller's own task) and wait until all have ended."""
        self.closed = True
        if grace > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self.idle()
        current = asyncio.current_task()
        left = [t for t in self._tasks if t is not current]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
