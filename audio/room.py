"""Live audio rooms: one `Room` per Space, kept in a `RoomRegistry` (`audio.registry`).

A room answers WebRTC offers from admitted participants, mixes the microphones of those on
stage, and sends everyone else one shared encoded stream. It knows nothing of tickets or
payments: the core's `Gate` turns a token into an `Admission`, and the core's events
(StageChanged, TicketClosed, SpaceEnded, ...) become control messages (``audio.install``)
that `RoomRegistry.apply` carries out as `set_speaker`, `revoke_ticket` or a close.

Invariants the room keeps:

* one live session per ticket id, and one per identity key: a new join replaces the old
  session, whose peer connection is closed before `join` returns;
* a participant's microphone is mixed exactly while they are on stage (host, cohost,
  speaker) and not muted; the switch takes effect from the next 20 ms tick. A listener's
  microphone is negotiated and received but dropped on arrival until they are promoted;
* the peer connection uses only the ICE servers given to the registry (default none, so
  no public STUN server is ever asked);
* while recording, the listeners' mix is written to one Ogg/Opus file as the mixer encodes
  it (`audio.recorder`); closing the room finishes the file;
* a listeners-only room (an edge's relay of a room hosted on another node, `audio.edges`)
  runs no mixer: the origin's listener mix arrives through `relay`, and only ticket-holding
  listeners join it; anyone who needs the mixer gets `OriginOnly`;
* a bridge (the Discord Stage or voice channel) is one external voice in the mixer
  (`add_external_voice`), and the people behind it are `BridgedParticipant`s: listed, and
  promoted, demoted, muted and removed like anyone else; the bridge mixes a person only
  while their `mixed` holds, and meters each of them (`VoiceLevels`) for the state.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtp import RtpPacket
from av.packet import Packet
from av.stream import Stream

from audio.admission import Admission, Role
from audio.errors import (
    BadOffer,
    Forbidden,
    NotInRoom,
    OriginOnly,
    RoleChangeError,
    RoomClosed,
)
from audio.fanout import DEFAULT_QUEUE_PACKETS, Fanout, PacketTrack
from audio.fastlane import RtpStream
from audio.jitter import JitterBuffer, PutResult
from audio.metrics import RoomMetrics
from audio.mixer import SPEAKING_LEVEL, Mixer, PacketSink
from audio.offer import check_offer
from audio.opus import OpusDecoder, OpusEncoder
from audio.recorder import Recorder
from audio.rtptap import install_tap
from audio.session import PeerSession
from bot.tasks import TaskGroup

logger = logging.getLogger(__name__)

PeerFactory = Callable[[RTCConfiguration], RTCPeerConnection]
"""Builds a peer connection; tests pass a spy, ``audio.install`` leaves the default."""

VoiceLevels = Callable[[], Mapping[str, float]]
"""The smoothed level of each person behind an external voice, by identity key, as of the
last tick (a bridge measures them with the mixer's `smoothed_level`); cheap, called on
every state read."""

_STAGE_ORDER = {Role.HOST: 0, Role.COHOST: 1, Role.SPEAKER: 2, Role.LISTENER: 3}


@dataclass(frozen=True, slots=True)
class RoomSettings:
    """Tuning for every room of a registry. The defaults suit browsers on ordinary networks."""

    min_delay: float = 0.040
    """Lowest jitter-buffer target for a speaker, seconds."""
    max_delay: float = 0.060
    """Highest jitter-buffer target for a speaker, seconds."""
    bitrate: int = 32_000
    """Opus bitrate of every stream the room sends, bits/s (mono speech)."""
    listener_queue: int = DEFAULT_QUEUE_PACKETS
    """Packets queued per participant before the oldest is dropped (5 = 100 ms)."""
    connect_timeout: float = 30.0
    """A session whose peer has not connected after this many seconds is dropped."""
    watch_interval: float = 1.0
    """How often the room looks for sessions that never connected."""
    fast_lane: bool = True
    """Send the listener mix on the fast lane (`audio.fastlane`) once a listener's ICE and
    DTLS are up; False keeps every packet on aiortc's per-sender path."""
    deny_private_ice: bool = False
    """Leave out offered ICE candidates in private, loopback, link-local and mDNS addresses,
    so peers cannot make the server probe its own network (STAGEPASS_ROOM_DENY_PRIVATE_ICE)."""


@dataclass(frozen=True, slots=True)
class ParticipantState:
    """What the room page shows about one participant."""

    identity_key: str
    display_name: str
    role: str
    muted: bool
    level: float
    """Smoothed microphone level in [0, 1]; 0 when not mixed."""
    connection: str
    """The peer connection state: new, connecting, connected, failed or closed."""
    via: str = "web"
    """Where they are: ``web`` (this page, WebRTC) or a bridge's platform (``discord``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", round(self.level, 4))

    @property
    def speaking(self) -> bool:
        return self.level >= SPEAKING_LEVEL


@dataclass(eq=False, slots=True)
class BridgedParticipant:
    """Someone in the room through a bridge (a Discord Stage or voice channel).

    The room lists them and changes their ``role`` and ``muted`` on promotions and mutes as
    it does for WebRTC participants; their audio reaches the mixer through the bridge's
    one external voice, which mixes them only while `mixed` holds.
    """

    identity_key: str
    display_name: str
    via: str
    role: Role = Role.LISTENER
    muted: bool = False

    @property
    def mixed(self) -> bool:
        return self.role.on_stage and not self.muted


@dataclass(frozen=True, slots=True)
class RoomState:
    """A snapshot of a room, for the state endpoint and for tests."""

    space_id: int
    participants: tuple[ParticipantState, ...]
    """Everyone, stage roles first."""
    listener_count: int
    mixer_running: bool
    recording: bool = False

    @property
    def stage(self) -> tuple[ParticipantState, ...]:
        return tuple(p for p in self.participants if p.role != Role.LISTENER)


@dataclass(eq=False)
class Room:
    """The live audio of one Space. Build rooms with `RoomRegistry.open`."""

    space_id: int
    ice_servers: Sequence[RTCIceServer] = ()
    settings: RoomSettings = field(default_factory=RoomSettings)
    metrics: RoomMetrics | None = None
    peer_factory: PeerFactory = RTCPeerConnection
    clock: Callable[[], float] = time.monotonic
    listeners_only: bool = False
    """An edge's relay of a room hosted elsewhere: no mixer clock, listeners only."""
    origin_url: str | None = None
    """Where the origin of a listeners-only room is, when known (named in `OriginOnly`)."""
    on_audience: Callable[[Room], None] | None = None
    """Called whenever the listeners may have changed (an edge follows its feed with it)."""

    def __post_init__(self) -> None:
        self._sessions: dict[str, PeerSession] = {}
        self._closing: set[PeerSession] = set()
        self._tickets: dict[str, str] = {}
        self._bridged: dict[str, BridgedParticipant] = {}
        self._external: dict[str, VoiceLevels | None] = {}
        self._closed = False
        self._tasks = TaskGroup(f"room-{self.space_id}")
        self._watcher: asyncio.Task[None] | None = None
        self._recorder: Recorder | None = None
        self._recording_lock = asyncio.Lock()
        self._mixer = Mixer(
            name=str(self.space_id),
            metrics=self.metrics,
            encoder_factory=functools.partial(OpusEncoder, bitrate=self.settings.bitrate),
            decoder_factory=OpusDecoder,
        )
        self._opus = [
            codec
            for codec in RTCRtpSender.getCapabilities("audio").codecs
            if codec.mimeType.lower() == "audio/opus"
        ]

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the mixer clock and the connection watchdog (the registry does this)."""
        if self._closed:
            raise RoomClosed("This room has closed.")
        if not self.listeners_only:
            self._mixer.start()
        if self._watcher is None:
            self._watcher = self._tasks.spawn(self._watch(), name="watch")

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Disconnect everyone, stop the mixer and every task, forget the metrics."""
        if self._closed:
            return
        self._closed = True
        sessions = list(self._sessions.values())
        for session in sessions:
            self._detach(session)
        self._bridged.clear()
        for key in list(self._external):
            self.remove_external_voice(key)
        await self._mixer.stop()
        await self.stop_recording()
        await self._tasks.close()
        # Also wait for sessions a cancelled drop task was still closing.
        closing = set(sessions) | self._closing
        await asyncio.gather(*(self._close_session(s) for s in closing))
        if self.metrics is not None:
            self.metrics.forget()

    # -- joining ------------------------------------------------------------------------

    async def join(self, offer_sdp: str, offer_type: str, admission: Admission) -> tuple[str, str]:
        """Answer a participant's offer; returns ``(answer_sdp, answer_type)``.

        The offer is checked before a peer connection is created (`BadOffer`). A session
        already holding this ticket or identity is closed before this returns.
        """
        if self._closed:
            raise RoomClosed("This room has closed.")
        if admission.space_id != self.space_id:
            raise Forbidden("This ticket is for another Space.")
        if self.listeners_only and (
            admission.stage_role is not Role.LISTENER or admission.ticket_id is None
        ):
            raise self._origin_only()
        offer_sdp = check_offer(
            offer_sdp, offer_type, deny_private_ice=self.settings.deny_private_ice
        )

        pc = self.peer_factory(RTCConfiguration(iceServers=list(self.ice_servers)))
        session = PeerSession(
            admission=admission,
            pc=pc,
            inbound=JitterBuffer(
                min_delay=self.settings.min_delay, max_delay=self.settings.max_delay
            ),
            outbound=PacketTrack(max_queue=self.settings.listener_queue),
            role=admission.stage_role,
            joined_at=self.clock(),
            muted=admission.muted,
        )
        pc.on("connectionstatechange", functools.partial(self._on_connection_state, session))
        try:
            await self._negotiate(session, offer_sdp, offer_type)
        except Exception as exc:
            # Whatever aiortc trips over in an offer that passed the checks is the offer's
            # fault as far as the caller can tell: a 422, never a 500, and nothing left open.
            logger.info(
                "room %s: the offer of %s could not be answered (%s: %s)",
                self.space_id,
                admission.identity_key,
                type(exc).__name__,
                exc,
            )
            await self._close_session(session)
            raise BadOffer("The audio offer could not be answered.") from exc
        except BaseException:
            await self._close_session(session)
            raise
        if self._closed:
            await session.close()
            raise RoomClosed("This room closed while you were joining.")

        replaced = [
            s
            for s in self._sessions.values()
            if s.identity_key == admission.identity_key
            or (admission.ticket_id is not None and s.ticket_id == admission.ticket_id)
        ]
        for old in replaced:
            self._detach(old)
        self._sessions[admission.identity_key] = session
        if admission.ticket_id is not None:
            self._tickets[admission.ticket_id] = admission.identity_key
        self._place(session)
        self._update_gauges()
        for old in replaced:
            logger.info(
                "room %s: %s joined again, closing their previous session",
                self.space_id,
                old.identity_key,
            )
            await self._close_session(old)
        answer = pc.localDescription
        return answer.sdp, answer.type

    async def _negotiate(self, session: PeerSession, offer_sdp: str, offer_type: str) -> None:
        pc = session.pc
        transceiver = pc.addTransceiver(session.outbound, direction="sendrecv")
        session.outbound.stream = RtpStream.attach(
            transceiver.sender,
            session.outbound,
            fast=self.settings.fast_lane,
            on_fast=session.outbound.discard,
        )
        transceiver.setCodecPreferences(self._opus)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type=offer_type))
        install_tap(transceiver.receiver, functools.partial(self._on_rtp, session), self.clock)
        await pc.setLocalDescription(await pc.createAnswer())

    # -- stage --------------------------------------------------------------------------

    def set_speaker(self, identity_key: str, on_stage: bool) -> None:
        """Promote a listener to speaker (True) or demote a speaker to listener (False).

        Hosts and cohosts are always on stage: promoting them is a no-op and demoting them
        raises `RoleChangeError` (mute them instead). Applies to a bridged participant of
        that identity too. Raises `NotInRoom` if absent.
        """
        session, bridged = self._present(identity_key)
        if bridged is not None:
            bridged.role = _staged(bridged.role, on_stage)
        if session is not None:
            role = _staged(session.role, on_stage)
            if role is session.role:
                return
            if self.listeners_only:
                # Their microphone must reach the mixer: disconnect, the page joins again.
                self._tasks.spawn(
                    self._drop(session, "promoted; the stage is on the origin"),
                    name=f"drop-{identity_key}",
                )
                return
            was_mixed = session.mixed
            session.role = role
            self._replace(session, was_mixed)
            self._update_gauges()

    def set_muted(self, identity_key: str, muted: bool) -> None:
        """Mute or unmute a participant's microphone in the mix (a bridged participant's
        audio too). Raises `NotInRoom`."""
        session, bridged = self._present(identity_key)
        if bridged is not None:
            bridged.muted = muted
        if session is not None:
            was_mixed = session.mixed
            session.muted = muted
            self._replace(session, was_mixed)

    async def remove(self, identity_key: str) -> bool:
        """Disconnect a participant (and forget them as a bridged one); False if they were
        not here."""
        bridged = self._bridged.pop(identity_key, None) is not None
        session = self._sessions.get(identity_key)
        if session is None:
            return bridged
        self._detach(session)
        self._update_gauges()
        await self._close_session(session)
        return True

    # -- bridges ------------------------------------------------------------------------

    def add_external_voice(
        self,
        key: str,
        inbound: JitterBuffer,
        outbound: PacketTrack,
        *,
        levels: VoiceLevels | None = None,
    ) -> None:
        """Mix a voice that does not come over WebRTC (a bridge: all of Discord as one voice)
        from the next tick on, and send it its mix-minus on ``outbound``. ``key`` names the
        voice in the mixer; it must not be an identity key (ValueError). ``levels`` meters
        the bridged participants behind it for `state`. Raises `RoomClosed`.
        """
        if self._closed:
            raise RoomClosed("This room has closed.")
        if self.listeners_only:
            raise self._origin_only()
        if key in self._sessions:
            raise ValueError(f"{key!r} is a participant's identity key")
        self._external[key] = levels
        self._mixer.add_voice(key, inbound, outbound)

    def remove_external_voice(self, key: str) -> None:
        """Stop mixing an external voice (idempotent)."""
        if key in self._external:
            del self._external[key]
            self._mixer.remove_voice(key)

    def put_bridged(self, participant: BridgedParticipant) -> None:
        """List someone present through a bridge, or replace what the room knows of them."""
        if not self._closed:
            self._bridged[participant.identity_key] = participant

    def drop_bridged(self, identity_key: str) -> bool:
        """They left the bridged channel; False if they were not listed."""
        return self._bridged.pop(identity_key, None) is not None

    def bridged(self, identity_key: str) -> BridgedParticipant | None:
        return self._bridged.get(identity_key)

    async def revoke_ticket(self, ticket_id: str) -> bool:
        """Disconnect whoever uses this ticket (refund, cancellation); False if nobody does."""
        identity_key = self._tickets.get(ticket_id)
        if identity_key is None:
            return False
        return await self.remove(identity_key)

    # -- the listener mix elsewhere ------------------------------------------------------

    def tap(self, key: str, sink: PacketSink | None) -> None:
        """Also hand every listener-mix packet to ``sink`` (None removes it); while any tap is
        set the mix is encoded even with no listener here. An origin's NATS publisher."""
        if sink is None:
            self._mixer.sinks.pop(key, None)
        else:
            self._mixer.sinks[key] = sink

    def relay(self, packet: Packet[Stream]) -> tuple[int, int]:
        """Give one listener-mix packet made elsewhere (the origin's, over NATS) to every
        listener here; returns (delivered, dropped-oldest) as `Fanout.publish`."""
        delivered, dropped = self._mixer.listeners.publish(packet)
        if self.metrics is not None:
            self.metrics.paths(delivered, self._mixer.listeners.fast)
        return delivered, dropped

    @property
    def fanout(self) -> Fanout:
        """The listener fan-out (its counters: `Fanout.fast`, `Fanout.busy`)."""
        return self._mixer.listeners

    def _origin_only(self) -> OriginOnly:
        where = f" ({self.origin_url})" if self.origin_url else ""
        return OriginOnly(
            "This audio node relays listeners only. Hosts, co-hosts, speakers and moderators "
            f"join on the room's origin node{where}.",
            origin=self.origin_url,
        )

    # -- recording ----------------------------------------------------------------------

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    @property
    def recorded_seconds(self) -> float:
        """Audio written to the running recording so far (0 when not recording)."""
        return 0.0 if self._recorder is None else self._recorder.seconds

    async def start_recording(self, path: Path) -> bool:
        """Write the listeners' mix to ``path`` (Ogg/Opus) from the next tick on.

        False if a recording is already running (it goes on, into its own file). Raises
        `RecordingFailed` if the file cannot be created and `RoomClosed` once closed.
        """
        async with self._recording_lock:
            if self._closed:
                raise RoomClosed("This room has closed.")
            if self.listeners_only:
                raise self._origin_only()
            if self._recorder is not None:
                return False
            recorder = Recorder(path)
            await recorder.open()
            if self._closed:
                await recorder.aclose()
                raise RoomClosed("This room has closed.")
            self._recorder = recorder
            self._mixer.sinks["recorder"] = recorder.write
            logger.info("room %s: recording to %s", self.space_id, path)
            return True

    async def stop_recording(self) -> Path | None:
        """Stop recording and finish the file; its path, or None if nothing was recorded."""
        async with self._recording_lock:
            recorder, self._recorder = self._recorder, None
            if recorder is None:
                return None
            self._mixer.sinks.pop("recorder", None)
            return await recorder.aclose()

    # -- inspection ---------------------------------------------------------------------

    def __contains__(self, identity_key: object) -> bool:
        return identity_key in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def listener_count(self) -> int:
        """Connected-or-connecting sessions off stage (bridged people not counted)."""
        return sum(1 for s in self._sessions.values() if not s.role.on_stage)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._sessions))

    def session(self, identity_key: str) -> PeerSession | None:
        """The live session of a participant, if any (for ``audio.install`` and tests)."""
        return self._sessions.get(identity_key)

    def state(self) -> RoomState:
        """A snapshot of who is here, in which role, and how loud."""
        levels = self._mixer.levels()
        participants = []
        for session in self._sessions.values():
            level = levels.get(session.identity_key, 0.0)
            participants.append(
                ParticipantState(
                    identity_key=session.identity_key,
                    display_name=session.display_name,
                    role=session.role.value,
                    muted=session.muted,
                    level=level,
                    connection=session.pc.connectionState,
                )
            )
        bridged_levels: dict[str, float] = {}
        for levels_of in self._external.values():
            if levels_of is not None and self._bridged:
                bridged_levels.update(levels_of())
        for bridged in self._bridged.values():
            if bridged.identity_key in self._sessions:
                continue  # also here on the web: listed once, as that session
            # Mixed also on the room's side now: a mute shows before the bridge's next tick.
            level = bridged_levels.get(bridged.identity_key, 0.0) if bridged.mixed else 0.0
            participants.append(
                ParticipantState(
                    identity_key=bridged.identity_key,
                    display_name=bridged.display_name,
                    role=bridged.role.value,
                    muted=bridged.muted,
                    level=level,
                    connection="connected",
                    via=bridged.via,
                )
            )
        participants.sort(key=lambda p: (_STAGE_ORDER[Role(p.role)], p.display_name))
        return RoomState(
            space_id=self.space_id,
            participants=tuple(participants),
            listener_count=sum(1 for p in participants if p.role == Role.LISTENER),
            mixer_running=self._mixer.running,
            recording=self.recording,
        )

    # -- internals ----------------------------------------------------------------------

    def _present(self, identity_key: str) -> tuple[PeerSession | None, BridgedParticipant | None]:
        session = self._sessions.get(identity_key)
        bridged = self._bridged.get(identity_key)
        if session is None and bridged is None:
            raise NotInRoom("That person is not in the room.")
        return session, bridged

    def _place(self, session: PeerSession) -> None:
        """Route the session's audio: mixed voice with mix-minus, or listener fan-out."""
        key = session.identity_key
        if session.mixed:
            self._mixer.listeners.unsubscribe(session.outbound)
            self._mixer.add_voice(key, session.inbound, session.outbound)
        else:
            self._mixer.remove_voice(key)
            self._mixer.listeners.subscribe(session.outbound)

    def _replace(self, session: PeerSession, was_mixed: bool) -> None:
        if session.mixed != was_mixed and self._sessions.get(session.identity_key) is session:
            self._place(session)

    def _detach(self, session: PeerSession) -> bool:
        """Take a session out of the room's maps, mixer and fan-out (synchronously)."""
        key = session.identity_key
        if self._sessions.get(key) is not session:
            return False
        del self._sessions[key]
        if session.ticket_id is not None and self._tickets.get(session.ticket_id) == key:
            del self._tickets[session.ticket_id]
        self._mixer.remove_voice(key)
        self._mixer.listeners.unsubscribe(session.outbound)
        return True

    async def _close_session(self, session: PeerSession) -> None:
        self._closing.add(session)
        try:
            await session.close()
        except Exception:
            logger.exception("room %s: closing %s failed", self.space_id, session.identity_key)
        # Not on cancellation: the shielded close goes on, and Room.close must wait for it.
        self._closing.discard(session)

    async def _drop(self, session: PeerSession, reason: str) -> None:
        if self._detach(session):
            logger.info("room %s: dropping %s (%s)", self.space_id, session.identity_key, reason)
            self._update_gauges()
            await self._close_session(session)

    def _on_connection_state(self, session: PeerSession) -> None:
        state = session.pc.connectionState
        if state in ("failed", "closed") and self._sessions.get(session.identity_key) is session:
            self._tasks.spawn(
                self._drop(session, f"connection {state}"),
                name=f"drop-{session.identity_key}",
            )

    def _on_rtp(self, session: PeerSession, packet: RtpPacket, arrival: float) -> None:
        session.packets_in += 1
        if not session.mixed:
            return  # a listener's or muted microphone: accepted, never buffered or mixed
        if packet.ssrc != session.ssrc:
            if session.ssrc is not None:
                session.inbound.reset()
            session.ssrc = packet.ssrc
        result = session.inbound.put(
            packet.sequence_number, packet.timestamp, packet.payload, arrival
        )
        if result is PutResult.LATE and self.metrics is not None:
            self.metrics.packets_late.inc()

    def _update_gauges(self) -> None:
        if self.on_audience is not None:
            self.on_audience(self)
        if self.metrics is None:
            return
        on_stage = sum(1 for s in self._sessions.values() if s.role.on_stage)
        self.metrics.speakers.set(on_stage)
        self.metrics.listeners.set(len(self._sessions) - on_stage)

    async def _watch(self) -> None:
        """Drop sessions whose peer never finished connecting (closed tab mid-join)."""
        while True:
            await asyncio.sleep(self.settings.watch_interval)
            now = self.clock()
            for session in list(self._sessions.values()):
                if (
                    session.pc.connectionState in ("new", "connecting")
                    and now - session.joined_at > self.settings.connect_timeout
                ):
                    await self._drop(session, "never connected")


def _staged(role: Role, on_stage: bool) -> Role:
    """The role after a promotion (True) or demotion (False); hosts stay on stage."""
    if role in (Role.HOST, Role.COHOST):
        if not on_stage:
            raise RoleChangeError(f"A {role} stays on stage; mute them instead.")
        return role
    return Role.SPEAKER if on_stage else Role.LISTENER
