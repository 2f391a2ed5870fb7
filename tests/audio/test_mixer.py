"""Mixing: clipping, mix-minus, and one listener encode per tick however many listen."""

from __future__ import annotations

import array
import math
from collections.abc import AsyncIterator

import pytest
from av.packet import Packet
from av.stream import Stream

from audio.fanout import PacketTrack
from audio.jitter import JitterBuffer
from audio.mixer import SILENCE_PACKET, WHOLE_MAX_BYTES, Mixer
from audio.opus import FRAME_SAMPLES, OpusDecoder, OpusEncoder
from audio.pcm import Mix, level, samples
from tests.audio.rtc_harness import tone_share


def tone(frequency: int, tick: int, amplitude: int = 8_000) -> bytes:
    start = tick * FRAME_SAMPLES
    return array.array(
        "h",
        (
            int(amplitude * math.sin(2 * math.pi * frequency * (start + n) / 48_000))
            for n in range(FRAME_SAMPLES)
        ),
    ).tobytes()


def frame(value: int) -> array.array[int]:
    return array.array("h", [value] * FRAME_SAMPLES)


def test_mix_clips_and_each_voice_hears_everyone_but_itself() -> None:
    mix = Mix({"a": frame(30_000), "b": frame(10_000), "c": frame(-5_000)})
    assert set(samples(mix.listeners)) == {32_767}  # 35_000 clipped
    assert set(samples(mix.minus("a"))) == {5_000}
    assert set(samples(mix.minus("b"))) == {25_000}
    assert set(samples(mix.minus("c"))) == {32_767}
    assert mix.minus("nobody") == mix.listeners


def test_mix_of_one_or_two_voices_needs_no_arithmetic() -> None:
    one = Mix({"a": frame(100)})
    assert set(samples(one.listeners)) == {100}
    assert set(samples(one.minus("a"))) == {0}
    two = Mix({"a": frame(-30_000), "b": frame(-30_000)})
    assert set(samples(two.listeners)) == {-32_768}
    assert set(samples(two.minus("a"))) == {-30_000}
    assert Mix({}).listeners == bytes(FRAME_SAMPLES * 2)


def test_level_is_rms_relative_to_full_scale() -> None:
    assert level(frame(0)) == 0.0
    assert level(frame(16_384)) == pytest.approx(0.5)


class CountingEncoder(OpusEncoder):
    created = 0

    def __init__(self) -> None:
        super().__init__()
        type(self).created += 1
        self.calls = 0

    def encode(self, pcm: bytes, pts: int) -> list[Packet[Stream]]:
        self.calls += 1
        return super().encode(pcm, pts)


@pytest.fixture
async def mixer() -> AsyncIterator[Mixer]:
    CountingEncoder.created = 0
    mixer = Mixer(name="test", encoder_factory=CountingEncoder)
    yield mixer
    await mixer.stop()


def decoded(track: PacketTrack) -> list[int]:
    decoder = OpusDecoder()
    pcm = b"".join(decoder.decode(bytes(p)) for p in track._queue)
    return list(samples(pcm))


async def test_mixer_encodes_listener_mix_once_per_tick_and_mix_minus_per_voice(
    mixer: Mixer,
) -> None:
    speakers = {"a": 440, "b": 1_000}
    encoders = {key: OpusEncoder() for key in speakers}
    buffers = {key: JitterBuffer() for key in speakers}
    voices = {key: PacketTrack(max_queue=1_000) for key in speakers}
    listeners = [PacketTrack(max_queue=1_000) for _ in range(20)]
    for key in speakers:
        mixer.add_voice(key, buffers[key], voices[key])
    for track in listeners:
        mixer.listeners.subscribe(track)

    ticks = 60
    for tick in range(ticks):
        for key, frequency in speakers.items():
            (packet,) = encoders[key].encode(tone(frequency, tick), tick * FRAME_SAMPLES)
            buffers[key].put(tick, tick * FRAME_SAMPLES, bytes(packet), tick * 0.02)
        mixer.step()

    listener_encoder = mixer._listener.encoder
    assert isinstance(listener_encoder, CountingEncoder)
    first = list(listeners[0]._queue)
    # The jitter buffer holds the first packets back: those ticks are the silence frame.
    warming = sum(1 for p in first if bytes(p) == SILENCE_PACKET)
    assert warming < 5
    assert listener_encoder.calls == ticks - warming  # once per tick, not once per listener
    assert CountingEncoder.created == 1 + len(speakers)
    assert all(list(t._queue) == first for t in listeners)  # the very same packet objects
    assert [p.pts for p in first] == [t * FRAME_SAMPLES for t in range(ticks)]

    heard = decoded(listeners[0])[-9_600:]
    assert tone_share(heard, 440) > 0.3 and tone_share(heard, 1_000) > 0.3
    a_hears = decoded(voices["a"])[-9_600:]
    assert tone_share(a_hears, 1_000) > 0.8 and tone_share(a_hears, 440) < 0.01
    b_hears = decoded(voices["b"])[-9_600:]
    assert tone_share(b_hears, 440) > 0.8 and tone_share(b_hears, 1_000) < 0.01
    assert mixer.levels()["a"] > 0.1


