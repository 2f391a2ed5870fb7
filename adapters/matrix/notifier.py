"""Core events -> Matrix: DMs in each person's direct room (acknowledged to the outbox),
the Space card in the announcement room (posted once, then edited as the Space changes)
and public news in the card's thread (live now, a new speaker, a public tip's thanks).

Each handler runs in the event bus's own task; a handler that fails is logged by the bus.
"""

from __future__ import annotations

import asyncio
from html import escape
from zoneinfo import ZoneInfo

import structlog

from adapters.matrix.client import Connection, MatrixError
from adapters.matrix.directs import Directs
from adapters.matrix.messages import Content, bang, dm_content, edit, in_thread
from adapters.matrix.models import MatrixAnnouncement
from bot.actors import split_key
from bot.chat_events import ChatRoutes, subscribe
from bot.core import Core
from bot.events import (
    DirectMessage,
    EventBus,
    SpaceEvent,
    SpaceStarted,
    StageChanged,
    TipReceived,
)
from bot.models import Platform, Space
from bot.notices import tip_thanks
from bot.wording import space_buttons, space_lines, space_title

log = structlog.get_logger(__name__)

_UTC = ZoneInfo("UTC")

#: the homeserver's answers that no retry changes: the DM is marked refused
_REFUSED = frozenset({"M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN_USER", "M_INVALID_PARAM"})


def matrix_user(identity_key: str, community_id: str) -> str | None:
    """The Matrix user id behind an identity key of this community, else None."""
    community, user_id = split_key(identity_key)
    return user_id if community == community_id else None


class Notifier:
    def __init__(
        self, core: Core, connection: Connection, directs: Directs, *, room_id: str
    ) -> None:
        self.core = core
        self.connection = connection
        self.directs = directs
        self.room_id = room_id
        self.community_id = f"{Platform.MATRIX.value}:{room_id}"
        self._locks: dict[int, asyncio.Lock] = {}

    def subscribe(self, bus: EventBus) -> None:
        routes = ChatRoutes(
            announcement=self.on_space_changed,
            direct_message=self.on_direct_message,
            started=self.on_started,
            stage=self.on_stage_changed,
            tip=self.on_tip,
        )
        subscribe(bus, self.core.outbox, Platform.MATRIX, routes)

    # --- DMs -----------------------------------------------------------------------------

    async def on_direct_message(self, message: DirectMessage) -> None:
        user_id = matrix_user(message.identity_key, self.community_id)
        if user_id is None:
            return
        outbox = self.core.outbox
        try:
            room_id = await self.directs.room_of(user_id)
            await self.connection.send(room_id, dm_content(message))
        except MatrixError as exc:
            log.warning("matrix: direct message failed", error=exc.code, outbox_id=message.id)
            if exc.code in _REFUSED:
                await outbox.refused(message.id, exc.code)
            else:
                await outbox.failed(message.id, exc.code or "error")
        except Exception as exc:  # the network, say: retried, and logged by the bus
            await outbox.failed(message.id, repr(exc))
            raise
        else:
            await outbox.sent(message.id)

    # --- the card ------------------------------------------------------------------------

    async def _shows(self, event: SpaceEvent) -> bool:
        """Whether this room shows the event's Space: its own, or linked with it."""
        shown = await self.core.communities.shown_on(
            event.space_id, event.community_id, Platform.MATRIX
        )
        return self.community_id in shown

    async def on_space_changed(self, event: SpaceEvent) -> None:
        if not await self._shows(event):
            return
        async with self._locks.setdefault(event.space_id, asyncio.Lock()):
            space = await self.core.spaces.get(event.space_id)
            content = await self.card(space)
            async with self.core.db.session() as session:
                row = await session.get(MatrixAnnouncement, (event.space_id, self.room_id))
            if row is not None:
                await self.connection.send(row.room_id, edit(content, row.event_id))
                return
            event_id = await self.connection.send(self.room_id, content)
            async with self.core.db.write() as session:
                session.add(
                    MatrixAnnouncement(
                        space_id=event.space_id, room_id=self.room_id, event_id=event_id
                    )
                )

    async def card(self, space: Space) -> Content:
        """The Space card: title, details, and the commands that stand in for buttons."""
        host = await self.core.identities.get(space.host_id)
        # one message for every reader, and Matrix has no markup that shows each reader's
        # own zone: times in UTC (`!space info N` answers in the asker's zone)
        lines = space_lines(space, host, _UTC, self.core.clock.now())
        actions = [(b.label, bang(b.command)) for b in space_buttons(space) if b.command]
        title = space_title(space)
        plain = "\n".join([title, *lines, *(f"{label}: {typed}" for label, typed in actions)])
        html = (
            f"<h3>{escape(title)}</h3><p>"
            + "<br>".join(escape(line) for line in lines)
            + "</p>"
            + "".join(
                f"<p>{escape(label)}: <code>{escape(typed)}</code></p>" for label, typed in actions
            )
        )
        return {
            "msgtype": "m.text",
            "body": plain,
            "format": "org.matrix.custom.html",
            "formatted_body": html,
        }

    async def _in_card_thread(self, space_id: int | None, text: str) -> None:
        row = None
        if space_id is not None:
            async with self.core.db.session() as session:
                row = await session.get(MatrixAnnouncement, (space_id, self.room_id))
        content: Content = {"msgtype": "m.text", "body": text}
        if row is None:
            await self.connection.send(self.room_id, content)
        else:
            await self.connection.send(row.room_id, in_thread(content, row.event_id))

    # --- public news ---------------------------------------------------------------------

    async def on_started(self, event: SpaceStarted) -> None:
        if not await self._shows(event):
            return
        space = await self.core.spaces.get(event.space_id)
        await self._in_card_thread(
            event.space_id,
            f"{space_title(space)} is live now. Ticket holders: your join link is in your "
            "direct messages from Stagepass.",
        )

    async def on_stage_changed(self, event: StageChanged) -> None:
        if event.change != "promoted" or not await self._shows(event):
            return
        space = await self.core.spaces.get(event.space_id)
        who = matrix_user(event.identity_key, self.community_id) or event.identity_key
        await self._in_card_thread(
            event.space_id, f"{who} is now a speaker in {space_title(space)}."
        )

    async def on_tip(self, event: TipReceived) -> None:
        if event.community_id != self.community_id or not event.public:
            return

        def name(key: str) -> str:
            return matrix_user(key, self.community_id) or key

        await self._in_card_thread(
            event.space_id,
            tip_thanks(event, tipper=name(event.tipper_key), host=name(event.host_key)),
        )
