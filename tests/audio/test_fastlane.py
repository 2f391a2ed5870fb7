"""The fast lane (audio.fastlane) against real aiortc listeners on loopback: the same audio
as aiortc's own path, one sequence and timestamp line across path switches, and SRTP
rollover past sequence 65,535 on either path."""

from __future__ import annotations

import array
import asyncio
import contextlib
import copy
import os
import random

import aioice.ice
import pytest
from aioice import Candidate
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket
from av.audio.frame import AudioFrame
from prometheus_client import CollectorRegistry

from audio import Admission, Room, fastlane, uring
from audio.fastlane import RtpStream
from audio.opus import OpusEncoder
from audio.rtptap import install_tap
from tests.audio.conftest import LOOPS, SPACE, JoinFn, thread_ring, use_loop
from tests.audio.rtc_harness import Client
from tests.waiting import eventually

FRAME = 960


def stream_of(room: Room, key: str) -> RtpStream:
    session = room.session(key)
    assert session is not None and session.outbound.stream is not None
    return session.outbound.stream


class Recorder:
    """Decoded audio a client hears, keyed by RTP timestamp."""

    def __init__(self, client: Client) -> None:
        self.frames: dict[int, bytes] = {}
        if client._reader is not None:
            client._reader.cancel()  # one reader per track: this one
        track = client.pc.getReceivers()[0].track
        self._task = asyncio.get_running_loop().create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, AudioFrame) and frame.pts is not None
                data = bytes(memoryview(frame.planes[0])[: frame.samples * 4])
                left = array.array("h", data)[::2]  # aiortc decodes to stereo s16
                self.frames[frame.pts] = left.tobytes()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class SequenceLog:
    """(sequence, timestamp) of every RTP packet a client's receiver accepted."""

    def __init__(self, client: Client) -> None:
        self.packets: list[tuple[int, int]] = []
        receiver = client.pc.getTransceivers()[0].receiver
        install_tap(receiver, self._add)

    def _add(self, packet: RtpPacket, _arrival: float) -> None:
        self.packets.append((packet.sequence_number, packet.timestamp))

    def assert_continuous(self) -> None:
        assert len(self.packets) > 10
        for (seq0, ts0), (seq1, ts1) in zip(self.packets, self.packets[1:], strict=False):
            assert (seq1 - seq0) & 0xFFFF == 1, f"sequence jumped {seq0} -> {seq1}"
            step = (ts1 - ts0) & 0xFFFFFFFF
            # A packet a slow queue dropped before it was stamped skips 960 ticks; never back.
            assert step and step % FRAME == 0 and step < 50 * FRAME, f"timestamp {ts0} -> {ts1}"


async def test_a_listener_moves_onto_the_fast_lane_and_hears_the_room(
    join: JoinFn, room: Room, metrics_registry: CollectorRegistry
) -> None:
    await join("host", "host", tone=440)
    listener = await join("listener", "listener")
    stream = stream_of(room, "listener")
    await eventually(lambda: stream.fast_packets > 50, what="packets on the fast lane")
    assert stream.path == "fast"
    await eventually(lambda: listener.probe.share(440) > 0.9, what="the tone heard")
    gauge = metrics_registry.get_sample_value(
        "stagepass_audio_listener_paths", {"room": str(SPACE), "path": "fast"}
    )
    assert gauge == 1.0
    # The host hears its mix-minus through aiortc's path on the same kind of stream.
    assert stream_of(room, "host").fast_packets == 0
    assert stream_of(room, "host").packets > 0


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("sending", ["io_uring", "sendto"])
async def test_both_paths_decode_to_the_same_audio(sending: str, loop: str) -> None:
    """Two listeners of a relay room, one per path, hear one stream of non-repeating
    audio from its first packet: their decoders must produce the very same samples, with
    the fast lane's datagrams batched on io_uring or sent one by one, from its C loop or
    its Python loop."""
    if sending == "io_uring":
        thread_ring()
    room = Room(space_id=SPACE, listeners_only=True)
    use_loop(room, loop)
    room.fanout.batch_sends = sending == "io_uring"
    room.start()
    clients = {key: Client(key) for key in ("fast", "slow")}
    try:
        for key, client in clients.items():
            admission = Admission(f"ticket-{key}", SPACE, key, key, "listener")
            await client.accept(await room.join(*(await client.offer()), admission))
        stream_of(room, "slow").fast = False
        heard = {key: Recorder(client) for key, client in clients.items()}
        await eventually(
            lambda: all(c.pc.connectionState == "connected" for c in clients.values()),
            what="both connected",
        )
        # "connected" comes before DTLS and the sender's loop are up: a packet relayed
        # before then takes the aiortc path (failed once: 149 == 150)
        await eventually(lambda: stream_of(room, "fast").path == "fast", what="the fast lane")
        ring = uring.for_this_thread()
        sent_before = 0 if ring is None else ring.sent
        noise = random.Random(17)
        encoder = OpusEncoder()
        for tick in range(150):
            pcm = array.array("h", (noise.randint(-8_000, 8_000) for _ in range(FRAME)))
            for packet in encoder.encode(pcm.tobytes(), tick * FRAME):
                room.relay(packet)
            await asyncio.sleep(0.02)  # a live stream's pace
        await eventually(
            lambda: all(len(r.frames) >= 140 for r in heard.values()), what="both decoding"
        )
        assert stream_of(room, "fast").fast_packets == 150
        ring = uring.for_this_thread()
        batched = 0 if ring is None else ring.sent - sent_before
        assert batched == (150 if sending == "io_uring" else 0)
        assert stream_of(room, "slow").fast_packets == 0
        fast, slow = heard["fast"].frames, heard["slow"].frames
        common = sorted(fast.keys() & slow.keys())
        assert len(common) >= 140
        assert sum(1 for pts in common if max(array.array("h", fast[pts])) > 1_000) > 100
        for pts in common:
            assert fast[pts] == slow[pts], f"decoded audio differs at pts {pts}"
        for recorder in heard.values():
            await recorder.close()
    finally:
        for client in clients.values():
            await client.close()
        await room.close()


