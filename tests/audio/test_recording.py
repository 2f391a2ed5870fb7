"""Recording: the listeners' mix into Ogg/Opus without re-encoding, the host's toggle, and the
replay for ticket holders once the Space has ended. Files are checked by decoding them."""

from __future__ import annotations

import array
import asyncio
import io
import math
from pathlib import Path

import av
from av.audio.frame import AudioFrame

from audio.opus import FRAME_SAMPLES, OpusEncoder
from audio.recorder import Recorder
from audio.recordings import RecordingStore
from bench.audio_peers import RATE
from bot.actors import Actor, UserRef
from bot.models import Platform
from tests.audio.conftest import HOST, World
from tests.audio.rtc_harness import dominant_frequency
from tests.waiting import eventually


def decode_ogg(data: bytes) -> tuple[str, int, list[int]]:
    """(codec name, frames decoded, first channel as s16 samples) of an Ogg file, decoded
    with PyAV's default Opus decoder."""
    samples: list[int] = []
    frames = 0
    with av.open(io.BytesIO(data), mode="r", format="ogg") as container:
        stream = container.streams.audio[0]
        name = stream.codec_context.name
        for frame in container.decode(stream):
            assert isinstance(frame, AudioFrame)
            samples.extend(first_channel(frame))
            frames += 1
    return name, frames, samples


def first_channel(frame: AudioFrame) -> list[int]:
    fmt = frame.format
    step = 1 if fmt.is_planar else len(frame.layout.channels)
    values = array.array("h" if fmt.name.startswith("s16") else "f")
    values.frombytes(bytes(frame.planes[0])[: frame.samples * step * values.itemsize])
    picked = values[::step]
    if values.typecode == "h":
        return list(picked)
    return [int(max(-1.0, min(1.0, v)) * 32767) for v in picked]


def tone(frequency: int, index: int) -> bytes:
    start = index * FRAME_SAMPLES
    return array.array(
        "h",
        (
            int(8_000 * math.sin(2 * math.pi * frequency * (start + n) / RATE))
            for n in range(FRAME_SAMPLES)
        ),
    ).tobytes()


