"""The listeners chart counts every node: edges tell the origin their listener counts over
a real NATS server, and the origin reports the sum; an edge that stops saying its count
stops counting."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from audio.attendance import EdgeCounts, ListenerLog, decode_count, encode_count
from audio.metrics import AudioMetrics
from tests.audio.nats_nodes import Nodes, nats_nodes
from tests.waiting import eventually


class ManualTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_edge_count_lasts_until_it_is_stale_or_zero() -> None:
    time = ManualTime()
    counts = EdgeCounts(clock=time, ttl=6)
    counts.heard(7, "edge-a", 3)
    counts.heard(7, "edge-b", 2)
    counts.heard(8, "edge-a", 1)
    assert (counts.count(7), counts.count(8), counts.count(9)) == (5, 1, 0)
    time.now += 5
    counts.heard(7, "edge-b", 4)  # edge-b said it again; edge-a did not
    time.now += 2
    assert counts.count(7) == 4
    counts.heard(7, "edge-b", 0)
    assert counts.count(7) == 0
    counts.forget(8)
    assert counts.count(8) == 0


@pytest.mark.parametrize(
    ("subject", "data"),
    [
        ("stagepass.audio.x.listeners", encode_count("n", 1)),
        ("stagepass.audio.7.mix", encode_count("n", 1)),
        ("stagepass.audio.7.listeners", b"{"),
        ("stagepass.audio.7.listeners", b'{"node": "n", "count": -1}'),
        ("stagepass.audio.7.listeners", b'{"node": "", "count": 1}'),
        ("stagepass.audio.7.listeners", b'{"node": "n", "count": "2"}'),
        ("stagepass.audio.7.listeners", b"[]"),
    ],
)
def test_a_bad_count_message_is_refused(subject: str, data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_count(subject, data)


def test_a_count_message_round_trips() -> None:
    assert decode_count("stagepass.audio.7.listeners", encode_count("node-1", 3)) == (
        7,
        "node-1",
        3,
    )


@pytest.fixture
async def nodes(metrics: AudioMetrics) -> AsyncIterator[Nodes]:
    async with nats_nodes(metrics) as nodes:
        yield nodes


@pytest.mark.nats
async def test_the_origin_reports_its_listeners_and_its_edges(nodes: Nodes) -> None:
    reported: list[tuple[int, int]] = []
    by_edge: list[tuple[int, int]] = []

    async def report(space_id: int, count: int) -> None:
        reported.append((space_id, count))

    async def edge_report(space_id: int, count: int) -> None:
        by_edge.append((space_id, count))

    origin_log = ListenerLog(nodes.origin, report, edges=nodes.origin_link.edge_listeners.count)
    edge_log = ListenerLog(nodes.edge, edge_report, share=nodes.edge_link.report_listeners)
    origin_room = await nodes.origin.open(nodes.space)
    await nodes.join(origin_room, "hal", "host")
    await nodes.join(origin_room, "cat", "listener")
    relay = await nodes.edge.joinable(nodes.space)
    assert relay is not None and relay.listeners_only
    await nodes.join(relay, "ann", "listener")
    await nodes.join(relay, "bob", "listener")

    async def reports(count: int) -> bool:
        await edge_log.sample()
        await origin_log.sample()
        return reported[-1:] == [(nodes.space, count)]

    await eventually(lambda: reports(3), what="the origin reporting 1 + 2 edge listeners")
    await relay.remove("bob")
    await eventually(lambda: reports(2), what="the origin seeing an edge listener leave")
    await relay.remove("ann")
    await eventually(lambda: reports(1), what="the origin seeing the edge empty")
    assert by_edge == []  # an edge reports nothing to the core: the origin does
