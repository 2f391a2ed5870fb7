"""`VoiceBridge`: one Discord Stage or voice channel joined to one room, both ways.

discord.py has no voice receive, so the bridge hooks two places of its voice client:
the voice websocket (every message goes through the `VoiceConnectionState` hook; we read
SPEAKING and CLIENT_DISCONNECT) and the UDP socket reader thread (`add_socket_listener`,
which survives discord.py's own voice reconnects). discord.py's reconnect logic handles
voice server moves and resumes; if the client is disconnected for good, `run` joins again.

Who is heard: a Discord user is mixed while Discord lets them speak (`on_stage`, read live
from discord.py's cache: present, not server-muted, not suppressed in a Stage) *and* the
room does (their `BridgedParticipant`, kept by the `Roster`: admitted to the Space, on
stage and not muted). So a
mute on either side silences them from the next tick, before the other side catches up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

import aiohttp
import davey
import discord
from discord.voice_state import VoiceConnectionState

from audio.bridge.receive import DaveDecrypt, DiscordVoices, Received, Receiver
from audio.bridge.source import DiscordOutbound, RoomSource
from audio.bridge.speakers import CLIENT_DISCONNECT, BridgedRoom, Roster, Seats, SsrcMap, no_seat
from audio.bridge.transport import TransportCipher
from audio.errors import RoomClosed
from audio.fanout import PacketTrack
from audio.jitter import JitterBuffer
from audio.room import VoiceLevels

logger = logging.getLogger(__name__)

VOICE_READY: Final = 2  # voice gateway opcodes the bridge logs
VOICE_RESUMED: Final = 9

VOICE_KEY: Final = "discord:bridge"
"""The room's mixer key of the Discord side (one voice for all of Discord)."""


class VoicePort(BridgedRoom, Protocol):
    """The part of `Room` the bridge needs: one external voice, and the bridged people."""

    def add_external_voice(
        self,
        key: str,
        inbound: JitterBuffer,
        outbound: PacketTrack,
        *,
        levels: VoiceLevels | None = None,
    ) -> None: ...

    def remove_external_voice(self, key: str) -> None: ...


class BridgeVoiceClient(discord.VoiceClient):
    """discord.py's voice client with its websocket messages handed to the bridge."""

    def __init__(
        self, client: discord.Client, channel: discord.abc.Connectable, *, bridge: VoiceBridge
    ) -> None:
        self._bridge = bridge  # before super(): it builds the connection state
        super().__init__(client, channel)

    def create_connection_state(self) -> VoiceConnectionState:
        return VoiceConnectionState(self, hook=self._on_voice_message)

    async def _on_voice_message(self, ws: Any, message: dict[str, Any]) -> None:
        self._bridge.voice_message(message)

    def add_socket_listener(self, callback: Callable[[bytes], Any]) -> None:
        self._connection.add_socket_listener(callback)

    def dave_session(self) -> davey.DaveSession | None:
        """The DAVE session while the call uses DAVE; None once discord.py has downgraded
        the call to transport encryption only (its session then lingers, reset)."""
        if self._connection.dave_protocol_version == 0:
            return None
        session: davey.DaveSession | None = self._connection.dave_session
        return session


