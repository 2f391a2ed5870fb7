"""Plugging the live audio room into Stagepass: `install(host)` (`package`, the
``stagepass.packages`` entry point).

It builds one `LiveAudio` on the core — the `RoomRegistry`, the `TicketGate` and the
recordings directory — and adds to the app:

* routers: signaling (`audio.signaling.make_router`) and the room page (`audio.pages`);
* event subscribers: a Space going live opens its room, ending or cancelling closes it
  (finishing any recording); stage changes promote, demote, mute and remove within the
  event's delivery; a closed ticket (refund, revocation) disconnects whoever uses it. All
  but the start go through `RoomRegistry.announce` as control messages (`audio.control`):
  applied here, and with NATS also on every other node (edges, and the origin when the
  event happened in another process, e.g. a webhook);
* an admitted offer for a Space that is live in the database but has no room here (started
  by another process, or before a restart) opens its room there and then (`is_live`);
* a background job that, while the app serves, opens rooms for Spaces that are live but
  have none here, closes rooms whose Space is no longer live (a missed end), and closes
  every room on stop;
* ``"audio"`` in the start-up line's modes (``"audio-edge"`` on an edge);
* the `RoomRegistry` as the ``"rooms"`` service (the Discord voice bridge joins it).

With STAGEPASS_AUDIO_NATS_URL set the registry gets a NATS link (`audio.edges`): an origin
(the default) publishes its rooms' listener mix; an edge (STAGEPASS_AUDIO_NODE=edge) opens
no room of its own and relays rooms to its listeners only while their origin has them open.
The edges' room pages send the stage to the origin, which answers them cross-origin
(`audio.cors`).

Nothing is installed when STAGEPASS_AUDIO_ENABLED=false.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiortc import RTCIceServer
from fastapi import APIRouter
from nats.aio.client import Client as NATS
from sqlmodel import col, select

from audio.attendance import ListenerLog
from audio.control import Action, ControlMessage
from audio.cors import CrossOrigin
from audio.edges import EdgeLink, NatsLink, OriginLink
from audio.pages import make_page_router
from audio.recordings import RecordingStore, StoreRecordings
from audio.registry import RoomRegistry
from audio.room import RoomSettings
from audio.signaling import make_router
from audio.ticket_gate import TicketGate
from bot.core import Core
from bot.events import (
    CohostChanged,
    SpaceCancelled,
    SpaceEnded,
    SpaceEvent,
    SpaceStarted,
    StageChanged,
    TicketClosed,
)
from bot.host import Host, Package
from bot.models import Space, SpaceStatus
from bot.settings import IceServer, Settings

logger = logging.getLogger(__name__)

RECONCILE_SECONDS = 30.0
"""How often the background job brings the open rooms in line with the live Spaces."""

_STAGE_ACTIONS = {
    "promoted": Action.PROMOTED,
    "demoted": Action.DEMOTED,
    "muted": Action.MUTED,
    "unmuted": Action.UNMUTED,
    "removed": Action.REMOVED,
}
"""The `StageChanged.change` values the audio acts on (hand_raised / hand_lowered: none)."""


def rtc_ice_servers(servers: list[IceServer]) -> list[RTCIceServer]:
    """The settings' ICE servers as aiortc's `RTCIceServer`."""
    return [
        RTCIceServer(
            urls=list(server.urls),
            username=server.username,
            credential=server.credential.get_secret_value() if server.credential else None,
        )
        for server in servers
    ]


def nats_link(settings: Settings) -> OriginLink | EdgeLink | None:
    """The registry's NATS link the settings ask for (not connected yet), or None."""
    if not settings.audio_nats_url:
        return None
    if settings.audio_node == "edge":
        return EdgeLink(NATS(), public_url=settings.resolved_public_url)
    return OriginLink(NATS(), public_url=settings.resolved_public_url)