async def test_removed_voice_is_not_mixed_from_the_next_tick(mixer: Mixer) -> None:
    encoder = OpusEncoder()
    buffer, own = JitterBuffer(), PacketTrack(max_queue=1_000)
    listener = PacketTrack(max_queue=1_000)
    mixer.add_voice("a", buffer, own)
    mixer.listeners.subscribe(listener)
    for tick in range(40):
        (packet,) = encoder.encode(tone(440, tick), tick * FRAME_SAMPLES)
        buffer.put(tick, tick * FRAME_SAMPLES, bytes(packet), tick * 0.02)
        if tick == 20:
            mixer.remove_voice("a")
        mixer.step()
    heard = decoded(listener)
    assert tone_share(heard[10 * 960 : 18 * 960], 440) > 0.5
    assert tone_share(heard[-10 * 960 :], 440) == 0.0


def speak(
    mixer: Mixer, buffers: dict[str, JitterBuffer], encoders: dict[str, OpusEncoder],
    voices: dict[str, int], tick: int, *, lost: bool = False,
) -> dict[str, bytes]:  # fmt: skip
    """One tick of each voice (its tone) into its buffer, then the mixer's step; returns
    the packets the voices sent."""
    sent = {}
    for key, frequency in voices.items():
        (packet,) = encoders[key].encode(tone(frequency, tick), tick * FRAME_SAMPLES)
        sent[key] = bytes(packet)
        if not lost:
            buffers[key].put(tick, tick * FRAME_SAMPLES, sent[key], tick * 0.02)
    mixer.step()
    return sent


async def test_a_lone_speakers_own_packets_reach_listeners_and_they_hear_silence(
    mixer: Mixer,
) -> None:
    buffers = {"a": JitterBuffer()}
    encoders = {"a": OpusEncoder()}
    own, listener = PacketTrack(max_queue=1_000), PacketTrack(max_queue=1_000)
    mixer.add_voice("a", buffers["a"], own)
    mixer.listeners.subscribe(listener)
    sent = [speak(mixer, buffers, encoders, {"a": 440}, tick)["a"] for tick in range(40)]
    heard = [bytes(p) for p in listener._queue]
    # After the jitter buffer's start-up, every listener packet is the speaker's own.
    start = heard.index(sent[0])
    assert 0 < start < 5 and heard[:start] == [SILENCE_PACKET] * start
    assert heard[start:] == sent[: 40 - start]
    assert mixer.passed_through == 40 - start
    assert {bytes(p) for p in own._queue} == {SILENCE_PACKET}  # nobody else speaks
    assert CountingEncoder.created == 0  # not one encode
    assert tone_share(decoded(listener)[-9_600:], 440) > 0.9

    # A lost packet is concealed: that tick is encoded, not passed through.
    speak(mixer, buffers, encoders, {"a": 440}, 40, lost=True)
    for tick in range(41, 50):
        speak(mixer, buffers, encoders, {"a": 440}, tick)
    assert CountingEncoder.created == 1
    listener_encoder = mixer._listener.encoder
    assert isinstance(listener_encoder, CountingEncoder) and 1 <= listener_encoder.calls <= 3


async def test_a_second_voice_brings_fresh_encoders_and_its_leaving_passes_through_again(
    mixer: Mixer,
) -> None:
    buffers = {key: JitterBuffer() for key in "ab"}
    encoders = {key: OpusEncoder() for key in "ab"}
    own = {key: PacketTrack(max_queue=1_000) for key in "ab"}
    listener = PacketTrack(max_queue=1_000)
    mixer.add_voice("a", buffers["a"], own["a"])
    mixer.listeners.subscribe(listener)
    for tick in range(20):
        speak(mixer, buffers, encoders, {"a": 440}, tick)
    alone = mixer.passed_through
    mixer.add_voice("b", buffers["b"], own["b"])
    for tick in range(20, 60):
        speak(mixer, buffers, encoders, {"a": 440, "b": 1_000}, tick)
    assert mixer.passed_through <= alone + 5  # b's buffer starting up: a alone a moment
    mixer.remove_voice("b")
    said = [speak(mixer, buffers, encoders, {"a": 440}, tick)["a"] for tick in range(60, 80)]
    assert bytes(list(listener._queue)[-1]) in said[-5:]  # passed through again
    # One listener encoder for the duet, one mix-minus encoder each (a's from b's first word).
    assert CountingEncoder.created == 3
    pcm = decoded(listener)
    duet = pcm[35 * 960 : 55 * 960]
    assert tone_share(duet, 440) > 0.3 and tone_share(duet, 1_000) > 0.3
    assert tone_share(pcm[-10 * 960 :], 440) > 0.9
    assert tone_share(decoded(own["a"])[35 * 960 : 55 * 960], 1_000) > 0.8


async def test_an_oversized_packet_is_re_encoded_at_the_rooms_bitrate(mixer: Mixer) -> None:
    buffers = {"a": JitterBuffer()}
    encoders = {"a": OpusEncoder(bitrate=256_000, fec=False)}
    listener = PacketTrack(max_queue=1_000)
    mixer.add_voice("a", buffers["a"], PacketTrack(max_queue=1_000))
    mixer.listeners.subscribe(listener)
    sent = [speak(mixer, buffers, encoders, {"a": 440}, tick)["a"] for tick in range(30)]
    assert min(len(p) for p in sent[5:]) > WHOLE_MAX_BYTES
    assert mixer.passed_through == 0
    assert max(len(bytes(p)) for p in listener._queue) < WHOLE_MAX_BYTES
    assert tone_share(decoded(listener)[-9_600:], 440) > 0.9
