"""Where a Space's recordings live on disk: one directory per Space, one file per recording.

    <root>/space-<id>/part-001.ogg        finished (the name a `Recorder` renames to)
    <root>/space-<id>/part-002.ogg.partial still being written, or cut short by a crash

A host may start and stop recording several times in one Space; each run is a numbered
part, and listeners replay the parts in order. Only finished parts are listed. No table is
needed: the directory is the index, and a part's number never changes.

The methods touch the file system: call them off the event loop (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from audio.recorder import PARTIAL_SUFFIX
from bot.ports import Recording

_PART: Final = re.compile(r"^part-(\d{3,6})\.ogg$")
_ANY_PART: Final = re.compile(r"^part-(\d{3,6})\.ogg(" + re.escape(PARTIAL_SUFFIX) + ")?$")


@dataclass(frozen=True, slots=True)
class RecordingPart:
    """One finished recording of a Space."""

    number: int
    path: Path
    size: int
    """Bytes."""


class RecordingStore:
    """The recordings directory (``STAGEPASS_RECORDING_DIR``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def directory(self, space_id: int) -> Path:
        return self.root / f"space-{int(space_id)}"

    def next_path(self, space_id: int) -> Path:
        """A fresh part's final path (numbers count on past every file, partial ones too)."""
        directory = self.directory(space_id)
        taken = [
            int(match.group(1))
            for match in (_ANY_PART.match(p.name) for p in _listing(directory))
            if match is not None
        ]
        return directory / f"part-{max(taken, default=0) + 1:03d}.ogg"

    def parts(self, space_id: int) -> list[RecordingPart]:
        """The Space's finished recordings, oldest first."""
        found = []
        for path in _listing(self.directory(space_id)):
            match = _PART.match(path.name)
            if match is not None and path.is_file():
                found.append(RecordingPart(int(match.group(1)), path, path.stat().st_size))
        return sorted(found, key=lambda part: part.number)

    def part(self, space_id: int, number: int) -> RecordingPart | None:
        """One finished part, or None."""
        return next((p for p in self.parts(space_id) if p.number == number), None)

    def delete(self, space_id: int, number: int | None = None) -> int:
        """Delete one finished part, or (`number` None) every finished part of the Space;
        how many files went. A part being written is left alone."""
        gone = 0
        for part in self.parts(space_id):
            if number is None or part.number == number:
                part.path.unlink(missing_ok=True)
                gone += 1
        return gone


class StoreRecordings:
    """The store as the core's `bot.ports.RecordingStore` (its replays), off the loop."""

    def __init__(self, store: RecordingStore) -> None:
        self.store = store

    async def parts(self, space_id: int) -> list[Recording]:
        found = await asyncio.to_thread(self.store.parts, space_id)
        return [Recording(p.number, p.path, p.size) for p in found]

    async def delete(self, space_id: int, number: int | None = None) -> int:
        return await asyncio.to_thread(self.store.delete, space_id, number)


def _listing(directory: Path) -> list[Path]:
    try:
        return list(directory.iterdir())
    except FileNotFoundError:
        return []
