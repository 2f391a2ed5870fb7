"""`Coalescer` keeps bursts of updates to one Slack object (an announcement, someone's
App Home) down to one call at a time plus one to catch up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")


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
