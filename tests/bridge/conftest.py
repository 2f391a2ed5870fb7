"""The bridge tests' room: Space #1's, closed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from audio.room import Room


@pytest.fixture
async def room() -> AsyncIterator[Room]:
    room = Room(space_id=1)
    try:
        yield room
    finally:
        await room.close()
