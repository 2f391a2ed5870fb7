"""`Coalescer`: bursts of updates to one thing (an announcement, someone's App Home, the
scheduler's pass over its jobs) cost one run at a time plus one to catch up.

A leaf module (standard library and structlog only), so every layer may import it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable

import structlog

log = structlog.get_logger(__name__)


class Coalescer:
    """Runs `work` for a key at most once at a time; calls that arrive while it runs make
    it run exactly once more afterwards, so the last call's state always lands.

    The caller that started the run does the catching up; the others return at once. A
    failed run is logged as `failed` (with the coalescer's name and the key), and the
    catch-up still happens."""

    def __init__(self, name: str, *, failed: str = "update failed") -> None:
        self.name = name
        self.failed = failed
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
                    log.exception(self.failed, coalescer=self.name, key=repr(key))
                if not self._dirty[key]:
                    return
                self._dirty[key] = False
        finally:
            del self._dirty[key]

    @property
    def busy(self) -> bool:
        """Whether a run is in progress for any key."""
        return bool(self._dirty)
