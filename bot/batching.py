"""Group commit: requests that arrive together are decided together.

A `GroupCommit` puts every request in one queue; a single owned task takes everything that is
waiting and hands the batch to `decide`, which answers each request with a result or an
exception (usually in ONE transaction for the whole batch). Under load a burst costs a
handful of statements, not a handful per request; alone, a request waits for nobody.

- A batch that meets a transient database error (a PostgreSQL deadlock or serialization
  failure: another process won a lock) is decided again, up to three times.
- A batch that fails otherwise is decided again one request at a time, so one bad
  request fails alone instead of taking its neighbours with it.
- Requests whose caller went away (cancelled) are dropped before deciding.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import sqlalchemy as sa
import structlog

from bot.errors import Conflict

log = structlog.get_logger(__name__)

Request = TypeVar("Request")
Result = TypeVar("Result")
Decide = Callable[[list[Request]], Awaitable[Sequence[Result | Exception]]]

ATTEMPTS = 3
_TRANSIENT = {"40P01", "40001"}  # PostgreSQL: deadlock detected, serialization failure


def is_transient(exc: BaseException) -> bool:
    """A failure that the same work, run again, will not meet (another process won)."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    return code in _TRANSIENT


@dataclass(slots=True)
class _Waiting(Generic[Request, Result]):
    request: Request
    future: asyncio.Future[Result] = field(repr=False)


class GroupCommit(Generic[Request, Result]):
    def __init__(self, name: str, decide: Decide[Request, Result], *, max_batch: int = 500) -> None:
        self.name = name
        self.decide = decide
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Waiting[Request, Result]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0  # for the benchmarks' curiosity
        self.requests = 0

    async def submit(self, request: Request) -> Result:
        """Queue `request`; its result, or the exception `decide` gave it."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name=self.name)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Waiting(request, future))
        return await future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        left = []
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
        _fail(left)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            waiting = [w for w in batch if not w.future.cancelled()]
            if not waiting:
                continue
            try:
                outcomes = await self._decide([w.request for w in waiting])
            except asyncio.CancelledError:  # closing mid-batch: nobody may wait forever
                _fail(waiting)
                raise
            if isinstance(outcomes, Exception) and len(waiting) > 1:
                log.warning(
                    "batch failed; deciding its requests one by one",
                    batcher=self.name,
                    requests=len(waiting),
                    error=str(outcomes).splitlines()[0] if str(outcomes) else repr(outcomes),
                )
                outcomes = [await self._decide_one(w.request) for w in waiting]
            elif isinstance(outcomes, Exception):
                outcomes = [outcomes]
            self.batches += 1
            self.requests += len(waiting)
            for item, outcome in zip(waiting, outcomes, strict=True):
                if item.future.done():
                    continue
                if isinstance(outcome, Exception):
                    item.future.set_exception(outcome)
                else:
                    item.future.set_result(outcome)

    async def _decide_one(self, request: Request) -> Result | Exception:
        outcome = await self._decide([request])
        return outcome if isinstance(outcome, Exception) else outcome[0]

    async def _decide(self, requests: list[Request]) -> Sequence[Result | Exception] | Exception:
        """`decide`, retried on transient errors; the exception when the batch failed."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                outcomes = await self.decide(requests)
            except Exception as exc:
                if attempt < ATTEMPTS and is_transient(exc):
                    log.warning(
                        "batch retried",
                        batcher=self.name,
                        requests=len(requests),
                        attempt=attempt,
                        error=str(exc).splitlines()[0],
                    )
                    continue
                if len(requests) == 1:
                    log.exception("request failed", batcher=self.name)
                return exc
            if len(outcomes) != len(requests):
                raise AssertionError(f"{self.name}: {len(outcomes)} outcomes for {len(requests)}")
            return outcomes
        raise AssertionError("unreachable")


def _fail(waiting: Sequence[_Waiting[Request, Result]]) -> None:
    for item in waiting:
        if not item.future.done():
            item.future.set_exception(Conflict("Stagepass is shutting down; try again."))
