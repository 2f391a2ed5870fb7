"""Stagepass live audio: WebRTC rooms with our own jitter buffer, one mixer per room, and a
shared-encode fan-out to listeners; the room page; recording.

Import surface::

    from audio.install import package  # the stagepass.packages entry point: everything below

    from audio import Admission, Gate, RoomRegistry, make_router   # the room's own API

The package has two halves. The engine (``room``, ``registry``, ``mixer``, ``fanout``,
``jitter``, ``opus``, ``recorder``, ``signaling``, ``edges``, ...) never imports ``bot``: it
is handed a `Gate` and is driven through the `Room` API. The core-facing half (``install``,
``ticket_gate``, ``pages``) imports the core: it implements the Gate on tickets, serves the
room page, and turns the core's events into room calls.

    room.py        Room: sessions, roles, recording
    registry.py    RoomRegistry, RoomLink: the rooms of a process, control messages
    mixer.py       the 20 ms clock: decode, mix, encode once, mix-minus
    fanout.py      one encoded packet to every listener
    fastlane.py    the fast lane: RTP template, aiortc's SRTP session, one send loop
    edges.py       NATS scale-out: an origin publishes the listener mix, edges relay it
    control.py     revocations, stage changes and the end, for every node's rooms
    cors.py        the origin answering the edges' room pages (the stage's routes)
    jitter.py      our jitter buffer (aiortc's stalls after one loss)
    rtptap.py      taking RTP packets out of aiortc's receiver
    opus.py, pcm.py  codec and mixing arithmetic
    recorder.py    the listeners' mix into Ogg/Opus, no re-encode
    recordings.py  the recordings directory
    session.py     one participant's WebRTC session
    offer.py       checks on an SDP offer, before any peer connection exists
    errors.py      the room's errors, each with its HTTP status
    metrics.py     Prometheus metrics per room
    signaling.py   POST /rooms/{id}/offer, GET /rooms/{id}/state
    admission.py   Gate, Admission, Role: what the room asks the core to let someone in
    ticket_gate.py TicketGate: the core's tickets, Spaces and stage as a Gate
    pages.py       the room page and its hand / recording / replay endpoints
    install.py     install(host), the package entry point, and the event handlers
    bridge/        the Discord voice bridge (a Stage or voice channel as one voice)
    templates/, static/   the room page
"""

from audio.admission import Admission, Gate, Role
from audio.errors import (
    AudioError,
    BadOffer,
    Forbidden,
    NotInRoom,
    RecordingFailed,
    RoleChangeError,
    RoomClosed,
    RoomNotOpen,
    Unauthorized,
)
from audio.install import install
from audio.metrics import AudioMetrics, audio_metrics
from audio.registry import RoomLink, RoomRegistry
from audio.room import ParticipantState, Room, RoomSettings, RoomState
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
    "RecordingFailed",
    "Role",
    "RoleChangeError",
    "Room",
    "RoomClosed",
    "RoomLink",
    "RoomNotOpen",
    "RoomRegistry",
    "RoomSettings",
    "RoomState",
    "Unauthorized",
    "audio_metrics",
    "install",
    "make_router",
]
