"""Control messages: what every audio node must do when the core changes who may be in a room.

The core's events (a ticket refunded or revoked, someone removed from or promoted on the
stage, a Space ended) reach only the event bus of the process where they happened, but with
audio edges (`audio.edges`) the people they concern may be connected to another process. So
``audio.install`` turns each such event into a `ControlMessage`, carries it out on its own rooms
(`RoomRegistry.announce`) and, with NATS configured, publishes it; every other node applies
it to its rooms (`RoomRegistry.apply`). Applying is idempotent: the same message twice, or a
message for someone not here, changes nothing.

Subject, per Space id::

    stagepass.audio.<space>.control   one compact JSON object per message (they are rare)

``{"node": "<sender>", "action": "ticket_closed", "space": 42, "ticket": "…", "who": "…"}``:
``node`` is the sending link's random id, so a node skips its own messages (it applied them
before publishing). Delivery is at most once: a node cut off from NATS misses messages, and
its gate still refuses a closed ticket on the next join or state poll.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

CONTROL_SUBJECTS: Final = "stagepass.audio.*.control"
"""Every Space's control subject (a node follows all of them: the messages are rare)."""


def control_subject(space_id: int) -> str:
    return f"stagepass.audio.{space_id}.control"


class Action(enum.StrEnum):
    """What a control message asks of the room of its Space."""

    TICKET_CLOSED = "ticket_closed"
    """Disconnect whoever uses ``ticket_id`` (refund, revocation)."""
    REMOVED = "removed"
    """Disconnect ``identity_key`` (removed from the Space's stage)."""
    PROMOTED = "promoted"
    """``identity_key`` is on stage now (an edge disconnects them: they rejoin the origin)."""
    DEMOTED = "demoted"
    MUTED = "muted"
    UNMUTED = "unmuted"
    COHOST_ADDED = "cohost_added"
    """``identity_key`` became a co-host: on stage, as `PROMOTED`."""
    COHOST_REMOVED = "cohost_removed"
    """``identity_key`` is no longer a co-host: disconnected, the page rejoins as the gate says."""
    ENDED = "ended"
    """The Space ended or was cancelled: close the room."""


_NEEDS_IDENTITY = frozenset(Action) - {Action.TICKET_CLOSED, Action.ENDED}


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """One change for the room of ``space_id`` on every node."""

    action: Action
    space_id: int
    identity_key: str = ""
    ticket_id: str = ""

    def __post_init__(self) -> None:
        if self.action is Action.TICKET_CLOSED and not self.ticket_id:
            raise ValueError("a ticket_closed control message needs a ticket_id")
        if self.action in _NEEDS_IDENTITY and not self.identity_key:
            raise ValueError(f"a {self.action} control message needs an identity_key")


ControlHandler = Callable[[ControlMessage], Awaitable[bool]]
"""What a link hands other nodes' control messages to (`RoomRegistry.apply`)."""


def encode_control(message: ControlMessage, node: str) -> bytes:
    body: dict[str, object] = {"node": node, "action": message.action.value}
    body["space"] = message.space_id
    if message.identity_key:
        body["who"] = message.identity_key
    if message.ticket_id:
        body["ticket"] = message.ticket_id
    return json.dumps(body, separators=(",", ":")).encode()


def decode_control(data: bytes) -> tuple[str, ControlMessage]:
    """``(sending node, message)`` from a control subject's payload; ValueError if it is not
    one."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"a control message is JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("a control message is a JSON object")
    node, action, space = body.get("node"), body.get("action"), body.get("space")
    who, ticket = body.get("who", ""), body.get("ticket", "")
    if not isinstance(node, str) or not isinstance(action, str):
        raise ValueError("a control message names its node and action")
    if not isinstance(space, int) or isinstance(space, bool):
        raise ValueError("a control message names its Space by id")
    if not isinstance(who, str) or not isinstance(ticket, str):
        raise ValueError("a control message's who and ticket are strings")
    try:
        kind = Action(action)
    except ValueError:
        raise ValueError(f"unknown control action {action!r}") from None
    return node, ControlMessage(kind, space, identity_key=who, ticket_id=ticket)
