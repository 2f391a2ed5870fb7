"""Waiting in tests: `eventually()` polls a condition until it holds, with a generous
deadline and a failure that names what was awaited.

Wait for a condition or an event, never for a fixed time; a test about wall time injects
a `ManualClock` instead. The deadline is generous because the suite runs on loaded
machines: a condition that holds is seen at once, so only a failing test pays it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

#: How long a test waits for anything by default (seconds).
PATIENCE = 30.0


@overload
async def eventually(
    check: Callable[[], Awaitable[T]], *, what: str, within: float = ..., every: float = ...
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T], *, what: str, within: float = ..., every: float = ...
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    *,
    what: str,
    within: float = PATIENCE,
    every: float = 0.01,
) -> Any:
    """Call `check` (plain or async) until it returns something truthy, and return that;
    fail with "timed out after N s waiting for <what>" (and the last value) otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(
                f"timed out after {within:g} s waiting for {what} (last: {value!r})"
            )
        await asyncio.sleep(every)
