"""Where a Space was announced in chat, as links a browser can open: the public page's
call to action ("Open in Discord", "Open in Slack").

The core does not know the platforms' tables: each chat adapter registers a finder that
answers, for a Space, the link to its announcement there (a Discord message URL, a Slack
channel redirect), or None. A finder that fails is logged and left out: the page still
shows, with the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AnnouncementLink:
    platform: str  # as people name it: "Discord", "Slack"
    url: str


AnnouncementFinder = Callable[[int], Awaitable[AnnouncementLink | None]]


class AnnouncementLinks:
    """The registered finders (one per chat adapter installed)."""

    def __init__(self) -> None:
        self._finders: list[AnnouncementFinder] = []

    def register(self, finder: AnnouncementFinder) -> None:
        self._finders.append(finder)

    async def of(self, space_id: int) -> list[AnnouncementLink]:
        """Every platform's link to the Space's announcement, in registration order."""
        found = await asyncio.gather(
            *(finder(space_id) for finder in self._finders), return_exceptions=True
        )
        links = []
        for result in found:
            if isinstance(result, BaseException):
                log.warning("announcement link failed", space_id=space_id, error=repr(result))
            elif result is not None:
                links.append(result)
        return links