class VoiceBridge:
    """Bridges ``room`` (through its `VoicePort`) and one Discord channel.

    ``admit(user_id)`` is Discord's side of whose voice is mixed (`on_stage`); the room's
    side is the `Roster`, whose ``seats`` say who is host and, in a voice channel, who may
    speak (ticket holders and moderators where the host allows it). The
    per-user jitter buffers start at 20 ms (Discord's media servers pace steadily) and
    grow toward ``max_delay`` with the measured jitter; bench/bridge_latency.py.
    """

    def __init__(
        self,
        voices: VoicePort,
        admit: Callable[[int], bool],
        *,
        seats: Seats = no_seat,
        clock: Callable[[], float] = time.monotonic,
        min_delay: float = 0.020,
        max_delay: float = 0.060,
        join_timeout: float = 10.0,
        check_interval: float = 0.25,
        stall_timeout: float = 2.0,
    ) -> None:
        self._port = voices
        self.join_timeout = join_timeout
        self.check_interval = check_interval
        self.stall_timeout = stall_timeout
        self._down_since: float | None = None
        self.ssrcs = SsrcMap()
        self.roster = Roster(voices, seats)
        self._discord_admits = admit
        self.inbound = DiscordVoices(self.admits, min_delay=min_delay, max_delay=max_delay)
        self.outbound = DiscordOutbound()
        self.source = RoomSource(self.outbound)
        self.receiver = Receiver(self.ssrcs, self._cipher, self._dave)
        self._clock = clock
        self._client: BridgeVoiceClient | None = None
        self._cipher_cache: tuple[str, bytes, TransportCipher] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._attached = False

    # -- wiring into the room and discord.py ----------------------------------------------

    def attach(self) -> None:
        """Become a voice in the room's mixer (idempotent)."""
        if not self._attached:
            self._loop = asyncio.get_running_loop()
            self._port.add_external_voice(
                VOICE_KEY, self.inbound, self.outbound, levels=self.levels
            )
            self._attached = True

    def detach(self) -> None:
        """Leave the mixer, and the room's list of participants."""
        self.roster.clear()
        if self._attached:
            self._port.remove_external_voice(VOICE_KEY)
            self._attached = False

    def admits(self, user_id: int) -> bool:
        """Whether this Discord user is mixed now: both Discord and the room allow it."""
        return self._discord_admits(user_id) and self.roster.mixed(user_id)

    def levels(self) -> dict[str, float]:
        """Each listed Discord user's level (measured as the mixer measures a voice, 0 while
        not mixed), by the room's identity key: how the room shows who is talking."""
        levels: dict[str, float] = {}
        for user_id, level in self.inbound.levels().items():
            key = self.roster.identity_key(user_id)
            if key is not None and level:
                levels[key] = level
        return levels

    async def reseat(self, user_id: int) -> bool:
        """Ask the Space about this member of the channel again now (`Roster.reseat`)."""
        return await self.roster.reseat(user_id)

    async def follow(self, channel: discord.VoiceChannel | discord.StageChannel) -> None:
        """Bring the room's list of Discord participants up to date; a failure to look a
        member up is logged and tried again next time."""
        try:
            await self.roster.refresh(channel)
        except Exception:
            logger.exception("bridge could not update who is in channel %s", channel.id)

    async def join(self, channel: discord.VoiceChannel | discord.StageChannel) -> None:
        """Connect to ``channel``, speak there, and start both directions."""
        self.attach()

        def build(client: discord.Client, where: discord.abc.Connectable) -> BridgeVoiceClient:
            return BridgeVoiceClient(client, where, bridge=self)

        voice = await channel.connect(
            cls=build, self_deaf=False, reconnect=True, timeout=self.join_timeout
        )
        self._client = voice
        voice.add_socket_listener(self.datagram)
        await self.follow(channel)
        if isinstance(channel, discord.StageChannel):
            me = channel.guild.me
            try:
                await me.edit(suppress=False)
            except discord.HTTPException as exc:
                logger.warning("could not become a speaker in stage %s: %s", channel.id, exc)
        self._play()
        logger.info("bridge joined channel %s", channel.id)

    def _play(self) -> None:
        """Start the room's mix playing if discord.py's player is not (it ends on errors)."""
        voice = self._client
        if voice is not None and voice.is_connected() and not voice.is_playing():
            try:
                voice.play(self.source)
            except discord.ClientException as exc:  # lost the connection in between
                logger.info("bridge could not start playing yet: %s", exc)

    @property
    def playing(self) -> bool:
        return self._client is not None and self._client.is_playing()

    async def leave(self) -> None:
        """Disconnect (idempotent). A client discord.py already cleaned up is only dropped:
        disconnecting it again would wait for a voice state update that never comes."""
        voice, self._client = self._client, None
        if voice is not None and voice.guild.voice_client is voice:
            voice.stop()
            await voice.disconnect(force=True)
        self.ssrcs.clear()

    @property
    def connected(self) -> bool:
        """Connected with a live voice websocket. discord.py keeps reporting ``connected``
        while it tries to resume a closed one, so the socket itself is checked too."""
        voice = self._client
        if voice is None or not voice.is_connected():
            return False
        socket = getattr(voice.ws, "ws", None)  # discord.py's wrapper around aiohttp's
        return socket is not None and not socket.closed and socket.close_code is None

    @property
    def given_up(self) -> bool:
        """True when there is no voice client, or discord.py has cleaned ours up (it was
        disconnected or moved for good). While discord.py is still reconnecting or
        resuming on its own, this stays False and the bridge leaves it alone."""
        voice = self._client
        return voice is None or voice.guild.voice_client is not voice

    async def run(
        self, channel: discord.VoiceChannel | discord.StageChannel, stop: asyncio.Event
    ) -> None:
        """Stay in ``channel`` until ``stop`` is set: join, and join again whenever discord.py
        gives the connection up (the bot was disconnected or moved, reconnects exhausted).
        The room is never touched by a failure here: it keeps running without Discord."""
        stopping = asyncio.create_task(stop.wait(), name="bridge-stop")
        try:
            while not stop.is_set():
                if self.given_up or self._stalled():
                    self._down_since = None
                    joining = asyncio.create_task(self._rejoin(channel), name="bridge-join")
                    await asyncio.wait({joining, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if not joining.done():
                        joining.cancel()
                    await asyncio.gather(joining, return_exceptions=True)
                    if not joining.cancelled() and isinstance(joining.exception(), RoomClosed):
                        logger.info("bridge stops: the room of channel %s closed", channel.id)
                        return
                else:
                    self._play()
                    await self.follow(channel)
                await asyncio.wait({stopping}, timeout=self.check_interval)
        finally:
            stopping.cancel()
            await asyncio.gather(stopping, return_exceptions=True)
            await self.leave()
            self.detach()
            self.outbound.stop()

    def _stalled(self) -> bool:
        """Down for longer than ``stall_timeout`` while discord.py still tries on its own
        (its resume after close code 4015 can wait out its whole connect timeout)."""
        if self.connected:
            self._down_since = None
            return False
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
            return False
        return now - self._down_since > self.stall_timeout

    async def _rejoin(self, channel: discord.VoiceChannel | discord.StageChannel) -> None:
        try:
            await self.leave()
            await asyncio.wait_for(self.join(channel), self.join_timeout)
        except (discord.ClientException, TimeoutError, OSError, aiohttp.ClientError) as exc:
            logger.warning("bridge could not join %s, retrying: %r", channel.id, exc)
            await asyncio.sleep(self.check_interval)

    # -- events from discord.py -------------------------------------------------------

    def voice_message(self, message: dict[str, Any]) -> None:
        """A voice websocket message (event loop)."""
        op = message.get("op")
        if op == VOICE_READY:  # a (new) voice server session: first join, region move
            logger.info(
                "bridge voice session ready (ssrc %s)", (message.get("d") or {}).get("ssrc")
            )
        elif op == VOICE_RESUMED:
            logger.info("bridge voice session resumed")
        user_id = self.ssrcs.handle(message)
        if user_id is not None and message.get("op") == CLIENT_DISCONNECT:
            self.inbound.forget(user_id)

    def datagram(self, data: bytes) -> None:
        """A UDP datagram (socket reader thread): decrypt here, buffer on the loop."""
        received = self.receiver.receive(data)
        if received is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._deliver, received, self._clock())

    def _deliver(self, received: Received, arrival: float) -> None:
        self.inbound.put_received(received, arrival)

    def _cipher(self) -> TransportCipher | None:
        voice = self._client
        if voice is None:
            return None
        try:
            mode, key = voice.mode, bytes(voice.secret_key)
        except (AttributeError, TypeError):
            return None  # not negotiated yet (discord.py's MISSING)
        cached = self._cipher_cache
        if cached is None or cached[0] != mode or cached[1] != key:
            cached = (mode, key, TransportCipher(mode, key))
            self._cipher_cache = cached
        return cached[2]

    def _dave(self) -> DaveDecrypt | None:
        voice = self._client
        session = voice.dave_session() if voice is not None else None
        if session is None:
            return None

        def decrypt(user_id: int, payload: bytes) -> bytes:
            return session.decrypt(user_id, davey.MediaType.audio, payload)

        return decrypt


def on_stage(channel: discord.VoiceChannel | discord.StageChannel) -> Callable[[int], bool]:
    """Discord's side of ``admit``: members present in ``channel`` and not server-muted; in
    a Stage, also not suppressed (speakers). A voice channel has no speaker rule of its
    own: there the room's side (the `Roster`'s seats: ticket holders, where the host allows
    it) decides. Read live from discord.py's voice-state cache, so a promotion or a server
    mute counts from the next tick."""

    def admit(user_id: int) -> bool:
        state = channel.voice_states.get(user_id)
        if state is None or state.channel is None or state.channel.id != channel.id:
            return False
        if state.mute:
            return False
        return not (isinstance(channel, discord.StageChannel) and state.suppress)

    return admit
