"""Discord → room: datagrams from the bot's voice socket become one voice in the room's mixer.

`Receiver` runs on discord.py's socket reader thread: it drops RTCP and IP-discovery
replies, decrypts the transport layer, then the DAVE layer when the channel uses it, and
names the sender from the `SsrcMap`. `DiscordVoices` lives on the event loop: it keeps a
`JitterBuffer` and an `OpusDecoder` per Discord user, and the mixer pulls it once per tick
like any speaker's buffer. Each pull mixes the admitted users (Stage speakers, not
suppressed) and hands the mixer one Opus packet, so to the room all of Discord is a single
voice — and that voice's mix-minus is exactly "the room without Discord", what the bot
plays back into the channel. Each admitted user's frame is also metered on the way (the
mixer's own `smoothed_level`), so the room can show who on Discord is talking.
"""

from __future__ import annotations

import array
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from audio import pcm
from audio.bridge import rtp
from audio.bridge.speakers import SsrcMap
from audio.bridge.transport import DecryptError, TransportCipher
from audio.jitter import JitterBuffer, Playout, Slot
from audio.mixer import smoothed_level
from audio.opus import FRAME_BYTES, FRAME_SAMPLES, OpusDecoder, OpusEncoder

logger = logging.getLogger(__name__)

DaveDecrypt = Callable[[int, bytes], bytes]
"""``(user_id, payload) -> opus``: the DAVE layer, or absent where the channel has none."""


@dataclass(frozen=True, slots=True)
class Received:
    user_id: int
    packet: rtp.RtpPacket


@dataclass(slots=True)
class ReceiveStats:
    packets: int = 0
    rtcp: int = 0
    malformed: int = 0
    undecryptable: int = 0
    unknown_ssrc: int = 0
    dave_failed: int = 0


class Receiver:
    """Turns one raw datagram into ``Received`` or None (counted in `stats`)."""

    def __init__(
        self,
        ssrcs: SsrcMap,
        cipher: Callable[[], TransportCipher | None],
        dave: Callable[[], DaveDecrypt | None] = lambda: None,
    ) -> None:
        self._ssrcs = ssrcs
        self._cipher = cipher
        self._dave = dave
        self.stats = ReceiveStats()

    def receive(self, datagram: bytes) -> Received | None:
        if rtp.is_rtcp(datagram):
            self.stats.rtcp += 1
            return None
        if len(datagram) < rtp.FIXED_HEADER or datagram[0] >> 6 != rtp.VERSION:
            return None  # IP discovery replies and keep-alives
        cipher = self._cipher()
        if cipher is None:
            return None
        try:
            packet = cipher.open(datagram)
        except rtp.BadPacket:
            self.stats.malformed += 1
            return None
        except DecryptError:
            self.stats.undecryptable += 1
            return None
        user_id = self._ssrcs.user(packet.ssrc)
        if user_id is None:
            self.stats.unknown_ssrc += 1
            return None
        dave = self._dave()
        if dave is not None:
            try:
                packet = _with_payload(packet, dave(user_id, packet.payload))
            except Exception:
                self.stats.dave_failed += 1
                logger.debug("DAVE decrypt failed for user %s", user_id, exc_info=True)
                return None
        self.stats.packets += 1
        return Received(user_id, packet)


def _with_payload(packet: rtp.RtpPacket, payload: bytes) -> rtp.RtpPacket:
    return rtp.RtpPacket(
        sequence=packet.sequence,
        timestamp=packet.timestamp,
        ssrc=packet.ssrc,
        payload=payload,
        payload_type=packet.payload_type,
        marker=packet.marker,
        csrcs=packet.csrcs,
        extension_profile=packet.extension_profile,
        extension=packet.extension,
    )


@dataclass(eq=False, slots=True)
class _User:
    buffer: JitterBuffer
    decoder: OpusDecoder = field(default_factory=OpusDecoder)
    ssrc: int | None = None
    level: float = 0.0


def _fit(frame: bytes) -> bytes:
    if len(frame) == FRAME_BYTES:
        return frame
    return frame[:FRAME_BYTES].ljust(FRAME_BYTES, b"\0")


class DiscordVoices(JitterBuffer):
    """All Discord users as one mixer voice (the mixer pulls it like a speaker's buffer).

    ``admit(user_id)`` decides who is mixed (a Stage speaker who is not suppressed, or a
    ticket holder in a voice channel); users not admitted are still pulled each tick so
    their buffer stays current, and are heard from the next tick once admitted. `levels`
    meters each user as the mixer meters a voice; a user not admitted reads 0. Use from
    the event loop only.
    """

    def __init__(
        self,
        admit: Callable[[int], bool],
        *,
        min_delay: float = 0.040,
        max_delay: float = 0.060,
        bitrate: int = 96_000,
        buffer_factory: Callable[[], JitterBuffer] | None = None,
    ) -> None:
        super().__init__()
        self._admit = admit
        self._new_buffer = buffer_factory or (
            lambda: JitterBuffer(min_delay=min_delay, max_delay=max_delay)
        )
        self._users: dict[int, _User] = {}
        # The hop into the mixer is lossless in practice at this rate, and FEC is useless.
        self._encoder = OpusEncoder(bitrate=bitrate, fec=False, expected_loss=0)
        self._pts = 0

    def put_received(self, received: Received, arrival: float) -> None:
        """Buffer one packet from ``received.user_id`` (call on the event loop)."""
        user = self._users.get(received.user_id)
        if user is None:
            user = _User(self._new_buffer())
            self._users[received.user_id] = user
        packet = received.packet
        if user.ssrc != packet.ssrc:
            if user.ssrc is not None:
                user.buffer.reset()
            user.ssrc = packet.ssrc
        user.buffer.put(packet.sequence, packet.timestamp, packet.payload, arrival)

    def forget(self, user_id: int) -> None:
        """Drop a user who left the channel."""
        self._users.pop(user_id, None)

    @property
    def buffered(self) -> int:
        """Packets of every user stored and not yet played out."""
        return sum(user.buffer.buffered for user in self._users.values())

    @property
    def users(self) -> frozenset[int]:
        return frozenset(self._users)

    def levels(self) -> dict[int, float]:
        """Smoothed RMS level in [0, 1] of each user, as of the last pull; 0 if not mixed."""
        return {user_id: user.level for user_id, user in self._users.items()}

    def reset(self) -> None:
        for user in self._users.values():
            user.buffer.reset()
            user.level = 0.0

    def pop(self) -> Playout:
        frames: dict[str, array.array[int]] = {}
        for user_id, user in self._users.items():
            slot = user.buffer.pop()
            if slot is None and not user.level:
                continue  # silent and metered at 0: most of a Stage's audience, every tick
            decoded: bytes | None = None
            if slot is not None:
                decoded = user.decoder.conceal() if slot is Slot.LOST else user.decoder.decode(slot)
            if not self._admit(user_id):
                user.level = 0.0
                continue
            frame = None if decoded is None else pcm.samples(_fit(decoded))
            if frame is not None:
                frames[str(user_id)] = frame
            user.level = smoothed_level(user.level, frame)
        if not frames:
            return None
        mix = pcm.Mix(frames).listeners
        packets = self._encoder.encode(mix, self._pts)
        self._pts += FRAME_SAMPLES
        if not packets:
            return Slot.LOST
        return bytes(packets[0])
