"""What the room needs from the core to let someone in: one `Gate.admit` call.

The core owns tickets, signatures and roles; the room only asks "who is this token, and may
they be in this Space now?" and gets back an `Admission`. Keeping that as a Protocol here lets
the room free of ``bot/`` imports; ``audio.install`` passes the core's implementation
(``audio.gatekeeper.TicketGate``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class Role(enum.StrEnum):
    """Stage roles. Host, cohost and speaker send and receive; a listener only receives."""

    HOST = "host"
    COHOST = "cohost"
    SPEAKER = "speaker"
    LISTENER = "listener"

    @property
    def on_stage(self) -> bool:
        """True for roles whose microphone is mixed (unless muted)."""
        return self is not Role.LISTENER


@dataclass(frozen=True, slots=True)
class Admission:
    """Who a verified token lets in, and as what.

    ``ticket_id`` is None for people who need no ticket (host, cohosts); the room allows one
    live session per ticket id and, independently, one per identity key. ``muted`` carries a
    moderator's mute across a rejoin (the stage remembers it; a new session must too).
    """

    ticket_id: str | None
    space_id: int
    identity_key: str
    display_name: str
    role: str
    muted: bool = False

    def __post_init__(self) -> None:
        # Fail at the boundary rather than deep inside the mixer on a typo from the core.
        Role(self.role)
        if not self.identity_key:
            raise ValueError("Admission.identity_key must not be empty")

    @property
    def stage_role(self) -> Role:
        """`role` as a `Role` (validated at construction)."""
        return Role(self.role)


class Gate(Protocol):
    """Verifies a ticket token for a Space.

    ``admit`` raises `audio.errors.Unauthorized` for a missing or forged token and
    `audio.errors.Forbidden` for a revoked ticket, a token for another Space, or a Space that
    is not live. It must not have side effects the room relies on: the room may call it on
    every state poll.
    """

    async def admit(self, space_id: int, token: str) -> Admission: ...
