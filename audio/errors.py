"""Errors the audio room raises, each carrying the HTTP status the signaling edge answers.

The tree::

    AudioError                 base; ``status`` and a ``message`` fit to show a user
    ├── Unauthorized   401     missing, malformed or forged ticket token
    ├── Forbidden      403     revoked ticket, wrong Space, Space not live
    ├── RoomNotOpen    404     no live room for this Space on this node
    ├── BadOffer       422     SDP offer we cannot or will not answer
    ├── RoomClosed     410     the room closed while the caller was joining
    ├── NotInRoom      404     no participant with that identity key (also a LookupError)
    ├── RoleChangeError 409    the role change makes no sense (e.g. demoting the host)
    ├── OriginOnly     409     an edge relays listeners only: the stage joins the origin
    ├── RecordingFailed 503    the recording file could not be created
    └── OriginUnreachable 503  an edge could not ask the room's origin (NATS down or slow)

`AudioError` does not derive from the core's ``StagepassError`` because ``audio/`` must not
import ``bot/``; the core-facing modules (``install``, ``pages``) map the two at the edge.
"""

from __future__ import annotations


class AudioError(Exception):
    """Base of every error the audio room raises on purpose."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthorized(AudioError):
    """The token is missing, malformed or its signature does not verify."""

    status = 401


class Forbidden(AudioError):
    """The token is genuine but does not let this person into this room now."""

    status = 403


class RoomNotOpen(AudioError):
    """No room is open for the Space on this node (not started, or already ended)."""

    status = 404


class BadOffer(AudioError):
    """The SDP offer is malformed or asks for something the room does not serve."""

    status = 422


class RoomClosed(AudioError):
    """The room was closed; nobody can join it any more."""

    status = 410


class NotInRoom(AudioError, LookupError):
    """No live participant has this identity key in the room."""

    status = 404


class RoleChangeError(AudioError, ValueError):
    """The requested role change is not allowed for this participant."""

    status = 409


class OriginOnly(AudioError):
    """This node is an audio edge: it relays the listener mix and mixes no one, so hosts,
    co-hosts, speakers and moderators must join on the room's origin node (``origin``, its
    public URL, when the edge knows it; the signaling edge answers it for the page)."""

    status = 409

    def __init__(self, message: str, *, origin: str | None = None) -> None:
        super().__init__(message)
        self.origin = origin


class OriginUnreachable(AudioError):
    """An edge could not learn whether the room is open: the origin or NATS did not answer."""

    status = 503


class RecordingFailed(AudioError):
    """The recording could not be started (the recordings directory is not writable...)."""

    status = 503
