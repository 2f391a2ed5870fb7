"""Audio edges over NATS: an origin publishes each room's listener mix, edges relay it.

A room's mixer runs on one node, its *origin*. With NATS configured the origin also hands
every listener-mix packet (the shared encode, one per 20 ms tick) to an `OriginLink`, which
publishes it on the room's subject; an *edge* node serves listeners for rooms it does not
host: its `EdgeLink` subscribes to the room's subject while it has listeners there and feeds
the packets into a listeners-only `Room`, whose fan-out is the same `audio.fanout` as the
origin's. The origin's cost then no longer grows with the listeners on edges.

Subjects, per Space id::

    stagepass.audio.<space>.mix      MIX packets, then one CLOSED when the room closes
    stagepass.audio.<space>.origin   request/reply: the origin answers while the room is open
                                     (no responders: no room anywhere)
    stagepass.audio.<space>.control  revocations, stage changes, the end (`audio.control`):
                                     every node, origin or edge, follows them all
    stagepass.audio.origins          request/reply: any origin answers with its public URL
    stagepass.audio.<space>.listeners an edge's listener count of the room; the origin sums
                                     them into the desk's listeners chart (`audio.attendance`)

An edge sends ``{"edge": "<its public URL>"}`` with each request and an origin answers
``{"origin": "<its public URL>"}``: the origin learns which edges relay its rooms (their
room pages may call it cross-origin, `audio.cors`) and the edge which origin its pages
send the stage to (their CSP must allow it).

A mix message is a 13-byte header (kind u8, sequence u32 = the mixer tick, sent-at u64 in
microseconds of wall-clock time) and the Opus payload: no JSON per packet. The pts of tick
``n`` is ``n * 960`` on both sides, as the mixer stamps it. Publishing never blocks the
mixer: packets go into a bounded outbox (oldest dropped) that one owned task drains into
nats-py's buffered publish. Delivery is at most once, as RTP over UDP is; the edge's
listeners ride over a lost packet like any other loss.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import logging
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final

from av.packet import Packet
from av.stream import Stream
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from audio.attendance import (
    LISTENERS_SUBJECTS,
    EdgeCounts,
    decode_count,
    encode_count,
    listeners_subject,
)
from audio.control import (
    CONTROL_SUBJECTS,
    ControlHandler,
    ControlMessage,
    control_subject,
    decode_control,
    encode_control,
)
from audio.cors import web_origin
from audio.errors import OriginUnreachable
from audio.opus import FRAME_SAMPLES
from audio.room import Room
from bot.tasks import TaskGroup

logger = logging.getLogger(__name__)

MIX: Final = 1
CLOSED: Final = 2
_HEADER: Final = struct.Struct("!BIQ")
_TIME_BASE: Final = Fraction(1, 48_000)
_TAP: Final = "nats"

OUTBOX_PACKETS = 500
"""Packets an origin keeps for NATS before dropping the oldest (10 s of one room)."""
LOCATE_TIMEOUT = 1.0
"""How long an edge waits for the origin to say whether a room is open, seconds."""
LAG_SAMPLES = 3_000
"""Recent hop delays an edge keeps per room (one minute of packets) for its figures."""


def mix_subject(space_id: int) -> str:
    return f"stagepass.audio.{space_id}.mix"


def origin_subject(space_id: int) -> str:
    return f"stagepass.audio.{space_id}.origin"


ORIGINS_SUBJECT: Final = "stagepass.audio.origins"
MAX_PEERS = 256
"""Web origins a link remembers of the other side (edges, or origins): a bound, not a need."""


def _peer(data: bytes, key: str) -> str | None:
    """The web origin under ``key`` in a request or reply body, if it names a good one."""
    try:
        url = json.loads(data).get(key, "")
    except (ValueError, AttributeError):
        return None
    return web_origin(url) if isinstance(url, str) and url else None


def _remember(peers: set[str], origin: str | None) -> None:
    if origin is not None and (origin in peers or len(peers) < MAX_PEERS):
        peers.add(origin)


@dataclass(frozen=True, slots=True)
class MixMessage:
    """One message of a room's mix subject."""

    kind: int
    sequence: int
    """The origin mixer's tick (mod 2**32); the packet's pts is ``sequence * 960``."""
    sent_at: float
    """Wall-clock seconds when the origin queued it (edges measure the hop with it)."""
    payload: bytes = b""

    def packet(self) -> Packet[Stream]:
        packet = Packet(self.payload)
        packet.pts = packet.dts = self.sequence * FRAME_SAMPLES
        packet.time_base = _TIME_BASE
        return packet


def encode_mix(packet: Packet[Stream], sent_at: float) -> bytes:
    sequence = (packet.pts or 0) // FRAME_SAMPLES
    return _HEADER.pack(MIX, sequence & 0xFFFFFFFF, int(sent_at * 1e6)) + bytes(packet)