async def test_recorder_muxes_the_encoded_packets_into_valid_ogg_opus(tmp_path: Path) -> None:
    encoder = OpusEncoder()
    recorder = Recorder(tmp_path / "part-001.ogg")
    await recorder.open()
    for index in range(100):  # 2 s, stamped with a pts far from zero like a live mixer
        for packet in encoder.encode(tone(440, index), 480_000 + index * FRAME_SAMPLES):
            recorder.write(packet)
    path = await recorder.aclose()
    assert path == tmp_path / "part-001.ogg" and not recorder.partial.exists()
    name, frames, samples = decode_ogg(path.read_bytes())
    assert name == "opus" and frames >= 95
    assert abs(len(samples) - 2 * RATE) < 2 * FRAME_SAMPLES  # 2 s, less the encoder delay
    assert dominant_frequency(samples[RATE // 2 : RATE // 2 + 4_800]) == 440


async def test_a_recorder_that_got_nothing_leaves_no_file(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "empty.ogg")
    await recorder.open()
    assert await recorder.aclose() is None
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []


def test_parts_are_numbered_and_partial_files_are_not_listed(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    assert store.parts(3) == [] and store.next_path(3).name == "part-001.ogg"
    directory = store.directory(3)
    directory.mkdir()
    (directory / "part-001.ogg").write_bytes(b"x")
    (directory / "part-002.ogg.partial").write_bytes(b"xy")  # a crash left it behind
    (directory / "notes.txt").write_text("ignored")
    assert store.next_path(3).name == "part-003.ogg"
    assert [(p.number, p.size) for p in store.parts(3)] == [(1, 1)]
    assert store.part(3, 2) is None and store.part(3, 1) is not None


async def test_only_the_host_and_cohosts_may_record(world: World) -> None:
    url = f"/rooms/{world.space_id}/recording"
    ann = await world.ticket("ann")
    assert (await world.http.post(url, json={"on": True})).status_code == 401
    response = await world.http.post(url, json={"on": True}, headers=ann.bearer)
    assert response.status_code == 403
    mod = await world.staff(Actor(Platform.DISCORD, "guild1", "mo", "Mo"), "moderator")
    assert (await world.http.post(url, json={"on": True}, headers=mod.bearer)).status_code == 403
    assert not world.room().recording

    for loose in ("yes", "true", 1):  # JSON true or false only
        response = await world.http.post(url, json={"on": loose}, headers=world.host.bearer)
        assert response.status_code == 422, loose
    assert not world.room().recording

    await world.core.spaces.set_cohost(HOST, world.space_id, UserRef("cora", "Cora"), add=True)
    cora = await world.staff(Actor(Platform.DISCORD, "guild1", "cora", "Cora"), "cohost")
    response = await world.http.post(url, json={"on": True}, headers=cora.bearer)
    assert response.status_code == 200 and response.json() == {"recording": True}
    again = await world.http.post(url, json={"on": True}, headers=world.host.bearer)
    assert again.json() == {"recording": True}  # already on: one recording, not two
    response = await world.http.post(url, json={"on": False}, headers=world.host.bearer)
    assert response.json() == {"recording": False}


async def test_record_then_replay_after_the_end(world: World) -> None:
    http, space_id = world.http, world.space_id
    ann = await world.ticket("ann")
    bob = await world.ticket("bob")
    await world.join(world.host, tone=440)
    toggle = f"/rooms/{space_id}/recording"
    listing = f"/rooms/{space_id}/recordings"

    assert (await http.post(toggle, json={"on": True}, headers=world.host.bearer)).json() == {
        "recording": True
    }
    state = (await http.get(f"/rooms/{space_id}/state", headers=ann.bearer)).json()
    assert state["recording"] is True  # what the listeners' page shows
    room = world.room()
    await eventually(lambda: room.state().stage[0].speaking, what="host heard by the mixer")
    await eventually(lambda: room.recorded_seconds >= 1.5, what="1.5 s recorded")
    await http.post(toggle, json={"on": False}, headers=world.host.bearer)
    await http.post(toggle, json={"on": True}, headers=world.host.bearer)  # a second part...
    await eventually(lambda: room.recorded_seconds >= 0.5, what="0.5 s of a second part")

    response = await http.get(listing, headers=ann.bearer)
    assert response.status_code == 409  # not before the end
    await world.core.spaces.end(HOST, space_id)  # ... finished by the end
    await eventually(lambda: room.closed, what="room closed")

    assert bob.ticket_id is not None
    await world.core.tickets.close(bob.ticket_id, refunded=True, reason="Refunded")
    assert (await http.get(listing, headers=bob.bearer)).status_code == 403
    assert (await http.get(listing)).status_code == 401

    parts = (await http.get(listing, headers=ann.bearer)).json()["parts"]
    assert [p["number"] for p in parts] == [1, 2]
    assert parts[0]["url"] == f"/rooms/{space_id}/recordings/1"
    replay = await http.get(parts[0]["url"], headers=ann.bearer)
    assert replay.status_code == 200
    assert replay.headers["content-type"] == "audio/ogg"
    assert replay.content[:4] == b"OggS" and len(replay.content) == parts[0]["size"]
    name, frames, samples = decode_ogg(replay.content)
    assert name == "opus" and frames >= 60  # at least 1.2 of the ~1.5 s
    assert dominant_frequency(samples[-RATE // 2 : -RATE // 2 + 4_800]) == 440

    ranged = await http.get(parts[0]["url"], headers={**ann.bearer, "Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100  # seeking in <audio>
    assert (await http.get(parts[0]["url"], headers=bob.bearer)).status_code == 403
    assert (await http.get(f"{listing}/9", headers=ann.bearer)).status_code == 404
    host_view = await http.get(listing, headers=world.host.bearer)
    assert host_view.status_code == 200 and len(host_view.json()["parts"]) == 2