@pytest.mark.parametrize("loop", LOOPS)
async def test_sequence_and_timestamps_continue_across_path_switches(
    join: JoinFn, room: Room, loop: str
) -> None:
    use_loop(room, loop)
    await join("host", "host", tone=440)
    client = await join("listener", "listener", connect=False)
    log = SequenceLog(client)
    await eventually(lambda: client.pc.connectionState == "connected", what="connected")
    stream = stream_of(room, "listener")
    for fast in (True, False, True, False):
        stream.fast = fast
        path = 0 if fast else 1
        floor = (stream.fast_packets, stream.packets - stream.fast_packets)[path] + 20

        def on_path(path: int = path, floor: int = floor) -> bool:
            return (stream.fast_packets, stream.packets - stream.fast_packets)[path] > floor

        await eventually(on_path, what=f"packets on the {'fast' if fast else 'aiortc'} path")
    # The room switches too: on stage the mix-minus goes through aiortc, back off it fast.
    room.set_speaker("listener", True)
    stream.fast = True
    aiortc_sent = stream.packets - stream.fast_packets
    await eventually(
        lambda: stream.packets - stream.fast_packets > aiortc_sent + 20, what="mix-minus"
    )
    room.set_speaker("listener", False)
    fast_sent = stream.fast_packets
    await eventually(lambda: stream.fast_packets > fast_sent + 20, what="the fast lane again")
    received = len(log.packets)
    await eventually(lambda: len(log.packets) > received + 5, what="the last packets")
    log.assert_continuous()


@pytest.mark.parametrize("loop", LOOPS)
async def test_a_new_ice_pair_takes_the_fast_lane_at_once(
    join: JoinFn, room: Room, loop: str
) -> None:
    """ICE may select another pair after the first (a browser renominating): the lane of
    the old one closes and the stream goes straight onto the new pair's, with no packet
    sent the slow way meanwhile (the C loop once left it on aiortc's path until its next
    check, 160 ms, and failed the Chromium test's count)."""
    use_loop(room, loop)
    await join("host", "host", tone=440)
    client = await join("listener", "listener", connect=False)
    log = SequenceLog(client)
    stream = stream_of(room, "listener")
    await eventually(lambda: stream.fast_packets > 20, what="packets on the fast lane")
    slow = stream.packets - stream.fast_packets
    stale = stream._lane
    assert stale is not None
    stale.pair = copy.copy(stale.pair)  # as if aioice had selected another pair since
    sent = stream.fast_packets

    def moved() -> bool:
        return stream._lane is not stale and stream.fast_packets > sent + 30

    await eventually(moved, what="packets on the new pair's lane")
    assert stream.packets - stream.fast_packets == slow
    received = len(log.packets)
    await eventually(lambda: len(log.packets) > received + 5, what="the last packets")
    log.assert_continuous()


@pytest.mark.parametrize(
    ("path_at_wrap", "loop"), [("fast", "c"), ("fast", "python"), ("aiortc", "c")]
)
async def test_srtp_rollover_past_sequence_65535(
    join: JoinFn, room: Room, path_at_wrap: str, loop: str
) -> None:
    use_loop(room, loop)
    await join("host", "host", tone=440)
    client = await join("listener", "listener", connect=False)
    log = SequenceLog(client)
    stream = stream_of(room, "listener")
    stream.sequence = 65_500
    stream.fast = path_at_wrap == "fast"
    await eventually(lambda: client.pc.connectionState == "connected", what="connected")
    # Past the wrap on one path, then on the other with the same SRTP rollover counter.
    await eventually(lambda: 40 < stream.sequence < 30_000, what="the sequence wrapped")
    stream.fast = not stream.fast
    wrapped = stream.sequence
    await eventually(lambda: stream.sequence > wrapped + 40, what="packets after the switch")
    await eventually(
        lambda: bool(log.packets) and log.packets[-1][0] > wrapped + 30,
        what="the client decrypting after the wrap",
    )
    log.assert_continuous()
    assert log.packets[0][0] >= 65_500
    assert stream.send_errors == 0