def encode_closed(sent_at: float) -> bytes:
    return _HEADER.pack(CLOSED, 0, int(sent_at * 1e6))


def decode(data: bytes) -> MixMessage:
    """Parse a mix-subject message; ValueError if it is not one."""
    if len(data) < _HEADER.size:
        raise ValueError(f"a mix message is at least {_HEADER.size} bytes, got {len(data)}")
    kind, sequence, sent_us = _HEADER.unpack_from(data)
    if kind not in (MIX, CLOSED):
        raise ValueError(f"unknown mix message kind {kind}")
    return MixMessage(kind, sequence, sent_us / 1e6, bytes(data[_HEADER.size :]))


async def connect(nc: NATS, url: str, *, name: str) -> None:
    """Connect ``nc`` to ``url``, retrying until it succeeds; it reconnects forever after."""

    # nats-py's default error callback logs a whole traceback every 2 s while the server is down.
    async def error(exc: Exception) -> None:
        logger.warning("NATS %s: %s", url, exc or type(exc).__name__)

    await nc.connect(
        servers=[url], name=name, max_reconnect_attempts=-1, connect_timeout=2, error_cb=error
    )
    logger.info("NATS %s: connected as %s", url, name)


#: How often, and how far apart, an edge asks for a room no origin answers for.
LOCATE_ATTEMPTS = 3
LOCATE_PAUSE = 0.05


class NatsLink:
    """A NATS connection owned by one registry's link, and its tasks; it also carries the
    control messages (`audio.control`) of every Space between this node and the others."""

    def __init__(self, nc: NATS, name: str) -> None:
        self.nc = nc
        self.node = uuid.uuid4().hex
        """This link's id in the control messages it sends (it skips those it gets back)."""
        self._name = name
        self._tasks = TaskGroup(name)
        self._control: ControlHandler | None = None
        self._control_subscription: Subscription | None = None

    def follow(self, handler: ControlHandler) -> None:
        """Hand every other node's control message to ``handler`` (the registry's `apply`)."""
        self._control = handler

    async def announce(self, message: ControlMessage) -> None:
        """Publish a control message for the other nodes. Never raises: a node that cannot
        reach NATS still applies it to its own rooms, so the failure is only logged."""
        subject = control_subject(message.space_id)
        if not self.nc.is_connected and not self.nc.is_reconnecting:
            logger.error("NATS is not connected: %s on %s reaches no other node", message, subject)
            return
        try:  # while reconnecting, nats-py keeps it in its pending buffer
            await self.nc.publish(subject, encode_control(message, self.node))
        except NatsError as exc:
            logger.error("publishing %s on %s failed: %s", message, subject, exc)

    def start(self, url: str) -> None:
        """`connect` in the background (the process serves on while NATS is down)."""
        self._tasks.spawn(self.connect(url), name="connect")

    async def connect(self, url: str) -> None:
        """Connect to ``url`` (retrying until it answers) and set up what waited for it."""
        await connect(self.nc, url, name=self._name)
        await self._connected()

    async def _connected(self) -> None:
        """Called once the first connection is up (nats-py resubscribes on reconnects)."""
        if self._control_subscription is None:
            self._control_subscription = await self.nc.subscribe(
                CONTROL_SUBJECTS, cb=self._on_control
            )
            await self.nc.flush()  # the server has the subscription once `connect` returns

    async def _on_control(self, msg: Msg) -> None:
        try:
            node, message = decode_control(msg.data)
        except ValueError as exc:
            logger.warning("ignoring a message on %s: %s", msg.subject, exc)
            return
        if node == self.node or self._control is None:
            return  # our own: applied before it was published
        try:
            await self._control(message)
        except Exception:
            logger.exception("applying %s from node %s failed", message, node)

    async def aclose(self) -> None:
        """Stop every task and close the connection (the registry closes its rooms first)."""
        await self._tasks.close()
        if not self.nc.is_closed:
            await self.nc.close()


