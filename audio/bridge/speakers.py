"""Who is behind each SSRC, from the voice gateway's SPEAKING and CLIENT_DISCONNECT events."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Final

SPEAKING: Final = 5
CLIENT_DISCONNECT: Final = 13


class SsrcMap:
    """SSRC → Discord user id. Written on the event loop, read by the socket reader thread."""

    def __init__(self) -> None:
        self._users: dict[int, int] = {}
        self._lock = threading.Lock()

    def user(self, ssrc: int) -> int | None:
        with self._lock:
            return self._users.get(ssrc)

    def ssrc(self, user_id: int) -> int | None:
        with self._lock:
            return next((s for s, u in self._users.items() if u == user_id), None)

    def handle(self, message: Mapping[str, Any]) -> int | None:
        """Apply one voice gateway message; returns the user id it concerned, if any."""
        op = message.get("op")
        data = message.get("d") or {}
        if op == SPEAKING and "ssrc" in data and "user_id" in data:
            user_id = int(data["user_id"])
            with self._lock:
                # A user who rejoins gets a new SSRC: forget the old one.
                for ssrc in [s for s, u in self._users.items() if u == user_id]:
                    del self._users[ssrc]
                self._users[int(data["ssrc"])] = user_id
            return user_id
        if op == CLIENT_DISCONNECT and "user_id" in data:
            user_id = int(data["user_id"])
            with self._lock:
                for ssrc in [s for s, u in self._users.items() if u == user_id]:
                    del self._users[ssrc]
            return user_id
        return None

    def clear(self) -> None:
        with self._lock:
            self._users.clear()