class LiveAudio:
    """The room registry, the gate and the recordings of one Stagepass process."""

    def __init__(
        self,
        core: Core,
        *,
        registry: RoomRegistry | None = None,
        gate: TicketGate | None = None,
        store: RecordingStore | None = None,
    ) -> None:
        settings = core.settings
        self.core = core
        # `is None`, not `or`: an empty RoomRegistry is falsy (it has a length).
        if registry is None:
            registry = RoomRegistry(
                ice_servers=rtc_ice_servers(settings.ice_servers),
                settings=RoomSettings(
                    deny_private_ice=settings.room_deny_private_ice,
                    fast_lane=settings.room_fast_lane,
                ),
                link=nats_link(settings),
            )
        self.registry = registry
        self.registry.is_live = self.is_live
        self.gate = TicketGate(core) if gate is None else gate
        self.store = RecordingStore(settings.resolved_recording_dir) if store is None else store
        core.replays.use_store(StoreRecordings(self.store))
        self.registry.on_control = self.on_control
        self.serving = False
        """True while `run` runs: only a serving process opens rooms on SpaceStarted (a
        one-shot CLI command that starts a Space must not start a mixer)."""

    def routers(self) -> list[APIRouter]:
        """Signaling and the room page. On an origin with NATS, the edges' room pages may
        call the stage's routes cross-origin; on an edge, its pages may call the origin."""
        link = self.registry.link
        cross_origin = CrossOrigin(lambda: link.edges) if isinstance(link, OriginLink) else None
        origins = link.origins if isinstance(link, EdgeLink) else None
        return [
            make_router(self.registry, self.gate, cross_origin=cross_origin),
            make_page_router(
                self.core,
                self.registry,
                self.gate,
                self.store,
                ice_servers=self.core.settings.ice_servers,
                origins=origins,
                cross_origin=cross_origin,
            ),
        ]

    def subscribe(self) -> None:
        bus = self.core.bus
        bus.subscribe(SpaceStarted, self.on_started)
        bus.subscribe(SpaceEnded, self.on_finished)
        bus.subscribe(SpaceCancelled, self.on_finished)
        bus.subscribe(StageChanged, self.on_stage_changed)
        bus.subscribe(CohostChanged, self.on_cohost_changed)
        bus.subscribe(TicketClosed, self.on_ticket_closed)

    # --- events ---------------------------------------------------------------------------

    async def on_started(self, event: SpaceStarted) -> None:
        self.gate.forget(event.space_id)
        if self.serving and not self.registry.relays:
            await self.registry.open(event.space_id)

    async def on_finished(self, event: SpaceEvent) -> None:
        """SpaceEnded / SpaceCancelled: everyone out, recording finished, on every node."""
        await self.registry.announce(ControlMessage(Action.ENDED, event.space_id))

    async def on_stage_changed(self, event: StageChanged) -> None:
        action = _STAGE_ACTIONS.get(event.change)
        if action is None:
            self.gate.forget(event.space_id)  # a hand raised or lowered changes no audio
            return
        await self.registry.announce(ControlMessage(action, event.space_id, event.identity_key))

    async def on_cohost_changed(self, event: CohostChanged) -> None:
        action = Action.COHOST_ADDED if event.added else Action.COHOST_REMOVED
        await self.registry.announce(ControlMessage(action, event.space_id, event.identity_key))

    async def on_ticket_closed(self, event: TicketClosed) -> None:
        await self.registry.announce(
            ControlMessage(Action.TICKET_CLOSED, event.space_id, ticket_id=event.ticket_id)
        )

    def on_control(self, message: ControlMessage) -> None:
        """Before any control message is applied here (this process's or another's): the
        gate's cached passes of the Space may be wrong now."""
        self.gate.forget(message.space_id)

    # --- background -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """The app's background job: keep rooms in line with live Spaces until ``stop``."""
        self.serving = True
        link, url = self.registry.link, self.core.settings.audio_nats_url
        if isinstance(link, NatsLink) and url:
            link.start(url)
        listeners = ListenerLog(
            self.registry,
            self.core.host_desk.record_listeners,
            edges=link.edge_listeners.count if isinstance(link, OriginLink) else None,
            share=link.report_listeners if isinstance(link, EdgeLink) else None,
        )
        counting = asyncio.get_running_loop().create_task(
            listeners.run(stop), name="audio-listener-log"
        )
        try:
            while not stop.is_set():
                try:
                    await self.reconcile()
                except Exception:
                    logger.exception("reconciling audio rooms failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RECONCILE_SECONDS)
        finally:
            self.serving = False
            counting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await counting
            await self.registry.aclose()
            if isinstance(link, NatsLink):
                await link.aclose()

    async def is_live(self, space_id: int) -> bool:
        """Whether a serving process should open the room of ``space_id`` for an admitted
        offer: the Space is live in the database now (not as a cached gate pass says)."""
        if not self.serving:
            return False
        async with self.core.db.session() as session:
            status = (
                await session.exec(select(Space.status).where(col(Space.id) == space_id))
            ).first()
        return status == SpaceStatus.LIVE

    async def reconcile(self) -> None:
        """Open a room for every live Space without one (an edge opens none: it relays on
        demand); close rooms of Spaces not live."""
        async with self.core.db.session() as session:
            live = set(
                await session.exec(
                    select(Space.id).where(col(Space.status) == SpaceStatus.LIVE.value)
                )
            )
        for space_id in () if self.registry.relays else live:
            if space_id is not None and self.registry.get(space_id) is None:
                logger.info("opening the room of live Space %s", space_id)
                await self.registry.open(space_id)
        for room in self.registry:
            if room.space_id not in live:
                logger.info("closing the room of Space %s: it is no longer live", room.space_id)
                self.gate.forget(room.space_id)
                await self.registry.close(room.space_id)


ROOMS = "rooms"
"""The name of the `RoomRegistry` service."""


async def install(host: Host) -> None:
    """The package's installer (see `attach`)."""
    await attach(host)


async def attach(host: Host, *, live: LiveAudio | None = None) -> LiveAudio | None:
    """Add the audio room to ``host``; returns it (None when turned off).

    ``live`` replaces the `LiveAudio` built from the settings (tests pass their own registry).
    """
    if not host.settings.audio_enabled:
        return None
    audio = LiveAudio(host.core) if live is None else live
    audio.subscribe()
    host.provide(ROOMS, audio.registry)
    for router in audio.routers():
        host.add_router(router)

    async def audio_rooms(stop: asyncio.Event) -> None:
        await audio.run(stop)

    host.add_background(audio_rooms)
    host.add_mode("audio-edge" if audio.registry.relays else "audio")
    return audio


package = Package("audio", install)
"""The ``stagepass.packages`` entry point."""
