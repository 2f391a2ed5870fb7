"""The room's 20 ms mixing clock: decode, mix, encode once for listeners, mix-minus per voice.

Every tick (an owned asyncio task; its lateness is measured) the mixer

1. pulls one 20 ms slot from each voice's `JitterBuffer`,
2. decodes it (or conceals with Opus PLC), mixes with clipping, encodes the listeners' mix
   **once**, and encodes each voice's mix-minus (the mix without their own voice) with that
   voice's own encoder, except where nothing needs encoding:

   * a mix that is silence (an empty stage; a lone speaker's mix-minus) is Opus's 3-byte
     silence frame (`SILENCE_PACKET`), not an encode of 960 zeros (19 bytes);
   * while one voice alone is heard and its packet this tick was one whole 20 ms frame, the
     listeners get that very packet (the speaker's own encode, passed through): no second
     generation of lossy coding, and no encode at all for the usual one-speaker Space.

   An encoder that sat out is replaced by a fresh one when it is needed again, as a stream
   resumes after DTX: its history is stale audio;
3. hands the one listener packet to every listener through the `Fanout`, and each mix-minus
   packet to its speaker's `PacketTrack`.

Audio is 48 kHz mono s16 (see `audio.opus`). All streams are stamped with ``tick * 960`` as
pts, so moving a participant between the listener stream and a mix-minus stream keeps their
RTP timestamps continuous.

The work runs on the event loop, not in a worker thread, on purpose: PyAV holds the GIL
through libopus calls (two threads encoding take as long as one, measured here), so a thread
buys no parallelism and only adds GIL hand-offs with a loop that is busy serving hundreds of
senders. A tick costs about 0.3 ms of CPU with one voice and 2-3 ms with ten (mostly the
per-voice mix-minus encodes), so the loop is held for at most a few milliseconds per tick.
"""

from __future__ import annotations

import array
import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from av.packet import Packet
from av.stream import Stream

from audio import pcm
from audio.fanout import Fanout, PacketTrack
from audio.jitter import FRAME_SECONDS, JitterBuffer, Playout, Slot
from audio.metrics import RoomMetrics
from audio.opus import FRAME_BYTES, FRAME_SAMPLES, TIME_BASE, OpusDecoder, OpusEncoder
from bot.tasks import TaskGroup

logger = logging.getLogger(__name__)

MAX_CATCH_UP = 0.200
"""Past this much lateness the mixer skips ticks instead of bursting to catch up."""

SPEAKING_LEVEL = 0.01
"""RMS level (about -40 dBFS) above which a voice counts as speaking."""

_LEVEL_DECAY = 0.8
_LEVEL_FLOOR = 5e-5
"""Under this a decaying meter reads exactly 0 (the room state shows 4 decimals anyway)."""
_MAX_FIFO_BYTES = 3 * FRAME_BYTES

WHOLE_MAX_BYTES = 400
"""A voice's packet passes through to listeners only up to this size (160 kbit/s at 20 ms);
a larger one is re-encoded at the room's bitrate, so one browser's settings cannot multiply
every listener's bandwidth."""

SILENCE_PACKET = b"\xf8\xff\xfe"
"""An Opus packet of 20 ms of silence (TOC 0xF8: CELT fullband, 20 ms, mono, one frame;
a frame every decoder renders as digital silence)."""


def smoothed_level(previous: float, frame: array.array[int] | None) -> float:
    """A voice's meter after one tick: the frame's RMS level if louder, else ``previous``
    decayed (``frame`` None: nothing heard this tick). The one rule for every level the
    room shows: the mixer's voices and each Discord user behind the bridge."""
    decayed = previous * _LEVEL_DECAY
    if decayed < _LEVEL_FLOOR:
        decayed = 0.0
    return decayed if frame is None else max(pcm.level(frame), decayed)


EncoderFactory = Callable[[], OpusEncoder]
DecoderFactory = Callable[[], OpusDecoder]
PacketSink = Callable[["Packet[Stream]"], None]
"""Takes each listener packet as it is published (the recorder, the NATS publisher); must
not block."""


@dataclass(slots=True)
class _Encoding:
    """One outgoing stream's encoder, which may sit ticks out (silence, a passed-through
    packet): when it resumes after that, a fresh encoder takes over, as a stream resumes
    after DTX, since the old one's history is stale audio. Made on first use."""

    factory: EncoderFactory
    encoder: OpusEncoder | None = None
    paused: bool = False

    def encode(self, pcm: bytes, pts: int) -> list[Packet[Stream]]:
        if self.encoder is None or self.paused:
            self.encoder, self.paused = self.factory(), False
        return self.encoder.encode(pcm, pts)

    def pause(self) -> None:
        self.paused = self.encoder is not None