class OriginLink(NatsLink):
    """Publishes the listener mix of every room of an origin's registry, and answers edges
    asking whether a room is open (with ``public_url``, the origin's address)."""

    relays = False

    def __init__(
        self,
        nc: NATS,
        *,
        public_url: str = "",
        outbox: int = OUTBOX_PACKETS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(nc, "stagepass-origin")
        self._reply = json.dumps({"origin": public_url}).encode()
        self._clock = clock
        self._outbox: collections.deque[tuple[str, bytes]] = collections.deque(maxlen=outbox)
        self._wakeup = asyncio.Event()
        self._rooms: dict[int, Room] = {}
        self._responders: dict[int, Subscription] = {}
        self._sender: asyncio.Task[None] | None = None
        self._edges: set[str] = set()
        self._origins_responder: Subscription | None = None
        self._counts_subscription: Subscription | None = None
        self.edge_listeners = EdgeCounts()
        """The listeners each edge says it serves, per room (`audio.attendance`)."""
        self.published = 0
        self.dropped = 0

    @property
    def edges(self) -> frozenset[str]:
        """The web origins of the edges that asked about this origin's rooms: the only ones
        whose room pages may call it cross-origin (`audio.cors`)."""
        return frozenset(self._edges)

    async def opened(self, room: Room) -> None:
        subject = mix_subject(room.space_id)
        self._rooms[room.space_id] = room
        room.tap(_TAP, lambda packet: self._queue(subject, encode_mix(packet, self._clock())))
        if self._sender is None:
            self._sender = self._tasks.spawn(self._send(), name="publish")
        await self._answer(room.space_id)

    async def closed(self, room: Room) -> None:
        room.tap(_TAP, None)
        if self._rooms.get(room.space_id) is room:
            del self._rooms[room.space_id]
            self.edge_listeners.forget(room.space_id)
        responder = self._responders.pop(room.space_id, None)
        if responder is not None and self.nc.is_connected:
            await responder.unsubscribe()
        self._queue(mix_subject(room.space_id), encode_closed(self._clock()))

    async def locate(self, space_id: int) -> str | None:
        raise NotImplementedError("an origin hosts its rooms; only edges locate them")

    async def aclose(self) -> None:
        """Send what is still queued (the CLOSED of rooms just closed), then close."""
        while self._outbox and self.nc.is_connected:
            subject, data = self._outbox.popleft()
            try:
                await self.nc.publish(subject, data)
            except NatsError as exc:
                logger.warning("publishing on %s failed: %s", subject, exc)
                break
        await super().aclose()

    async def _connected(self) -> None:
        await super()._connected()
        if self._origins_responder is None:

            async def where(msg: Msg) -> None:
                _remember(self._edges, _peer(msg.data, "edge"))
                await msg.respond(self._reply)

            self._origins_responder = await self.nc.subscribe(ORIGINS_SUBJECT, cb=where)
        if self._counts_subscription is None:
            self._counts_subscription = await self.nc.subscribe(
                LISTENERS_SUBJECTS, cb=self._on_count
            )
        for space_id in list(self._rooms):
            await self._answer(space_id)

    async def _on_count(self, msg: Msg) -> None:
        try:
            space_id, node, count = decode_count(msg.subject, msg.data)
        except ValueError as exc:
            logger.warning("ignoring a message on %s: %s", msg.subject, exc)
            return
        if space_id in self._rooms:  # a room closed here counts nobody any more
            self.edge_listeners.heard(space_id, node, count)

    async def _answer(self, space_id: int) -> None:
        if space_id in self._responders or not self.nc.is_connected:
            return  # not connected yet: `_connected` subscribes once it is

        async def reply(msg: Msg) -> None:
            if space_id in self._rooms:
                _remember(self._edges, _peer(msg.data, "edge"))
                await msg.respond(self._reply)

        self._responders[space_id] = await self.nc.subscribe(origin_subject(space_id), cb=reply)
        try:  # the server has the responder once the room is open: edges find it at once
            await self.nc.flush(timeout=2)
        except (TimeoutError, NatsError) as exc:
            logger.warning("NATS did not confirm the responder of room %s: %s", space_id, exc)

    def _queue(self, subject: str, data: bytes) -> None:
        if len(self._outbox) == self._outbox.maxlen:
            self.dropped += 1
        self._outbox.append((subject, data))
        self._wakeup.set()

    async def _send(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._outbox:
                subject, data = self._outbox.popleft()
                if not self.nc.is_connected:
                    self.dropped += 1
                    continue
                try:
                    await self.nc.publish(subject, data)
                except NatsError as exc:
                    self.dropped += 1
                    logger.warning("publishing on %s failed: %s", subject, exc)
                else:
                    self.published += 1


@dataclass(eq=False)
class FeedStats:
    """What an edge has taken from one room's subject while it was subscribed."""

    received: int = 0
    lost: int = 0
    """Packets missing by sequence number (NATS or the origin's outbox dropped them)."""
    lags: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=LAG_SAMPLES)
    )
    """Recent origin-queued to edge-handed-over delays, seconds (clocks must agree)."""


@dataclass(eq=False)
class _Feed:
    room: Room
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    subscription: Subscription | None = None
    stopping: bool = False
    next_sequence: int | None = None
    stats: FeedStats = field(default_factory=FeedStats)


