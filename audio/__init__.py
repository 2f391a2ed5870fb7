"""Stagepass live audio: WebRTC rooms with our own jitter buffer, one mixer per room, and a
shared-encode fan-out to listeners.

Import surface for the wiring::

    from audio import Admission, Gate, RoomRegistry, make_router

``audio`` never imports ``bot``: the core hands in a `Gate` and calls the room API from its
event handlers.
"""

from audio.errors import (
    AudioError,
    BadOffer,
    Forbidden,
    NotInRoom,
    RoleChangeError,
    RoomClosed,
    RoomNotOpen,
    Unauthorized,
)
from audio.gate import Admission, Gate, Role
from audio.metrics import AudioMetrics, audio_metrics
from audio.room import ParticipantState, Room, RoomRegistry, RoomSettings, RoomState
from audio.signaling import make_router

__all__ = [
    "Admission",
    "AudioError",
    "AudioMetrics",
    "BadOffer",
    "Forbidden",
    "Gate",
    "NotInRoom",
    "ParticipantState",
    "Role",
    "RoleChangeError",
    "Room",
    "RoomClosed",
    "RoomNotOpen",
    "RoomRegistry",
    "RoomSettings",
    "RoomState",
    "Unauthorized",
    "audio_metrics",
    "make_router",
]