async def test_a_listener_on_an_unusual_pair_stays_on_aiortcs_path(
    join: JoinFn, room: Room, metrics_registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastlane, "_plain_udp", lambda pair: False)  # as a TURN relay would be
    await join("host", "host", tone=440)
    listener = await join("listener", "listener")
    await eventually(lambda: listener.probe.share(440) > 0.9, what="the tone heard")
    stream = stream_of(room, "listener")
    await eventually(lambda: stream.packets > 50, what="packets on aiortc's path")
    assert stream.path == "aiortc" and stream.fast_packets == 0
    labels = {"room": str(SPACE)}
    sample = metrics_registry.get_sample_value
    assert sample("stagepass_audio_listener_paths", {**labels, "path": "aiortc"}) == 1.0
    assert sample("stagepass_audio_listener_paths", {**labels, "path": "fast"}) == 0.0


def _candidate(kind: str = "host", transport: str = "udp") -> Candidate:
    return Candidate(
        foundation="1", component=1, transport=transport, priority=1,
        host="127.0.0.1", port=5000, type=kind,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("protocol_kind", "local", "remote", "plain"),
    [
        ("stun", "host", "udp", True),
        ("stun", "srflx", "udp", True),
        ("stun", "relay", "udp", False),
        ("stun", "host", "tcp", False),
        ("turn", "relay", "udp", False),
    ],
)
async def test_only_a_plain_udp_pair_takes_the_fast_lane(
    protocol_kind: str, local: str, remote: str, plain: bool
) -> None:
    class TurnLike(aioice.ice.StunProtocol):
        """Stands for aioice's TURN client protocols (their own classes)."""

    kind = aioice.ice.StunProtocol if protocol_kind == "stun" else TurnLike
    protocol = kind(receiver=None)  # type: ignore[arg-type]  # no ICE connection behind it
    protocol.local_candidate = _candidate(local)
    protocol.transport = object()  # type: ignore[assignment]  # never written to here
    pair = aioice.ice.CandidatePair(protocol, _candidate("host", remote))
    assert fastlane._plain_udp(pair) is plain


async def test_the_fast_lane_keeps_sending_sender_reports(
    join: JoinFn, room: Room, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream's own RTCP loop sends SRs the listener understands: its receiver reports
    echo them back, so the server's sender measures a round trip (from our SR's LSR)."""
    monkeypatch.setattr(fastlane, "FAST_REPORT_SECONDS", 0.2)
    await join("host", "host", tone=440)
    await join("listener", "listener")
    stream = stream_of(room, "listener")
    await eventually(lambda: stream.path == "fast", what="the fast lane")

    async def round_trip() -> tuple[float] | None:
        report = await stream.sender.getStats()
        for stats in report.values():
            if stats.type == "remote-inbound-rtp" and stats.roundTripTime is not None:
                assert stats.packetsReceived > 0
                return (float(stats.roundTripTime),)
        return None

    await eventually(round_trip, what="a round trip measured from our sender reports")
    # Off the fast lane the stream's own loop reports again (every 0.5-1.5 s), and back on
    # it the fan-out does.
    for fast in (False, True):
        stream.fast = fast
        path = "fast" if fast else "aiortc"

        def on_path(path: str = path) -> bool:
            return stream.path == path

        await eventually(on_path, what=f"the {path} path")
        reports = stream.reports

        def reported(reports: int = reports) -> bool:
            return stream.reports >= reports + 2

        await eventually(reported, what=f"sender reports on the {path} path")
    assert stream.send_errors == 0


@pytest.mark.parametrize("loop", LOOPS)
async def test_a_failing_io_uring_leaves_the_fast_lane_on_sendto(
    join: JoinFn, room: Room, caplog: pytest.LogCaptureFixture, loop: str
) -> None:
    ring = thread_ring()
    use_loop(room, loop)
    await join("host", "host", tone=440)
    listener = await join("listener", "listener")
    stream = stream_of(room, "listener")
    await eventually(lambda: stream.fast_packets > 20, what="packets on the fast lane")
    # The ring's descriptor now names a pipe: the kernel refuses io_uring_enter on it.
    read, write = os.pipe()
    os.dup2(read, ring.fd)
    os.close(read)
    os.close(write)
    try:
        sent = stream.fast_packets
        await eventually(lambda: stream.fast_packets > sent + 50, what="the fast lane going on")
        assert uring.for_this_thread() is None  # retired: every room sends with sendto now
        assert "io_uring failed" in caplog.text and "sendto" in caplog.text
        heard = listener.probe.share(440)
        assert heard > 0.9, f"the tone heard after the switch: {heard:.2f}"
    finally:
        uring._local.pid = None  # the next test gets a fresh ring
