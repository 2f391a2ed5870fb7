"""Offer checks, the aiortc receiver tap, admissions and metrics."""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection
from aiortc.rtp import RtpPacket
from prometheus_client import CollectorRegistry

from audio import Admission, BadOffer
from audio.metrics import AudioMetrics, audio_metrics
from audio.offer import check_offer
from audio.opus import FRAME_BYTES, SILENCE, OpusDecoder, OpusEncoder
from audio.rtptap import RtpTap, install_tap


async def offer_from(*kinds: str) -> str:
    pc = RTCPeerConnection()
    try:
        for kind in kinds:
            pc.addTransceiver(kind, direction="sendrecv")
        if not kinds:
            pc.createDataChannel("x")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()


async def test_audio_only_opus_offer_passes() -> None:
    check_offer(await offer_from("audio"), "offer")


@pytest.mark.parametrize(
    ("sdp", "kind"),
    [
        ("garbage", "offer"),
        ("", "offer"),
        ("v=0\r\nm=audio x y\r\n", "offer"),  # makes aiortc's parser assert
        ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\n", "offer"),  # no ICE, DTLS, Opus
        ("x" * 40_000, "offer"),
    ],
)
def test_malformed_offers_are_refused(sdp: str, kind: str) -> None:
    with pytest.raises(BadOffer):
        check_offer(sdp, kind)


async def test_offers_with_video_data_or_wrong_type_are_refused() -> None:
    with pytest.raises(BadOffer):
        check_offer(await offer_from("audio", "video"), "offer")
    with pytest.raises(BadOffer):
        check_offer(await offer_from(), "offer")
    with pytest.raises(BadOffer):
        check_offer(await offer_from("audio"), "answer")


async def test_tap_replaces_aiortcs_buffer_and_forwards_packets() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("audio").receiver
        got: list[tuple[int, float]] = []
        tap = install_tap(receiver, lambda p, t: got.append((p.sequence_number, t)), lambda: 1.5)
        assert isinstance(tap, RtpTap)
        assert tap.add(RtpPacket(sequence_number=42)) == (False, None)
        assert got == [(42, 1.5)]
        with pytest.raises(RuntimeError):
            install_tap(receiver, lambda p, t: None)
    finally:
        await pc.close()


def test_admission_rejects_unknown_roles() -> None:
    with pytest.raises(ValueError):
        Admission(ticket_id="t", space_id=1, identity_key="k", display_name="K", role="admin")
    assert Admission(None, 1, "k", "K", "cohost").stage_role.on_stage


def test_metrics_use_the_given_registry_and_forget_closed_rooms() -> None:
    registry = CollectorRegistry()
    metrics = audio_metrics(registry)
    assert audio_metrics(registry) is metrics
    assert isinstance(metrics, AudioMetrics)
    room = metrics.room(5)
    room.listeners.set(3)
    room.packets_sent.inc(10)
    room.tick_lateness.observe(0.001)
    assert registry.get_sample_value("stagepass_audio_listeners", {"room": "5"}) == 3
    assert registry.get_sample_value("stagepass_audio_packets_sent_total", {"room": "5"}) == 10
    assert (
        registry.get_sample_value(
            "stagepass_audio_mixer_tick_lateness_seconds_count", {"room": "5"}
        )
        == 1
    )
    room.forget()
    assert registry.get_sample_value("stagepass_audio_listeners", {"room": "5"}) is None


def test_install_tap_fails_loudly_if_aiortc_moved_its_buffer() -> None:
    class NotAReceiver:
        pass

    with pytest.raises(RuntimeError, match="aiortc"):
        install_tap(NotAReceiver(), lambda p, t: None)  # type: ignore[arg-type]  # the wrong type is the test


def test_decoder_conceals_empty_and_corrupt_packets_and_keeps_working() -> None:
    encoder, decoder = OpusEncoder(), OpusDecoder()
    assert decoder.conceal() == SILENCE  # nothing decoded yet
    (good,) = encoder.encode(bytes(FRAME_BYTES), 0)
    assert len(decoder.decode(bytes(good))) == FRAME_BYTES
    assert len(decoder.decode(b"")) == FRAME_BYTES  # never reaches FFmpeg as end-of-stream
    assert len(decoder.decode(b"\xff\xff\xff\xff\xff")) == FRAME_BYTES
    assert decoder.errors == 1
    (again,) = encoder.encode(bytes(FRAME_BYTES), 960)
    assert len(decoder.decode(bytes(again))) == FRAME_BYTES
