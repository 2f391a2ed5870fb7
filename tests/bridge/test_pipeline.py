"""Both directions through the room's real `Mixer`, without a network.

Discord → room: fake users' packets, sealed for real, go through `Receiver` and
`DiscordVoices` into the mixer; a browser listener's stream carries the tone of the
admitted user only. Room → Discord: a browser speaker's tone comes out of `RoomSource`
as Opus that decodes to that tone, and Discord's own audio never comes back.
"""

from __future__ import annotations

import os

from audio.bridge import rtp
from audio.bridge.receive import DiscordVoices, Receiver
from audio.bridge.source import OPUS_SILENCE, DiscordOutbound, RoomSource
from audio.bridge.speakers import SsrcMap
from audio.bridge.transport import XCHACHA, TransportCipher
from audio.fanout import PacketTrack
from audio.jitter import JitterBuffer
from audio.mixer import Mixer
from tests.bridge.tones import decode_all, dominant, opus_tone, power

SPEAKER, SUPPRESSED = 11, 22
ROOM_TONE, SPEAKER_TONE, SUPPRESSED_TONE = 440.0, 660.0, 1000.0
TONES = (ROOM_TONE, SPEAKER_TONE, SUPPRESSED_TONE)


class Harness:
    def __init__(self, admitted: set[int]) -> None:
        self.key = os.urandom(32)
        self.ssrcs = SsrcMap()
        self.cipher = TransportCipher(XCHACHA, self.key)
        self.receiver = Receiver(self.ssrcs, lambda: self.cipher)
        self.voices = DiscordVoices(admitted.__contains__)
        self.outbound = DiscordOutbound(max_queue=200)
        self.source = RoomSource(self.outbound)
        self.mixer = Mixer(name="bridge-test")
        self.mixer.add_voice("discord:bridge", self.voices, self.outbound)
        self.listener = PacketTrack(max_queue=200)
        self.mixer.listeners.subscribe(self.listener)
        self.clock = 0.0

    def discord_user(self, user_id: int, ssrc: int, frequency: float, frames: int) -> list[bytes]:
        self.ssrcs.handle({"op": 5, "d": {"user_id": str(user_id), "ssrc": ssrc, "speaking": 1}})
        sender = TransportCipher(XCHACHA, self.key)
        return [
            sender.seal(
                rtp.RtpPacket(
                    sequence=i,
                    timestamp=i * 960,
                    ssrc=ssrc,
                    payload=payload,
                    extension_profile=rtp.EXTENSION_ONE_BYTE,
                    extension=b"\x10\x01\x00\x00",
                )
            )
            for i, payload in enumerate(opus_tone(frequency, frames))
        ]

    def deliver(self, datagram: bytes) -> None:
        received = self.receiver.receive(datagram)
        assert received is not None
        self.voices.put_received(received, self.clock)

    def listener_audio(self) -> bytes:
        packets = []
        while self.listener._queue:
            packets.append(bytes(self.listener._queue.popleft()))
        return decode_all(packets)

    def discord_audio(self) -> bytes:
        packets = []
        while (p := self.outbound.take()) is not None:
            packets.append(p)
        return decode_all(packets)


def test_admitted_discord_user_is_heard_and_suppressed_one_is_not() -> None:
    h = Harness(admitted={SPEAKER})
    speaker = h.discord_user(SPEAKER, 1000, SPEAKER_TONE, 50)
    suppressed = h.discord_user(SUPPRESSED, 2000, SUPPRESSED_TONE, 50)
    for a, b in zip(speaker, suppressed, strict=True):
        h.deliver(a)
        h.deliver(b)
        h.clock += 0.020
        h.mixer.step()
    heard = h.listener_audio()[-30 * 1920 :]
    assert dominant(heard, TONES) == SPEAKER_TONE
    assert power(heard, SUPPRESSED_TONE) < power(heard, SPEAKER_TONE) / 1000
    # Discord users hear none of Discord back: the bridge's mix-minus is silent.
    back = h.discord_audio()
    assert max(power(back, f) for f in TONES) < 1.0


def test_room_tone_reaches_discord_as_opus() -> None:
    h = Harness(admitted={SPEAKER})
    browser = JitterBuffer()
    h.mixer.add_voice("browser", browser, PacketTrack(max_queue=200))
    speaker = h.discord_user(SPEAKER, 1000, SPEAKER_TONE, 50)
    for i, payload in enumerate(opus_tone(ROOM_TONE, 50)):
        browser.put(i, i * 960, payload, h.clock)
        h.deliver(speaker[i])
        h.clock += 0.020
        h.mixer.step()
    packets = []
    while (p := h.outbound.take()) is not None:
        packets.append(p)
    assert len(packets) >= 40 and all(packets)
    out = decode_all(packets)[-30 * 1920 :]
    assert dominant(out, TONES) == ROOM_TONE
    assert power(out, SPEAKER_TONE) < power(out, ROOM_TONE) / 1000  # no echo of Discord
    # and the browser room hears both
    heard = h.listener_audio()[-30 * 1920 :]
    assert power(heard, ROOM_TONE) > 1.0 and power(heard, SPEAKER_TONE) > 1.0


def test_source_yields_silence_frames_never_empty_bytes() -> None:
    source = RoomSource(DiscordOutbound())
    assert source.is_opus()
    assert [source.read() for _ in range(3)] == [OPUS_SILENCE] * 3


def test_source_queue_stays_short() -> None:
    outbound = DiscordOutbound()
    h = Harness(admitted=set())
    h.mixer.remove_voice("discord:bridge")
    h.mixer.add_voice("discord:bridge", h.voices, outbound)
    for _ in range(10):
        h.mixer.step()
    source = RoomSource(outbound)
    reads = [source.read() for _ in range(5)]
    assert reads[3:] == [OPUS_SILENCE, OPUS_SILENCE]  # only the newest 3 waited
    assert outbound.dropped == 7


def test_receiver_drops_what_it_cannot_use() -> None:
    h = Harness(admitted={SPEAKER})
    (good,) = h.discord_user(SPEAKER, 1000, SPEAKER_TONE, 1)
    assert h.receiver.receive(b"\x81\xc9" + bytes(30)) is None  # RTCP
    assert h.receiver.receive(bytes(74)) is None  # IP discovery reply
    assert h.receiver.receive(good[:-1] + bytes([good[-1] ^ 1])) is None
    stranger = TransportCipher(XCHACHA, h.key).seal(
        rtp.RtpPacket(sequence=1, timestamp=1, ssrc=999, payload=b"\xf8\xff\xfe")
    )
    assert h.receiver.receive(stranger) is None
    assert h.receiver.stats.rtcp == 1
    assert h.receiver.stats.undecryptable == 1
    assert h.receiver.stats.unknown_ssrc == 1
    received = h.receiver.receive(good)
    assert received is not None and received.user_id == SPEAKER