class EdgeLink(NatsLink):
    """Makes a registry's rooms listeners-only relays of rooms whose origin is elsewhere.

    A relay room subscribes to its room's subject when its first listener joins and
    unsubscribes when the last one leaves; a CLOSED message from the origin closes it.
    """

    relays = True

    def __init__(
        self,
        nc: NATS,
        *,
        public_url: str = "",
        timeout: float = LOCATE_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(nc, "stagepass-edge")
        self._hello = json.dumps({"edge": public_url}).encode()
        self._timeout = timeout
        self._clock = clock
        self._feeds: dict[int, _Feed] = {}
        self._origins: set[str] = set()

    async def origins(self) -> frozenset[str]:
        """The web origins of the deployment's audio origins (where this edge's room pages
        may send the stage): those that answered `locate`, else whichever answers now."""
        if not self._origins and self.nc.is_connected:
            try:
                msg = await self.nc.request(ORIGINS_SUBJECT, self._hello, timeout=self._timeout)
            except (NoRespondersError, NatsTimeout):
                return frozenset()
            _remember(self._origins, _peer(msg.data, "origin"))
        return frozenset(self._origins)

    async def locate(self, space_id: int) -> str | None:
        """The origin's address ("" if it gave none) while the room is open, else None.

        Raises `OriginUnreachable` when NATS is down or no origin answers in time."""
        if not self.nc.is_connected:
            raise OriginUnreachable("This audio node cannot reach the room's origin right now.")
        for attempt in range(LOCATE_ATTEMPTS):
            try:
                msg = await self.nc.request(
                    origin_subject(space_id), self._hello, timeout=self._timeout
                )
                break
            except NoRespondersError:
                # No origin has the room: closed, or opened a moment ago (seen under load
                # even after the origin flushed its responder): ask again, briefly.
                if attempt + 1 == LOCATE_ATTEMPTS:
                    return None
                await asyncio.sleep(LOCATE_PAUSE)
            except NatsTimeout as exc:
                raise OriginUnreachable("The room's origin did not answer; try again.") from exc
        try:
            origin = json.loads(msg.data).get("origin", "")
        except (ValueError, AttributeError):
            origin = ""
        if not isinstance(origin, str) or web_origin(origin) is None:
            return ""
        _remember(self._origins, web_origin(origin))
        return origin.rstrip("/")

    async def opened(self, room: Room) -> None:
        feed = _Feed(room)
        self._feeds[room.space_id] = feed
        room.on_audience = lambda _room: feed.changed.set()
        self._tasks.spawn(self._follow(feed), name=f"feed-{room.space_id}")

    async def closed(self, room: Room) -> None:
        feed = self._feeds.get(room.space_id)
        if feed is not None and feed.room is room:
            feed.stopping = True
            feed.changed.set()

    async def report_listeners(self, space_id: int, count: int) -> None:
        """Tell the origins how many listen to ``space_id`` here (`audio.attendance`); a
        count NATS cannot take now is only logged: the next sample says it again."""
        if not self.nc.is_connected:
            return
        try:
            await self.nc.publish(listeners_subject(space_id), encode_count(self.node, count))
        except NatsError as exc:
            logger.warning("publishing room %s's listener count failed: %s", space_id, exc)

    def subscribed(self, space_id: int) -> bool:
        """True while this edge takes the room's mix from NATS."""
        feed = self._feeds.get(space_id)
        return feed is not None and feed.subscription is not None

    def stats(self, space_id: int) -> FeedStats | None:
        feed = self._feeds.get(space_id)
        return None if feed is None else feed.stats

    async def _follow(self, feed: _Feed) -> None:
        """Keep the room's subscription in line with its listeners, until it closes. The one
        task that subscribes and unsubscribes, so the two never race."""
        room = feed.room
        try:
            while True:
                done = feed.stopping or room.closed
                wanted = not done and room.listener_count > 0
                if wanted and feed.subscription is None and self.nc.is_connected:
                    feed.next_sequence = None
                    feed.subscription = await self.nc.subscribe(
                        mix_subject(room.space_id), cb=functools.partial(self._on_message, feed)
                    )
                elif not wanted and feed.subscription is not None:
                    subscription, feed.subscription = feed.subscription, None
                    if not self.nc.is_closed:
                        await subscription.unsubscribe()
                if done:
                    return
                await feed.changed.wait()
                feed.changed.clear()
        finally:
            if self._feeds.get(room.space_id) is feed:
                del self._feeds[room.space_id]

    async def _on_message(self, feed: _Feed, msg: Msg) -> None:
        try:
            message = decode(msg.data)
        except ValueError as exc:
            logger.warning("ignoring a message on %s: %s", msg.subject, exc)
            return
        if message.kind == CLOSED:
            logger.info("room %s: closed by its origin", feed.room.space_id)
            await feed.room.close()
            feed.changed.set()
            return
        stats = feed.stats
        if feed.next_sequence is not None and message.sequence > feed.next_sequence:
            stats.lost += message.sequence - feed.next_sequence
        feed.next_sequence = message.sequence + 1
        feed.room.relay(message.packet())
        stats.received += 1
        stats.lags.append(self._clock() - message.sent_at)
