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
from audio.mixer import Mixer
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

    listener_encoder = mixer._listener_encoder
    assert isinstance(listener_encoder, CountingEncoder)
    assert listener_encoder.calls == ticks  # once per tick, not once per listener
    assert CountingEncoder.created == 1 + len(speakers)
    first = list(listeners[0]._queue)
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
