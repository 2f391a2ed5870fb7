"""Matrix -> core: a command typed in the announcement room (or in a person's direct
room with the bot) runs as that person; the reply goes into a thread of the command.

Matrix has no private replies in a room: a reply that is only for the asker and carries a
link (a payment link, the host's room pass) goes to their direct room, and the thread says
so. Moderators are members whose power level in the announcement room is at least
MATRIX_MODERATOR_LEVEL (50 by default); a member's age (`member_days:` host rules) counts
from their join event in that room.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from nio import MatrixRoom, MegolmEvent, RoomMessageText

from adapters.matrix.client import Connection
from adapters.matrix.directs import Directs
from adapters.matrix.messages import command_line, in_thread, notice, reply_content
from bot.actors import Actor
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.models import Platform
from bot.replies import Reply

log = structlog.get_logger(__name__)

E = TypeVar("E")

_IN_DMS = "I've sent you the details in a direct message."
_UNDECRYPTABLE = (
    "I could not decrypt your message: your device has not shared its key with mine. "
    "Please send it again; if I still cannot read you, verify my session (Stagepass) or "
    "sign out and in again on your device."
)


class Commands:
    def __init__(
        self,
        core: Core,
        dispatcher: Dispatcher,
        connection: Connection,
        directs: Directs,
        *,
        room_id: str,
        moderator_level: int,
    ) -> None:
        self.core = core
        self.dispatcher = dispatcher
        self.connection = connection
        self.directs = directs
        self.room_id = room_id
        self.moderator_level = moderator_level
        self._told: set[tuple[str, str]] = set()  # (sender, session) told it is unreadable
        self.timings: list[float] = []
        """Seconds from a command's arrival to its reply being sent (tests print them)."""

    def register(self) -> None:
        client = self.connection.client
        client.add_event_callback(_guarded(self.on_text), RoomMessageText)
        client.add_event_callback(_guarded(self.on_undecryptable), MegolmEvent)

    def actor(self, user_id: str) -> Actor:
        room = self.room_id
        return Actor(
            Platform.MATRIX,
            room,
            user_id,
            self.connection.display_name(room, user_id),
            is_moderator=self.connection.power_level(room, user_id) >= self.moderator_level,
            member_since=self.connection.member_since(room, user_id),
            community_name=self.connection.room_name(room),
        )

    async def on_text(self, room: MatrixRoom, event: RoomMessageText) -> None:
        if event.sender == self.connection.user_id:
            return
        formatted = event.formatted_body if event.format == "org.matrix.custom.html" else None
        line = command_line(event.body, formatted)
        if line is None:
            return
        started = time.perf_counter()
        self.connection.spawn(
            self._answer(room.room_id, event, line, started), f"matrix-command-{event.event_id}"
        )

    async def _answer(
        self, room_id: str, event: RoomMessageText, line: str, started: float
    ) -> None:
        root = _thread_root(event)
        if room_id != self.room_id and room_id not in await self.directs.room_ids():
            log.info("matrix: a command outside its rooms", room=room_id, sender=event.sender)
            await self.connection.send(room_id, in_thread(notice(self._elsewhere()), root))
            return
        actor = self.actor(event.sender)
        reply = await self.dispatcher.handle(actor, line)
        await self.reply(room_id, root, event.sender, reply)
        elapsed = time.perf_counter() - started
        self.timings.append(elapsed)
        log.info("matrix: command answered", command=line.split()[0], seconds=round(elapsed, 3))

    async def reply(self, room_id: str, root: str, user_id: str, reply: Reply) -> None:
        content = reply_content(reply)
        private = reply.ephemeral and any(b.url for b in reply.buttons) and not reply.error
        if private and room_id == self.room_id:
            dm_room = await self.directs.room_of(user_id)
            await self.connection.send(dm_room, content)
            await self.connection.send(room_id, in_thread(notice(_IN_DMS), root))
            return
        await self.connection.send(room_id, in_thread(content, root))

    def _elsewhere(self) -> str:
        """The refusal of a command typed in a room that is neither the announcement room
        nor the person's direct room with the bot (Matrix rooms are not linked)."""
        return (
            f"I take commands in {self.connection.room_name(self.room_id)} and in your "
            "direct messages with me, not in this room."
        )

    async def on_undecryptable(self, room: MatrixRoom, event: MegolmEvent) -> None:
        """A message the bot has no room key for: logged (ids only, never key material),
        and said once per sending session in its thread, so talk from that device does
        not draw a notice per line. The sync loop goes on."""
        told = (event.sender, str(event.session_id))
        log.warning(
            "matrix: cannot decrypt a message",
            room=room.room_id,
            sender=event.sender,
            device=event.device_id,
            session=event.session_id,
            event_id=event.event_id,
            first=told not in self._told,
        )
        if event.sender == self.connection.user_id or told in self._told:
            return
        self._told.add(told)
        content = in_thread(notice(_UNDECRYPTABLE), event.event_id)

        async def say() -> None:
            await self.connection.send(room.room_id, content)

        self.connection.spawn(say(), f"matrix-undecryptable-{event.event_id}")


def _guarded(
    handler: Callable[[MatrixRoom, E], Awaitable[None]],
) -> Callable[[MatrixRoom, E], Awaitable[None]]:
    """`handler` run by nio's sync loop, which ends on the first error a callback raises:
    an error is logged with the event's ids, and the loop goes on."""

    async def guarded(room: MatrixRoom, event: E) -> None:
        try:
            await handler(room, event)
        except Exception:
            log.exception(
                "matrix: an event handler failed",
                handler=getattr(handler, "__name__", repr(handler)),
                room=room.room_id,
                sender=getattr(event, "sender", None),
                event_id=getattr(event, "event_id", None),
            )

    return guarded


def _thread_root(event: RoomMessageText) -> str:
    """The thread a command belongs to: its own, or the thread it was typed in."""
    relates = event.source.get("content", {}).get("m.relates_to") or {}
    if relates.get("rel_type") == "m.thread" and relates.get("event_id"):
        return str(relates["event_id"])
    return str(event.event_id)
