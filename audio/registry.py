"""The rooms of one process: `RoomRegistry`, by Space id, and the `RoomLink` that ties them
to other nodes.

The registry opens and closes rooms, tells an edge's relays from an origin's rooms (`relays`),
and carries out control messages (`audio.control`): `announce` for the core's events of this
process, `apply` for those of other nodes, which its link hands it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import Protocol

from aiortc import RTCIceServer, RTCPeerConnection

from audio.control import Action, ControlHandler, ControlMessage
from audio.errors import NotInRoom, RoleChangeError
from audio.metrics import AudioMetrics, audio_metrics
from audio.room import PeerFactory, Room, RoomSettings

logger = logging.getLogger(__name__)


class RoomLink(Protocol):
    """Ties a registry's rooms to other nodes (`audio.edges` has the NATS links).

    An origin's link (``relays`` false) publishes each room's listener mix; an edge's link
    (``relays`` true) makes the registry's rooms listeners-only relays of rooms hosted on an
    origin, and `locate` asks whether one is open there.

    Every link also carries control messages (`audio.control`) between nodes: `announce`
    sends one to the other nodes, and the handler given to `follow` gets theirs.
    """

    relays: bool

    async def opened(self, room: Room) -> None: ...
    async def closed(self, room: Room) -> None: ...
    async def locate(self, space_id: int) -> str | None: ...
    async def announce(self, message: ControlMessage) -> None: ...
    def follow(self, handler: ControlHandler) -> None: ...


class RoomRegistry:
    """The rooms of this process, by Space id. Use as an async context manager.

    ``ice_servers`` go into every peer connection's `RTCConfiguration`; the default is none
    (host candidates only), so no public STUN server is contacted unless configured.
    ``link`` connects the rooms to other nodes: None keeps everything in this process.
    """

    def __init__(
        self,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        settings: RoomSettings | None = None,
        metrics: AudioMetrics | None = None,
        peer_factory: PeerFactory = RTCPeerConnection,
        link: RoomLink | None = None,
    ) -> None:
        self._ice_servers = tuple(ice_servers)
        self.link = link
        self._settings = settings or RoomSettings()
        self._metrics = metrics if metrics is not None else audio_metrics()
        self._peer_factory = peer_factory
        self._rooms: dict[int, Room] = {}
        self.is_live: Callable[[int], Awaitable[bool]] | None = None
        """Asked when an admitted offer finds no room here: True (the Space is live, as the
        database says now) opens it at once, so a Space started by another process needs no
        wait for `LiveAudio.reconcile` (``audio.install``). None: only `open` opens rooms."""
        self.on_control: Callable[[ControlMessage], None] | None = None
        """Called with every control message before it is applied, this node's or another's
        (``audio.install`` forgets the gate's cached passes of the Space)."""
        if link is not None:
            link.follow(self.apply)

    async def __aenter__(self) -> RoomRegistry:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def room_settings(self) -> RoomSettings:
        """The tuning every room of this registry gets."""
        return self._settings

    @property
    def relays(self) -> bool:
        """True on an edge: rooms here are listeners-only relays of an origin's rooms."""
        return self.link is not None and self.link.relays

    async def open(self, space_id: int) -> Room:
        """The open room of ``space_id``, opening it if needed (idempotent)."""
        room = self.get(space_id)
        if room is not None:
            return room
        room = Room(
            space_id=space_id,
            ice_servers=self._ice_servers,
            settings=self._settings,
            metrics=self._metrics.room(space_id),
            peer_factory=self._peer_factory,
            listeners_only=self.relays,
        )
        self._rooms[space_id] = room
        room.start()
        if self.link is not None:
            await self.link.opened(room)
        return room

    async def joinable(self, space_id: int) -> Room | None:
        """The room an offer for ``space_id`` joins on this node, or None if not open.

        On an origin a missing room opens when `is_live` says the Space is live. On an edge
        the origin is asked first (`RoomLink.locate`, which may raise `OriginUnreachable`):
        the relay room opens while the origin's room is open.
        """
        if self.link is None or not self.link.relays:
            room = self.get(space_id)
            if room is None and self.is_live is not None and await self.is_live(space_id):
                logger.info("opening the room of live Space %s on its first offer", space_id)
                room = await self.open(space_id)
            return room
        origin = await self.link.locate(space_id)
        if origin is None:
            await self.close(space_id)
            return None
        room = await self.open(space_id)
        room.origin_url = origin or None
        return room

    async def announce(self, message: ControlMessage) -> None:
        """Send a control message to the other nodes (if linked), then apply it here."""
        if self.link is not None:
            await self.link.announce(message)
        await self.apply(message)

    async def apply(self, message: ControlMessage) -> bool:
        """Carry out a control message on this node's room of its Space; False if it changed
        nothing (no room, nobody concerned, already done): applying twice is harmless."""
        if self.on_control is not None:
            self.on_control(message)
        action, key = message.action, message.identity_key
        if action is Action.ENDED:
            return await self.close(message.space_id)
        room = self.get(message.space_id)
        if room is None:
            return False
        try:
            if action is Action.TICKET_CLOSED:
                return await room.revoke_ticket(message.ticket_id)
            if action is Action.REMOVED:
                return await room.remove(key)
            if action in (Action.COHOST_ADDED, Action.COHOST_REMOVED) and key not in room:
                return False  # a co-host change concerns their session here, not a bridge's
            if action is Action.COHOST_REMOVED:
                # Their role now depends on the stage; the page rejoins and the gate decides.
                return await room.remove(key)
            if action in (Action.PROMOTED, Action.DEMOTED, Action.COHOST_ADDED):
                room.set_speaker(key, action is not Action.DEMOTED)
            elif action in (Action.MUTED, Action.UNMUTED):
                room.set_muted(key, action is Action.MUTED)
        except NotInRoom:
            return False  # not connected here; the gate gives them the new role on joining
        except RoleChangeError as exc:
            logger.info("room %s: %s ignored for %s: %s", room.space_id, action, key, exc)
            return False
        return True

    def get(self, space_id: int) -> Room | None:
        """The open room of ``space_id``, or None."""
        room = self._rooms.get(space_id)
        if room is not None and room.closed:  # an edge's relay, closed by its origin
            del self._rooms[space_id]
            return None
        return room

    def __iter__(self) -> Iterator[Room]:
        return iter(list(self._rooms.values()))

    def __len__(self) -> int:
        return len(self._rooms)

    async def close(self, space_id: int) -> bool:
        """Close and forget the room of ``space_id``; False if none was open."""
        room = self._rooms.pop(space_id, None)
        if room is None:
            return False
        await self._close(room)
        return True

    async def aclose(self) -> None:
        """Close every room."""
        rooms = list(self._rooms.values())
        self._rooms.clear()
        await asyncio.gather(*(self._close(room) for room in rooms))

    async def _close(self, room: Room) -> None:
        await room.close()
        if self.link is not None:
            await self.link.closed(room)