@dataclass(eq=False, slots=True)
class _Voice:
    key: str
    inbound: JitterBuffer
    outbound: PacketTrack
    decoder: OpusDecoder
    encoding: _Encoding
    fifo: bytearray = field(default_factory=bytearray)
    packet_bytes: int = FRAME_BYTES
    level: float = 0.0
    reported_lost: int = 0
    whole: bytes | None = None
    """This tick's frame as the voice's own Opus packet, when it was exactly one packet of
    20 ms (not concealed, not split across ticks): what listeners may get as it is."""


@dataclass(slots=True)
class _Rendered:
    listener_packets: list[Packet[Stream]]
    voice_packets: list[tuple[_Voice, list[Packet[Stream]]]]


class Mixer:
    """Mixes the room's voices on a 20 ms clock; one per room.

    A *voice* is a participant whose microphone is mixed (on stage and not muted). The room
    calls `add_voice` / `remove_voice` as roles change; the change takes effect from the next
    tick. Everyone else hears `listeners`, the shared-encode fan-out. While `sinks` holds
    any (the recorder, the NATS publisher of an origin), the listener mix is encoded even
    with no listener, and each of its packets is also handed to every sink.
    """

    def __init__(
        self,
        *,
        name: str,
        metrics: RoomMetrics | None = None,
        encoder_factory: EncoderFactory = OpusEncoder,
        decoder_factory: DecoderFactory = OpusDecoder,
    ) -> None:
        self.name = name
        self.listeners = Fanout()
        self._metrics = metrics
        self._encoder_factory = encoder_factory
        self._decoder_factory = decoder_factory
        self._listener = _Encoding(encoder_factory)
        self.passed_through = 0
        """Listener packets that were a lone speaker's own packet (no encode)."""
        self._voices: dict[str, _Voice] = {}
        self._tick = 0
        self._tasks = TaskGroup(f"mixer-{name}")
        self._runner: asyncio.Task[None] | None = None
        self.ticks_skipped = 0
        self.sinks: dict[str, PacketSink] = {}
        """Extra takers of the listener mix, by name; the room adds and removes them."""

    # -- voices -------------------------------------------------------------------------

    def add_voice(self, key: str, inbound: JitterBuffer, outbound: PacketTrack) -> None:
        """Mix ``inbound`` from the next tick on and send ``key`` its mix-minus on ``outbound``.

        The buffer is reset so a re-mixed speaker starts from fresh packets, not from audio
        that queued while they were muted.
        """
        inbound.reset()
        self._voices[key] = _Voice(
            key=key,
            inbound=inbound,
            outbound=outbound,
            decoder=self._decoder_factory(),
            encoding=_Encoding(self._encoder_factory),
        )

    def remove_voice(self, key: str) -> None:
        """Stop mixing ``key`` from the next tick on."""
        self._voices.pop(key, None)

    def has_voice(self, key: str) -> bool:
        return key in self._voices

    def levels(self) -> dict[str, float]:
        """Smoothed RMS level in [0, 1] of each voice, as of the last tick."""
        return {key: voice.level for key, voice in self._voices.items()}

    @property
    def tick(self) -> int:
        """Ticks mixed or skipped so far; tick ``n`` carries pts ``n * 960``."""
        return self._tick

    # -- clock --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the 20 ms clock (idempotent)."""
        if self._runner is None:
            self._runner = self._tasks.spawn(self._run(), name="clock")

    @property
    def running(self) -> bool:
        return self._runner is not None and not self._runner.done()

    async def stop(self) -> None:
        """Stop the clock and wait for it to end."""
        await self._tasks.close()
        self._voices.clear()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            lateness = loop.time() - deadline
            if lateness > MAX_CATCH_UP:
                skipped = int(lateness / FRAME_SECONDS)
                self._tick += skipped
                self.ticks_skipped += skipped
                deadline += skipped * FRAME_SECONDS
                lateness -= skipped * FRAME_SECONDS
                if self._metrics is not None:
                    self._metrics.ticks_skipped.inc(skipped)
                logger.warning("mixer %s fell behind, skipped %d ticks", self.name, skipped)
            if self._metrics is not None:
                self._metrics.tick_lateness.observe(max(0.0, lateness))
            self.step()
            deadline += FRAME_SECONDS
            # Sleep even when late (0 s) so senders get their turn between catch-up ticks.
            await asyncio.sleep(max(0.0, deadline - loop.time()))

    # -- one tick -----------------------------------------------------------------------

    def step(self) -> None:
        """Mix and publish one tick now. The clock calls this; tests may call it directly."""
        voices = list(self._voices.values())
        jobs: list[tuple[_Voice, list[Playout]]] = []
        for voice in voices:
            missing = FRAME_BYTES - len(voice.fifo)
            pops = 0 if missing <= 0 else min(6, -(-missing // max(1, voice.packet_bytes)))
            jobs.append((voice, [voice.inbound.pop() for _ in range(pops)]))
        pts = self._tick * FRAME_SAMPLES
        self._tick += 1
        encode_listeners = len(self.listeners) > 0 or bool(self.sinks)
        rendered = self._render(jobs, pts, encode_listeners)
        self._publish(rendered, voices)

    def _render(
        self, jobs: list[tuple[_Voice, list[Playout]]], pts: int, encode_listeners: bool
    ) -> _Rendered:
        frames: dict[str, array.array[int]] = {}
        for voice, slots in jobs:
            frame = self._frame_of(voice, slots)
            voice.level = smoothed_level(voice.level, frame)
            if frame is not None:
                frames[voice.key] = frame
        mix = pcm.Mix(frames)
        listener_packets = (
            self._listener_packets(jobs, frames, mix, pts) if encode_listeners else []
        )
        voice_packets = []
        for voice, _ in jobs:
            if len(frames) - (voice.key in frames) == 0:
                voice.encoding.pause()
                voice_packets.append((voice, [_packet(SILENCE_PACKET, pts)]))
            else:
                voice_packets.append((voice, voice.encoding.encode(mix.minus(voice.key), pts)))
        return _Rendered(listener_packets, voice_packets)

    def _listener_packets(
        self,
        jobs: list[tuple[_Voice, list[Playout]]],
        frames: dict[str, array.array[int]],
        mix: pcm.Mix,
        pts: int,
    ) -> list[Packet[Stream]]:
        if not frames:
            self._listener.pause()
            return [_packet(SILENCE_PACKET, pts)]
        if len(frames) == 1:
            (voice,) = (voice for voice, _ in jobs if voice.key in frames)
            if voice.whole is not None:
                self._listener.pause()
                self.passed_through += 1
                return [_packet(voice.whole, pts)]
        return self._listener.encode(mix.listeners, pts)

    @staticmethod
    def _frame_of(voice: _Voice, slots: list[Playout]) -> array.array[int] | None:
        whole = None
        aligned = not voice.fifo
        for slot in slots:
            if slot is None:
                break
            if slot is Slot.LOST:
                voice.fifo += voice.decoder.conceal()
            else:
                errors = voice.decoder.errors
                decoded = voice.decoder.decode(slot)
                if decoded:
                    voice.packet_bytes = len(decoded)
                voice.fifo += decoded
                if (
                    aligned
                    and len(decoded) == FRAME_BYTES
                    and voice.decoder.errors == errors
                    and len(slot) <= WHOLE_MAX_BYTES
                ):
                    whole = slot
            aligned = False
        voice.whole = whole if len(voice.fifo) == FRAME_BYTES else None
        if len(voice.fifo) > _MAX_FIFO_BYTES:
            del voice.fifo[: len(voice.fifo) - _MAX_FIFO_BYTES]
        if not voice.fifo:
            return None
        chunk = bytes(voice.fifo[:FRAME_BYTES])
        del voice.fifo[:FRAME_BYTES]
        if len(chunk) < FRAME_BYTES:
            chunk += bytes(FRAME_BYTES - len(chunk))
        return pcm.samples(chunk)

    def _publish(self, rendered: _Rendered, voices: list[_Voice]) -> None:
        sent = dropped = 0
        sinks = list(self.sinks.values())
        for packet in rendered.listener_packets:
            delivered, lost_here = self.listeners.publish(packet)
            sent += delivered
            dropped += lost_here
            if self._metrics is not None:
                self._metrics.paths(delivered, self.listeners.fast)
            for sink in sinks:
                sink(packet)
        for voice, packets in rendered.voice_packets:
            for packet in packets:
                dropped += voice.outbound.push(packet)
                sent += 1
        if self._metrics is None:
            return
        lost = 0
        for voice in voices:
            now = voice.inbound.stats.lost
            lost += now - voice.reported_lost
            voice.reported_lost = now
        self._metrics.packets_sent.inc(sent)
        if dropped:
            self._metrics.packets_dropped.inc(dropped)
        if lost:
            self._metrics.packets_lost.inc(lost)


def _packet(payload: bytes, pts: int) -> Packet[Stream]:
    """An Opus packet stamped on the room's timeline, as `OpusEncoder.encode` stamps its own."""
    packet: Packet[Stream] = Packet(payload)
    packet.pts = packet.dts = pts
    packet.time_base = TIME_BASE
    return packet
