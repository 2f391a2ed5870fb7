from __future__ import annotations

from audio.bridge.speakers import SsrcMap


def test_speaking_maps_and_disconnect_forgets() -> None:
    ssrcs = SsrcMap()
    assert ssrcs.handle({"op": 5, "d": {"user_id": "11", "ssrc": 100, "speaking": 1}}) == 11
    assert ssrcs.user(100) == 11
    assert ssrcs.ssrc(11) == 100
    # a rejoin brings a new SSRC; the old one no longer names anybody
    ssrcs.handle({"op": 5, "d": {"user_id": "11", "ssrc": 200, "speaking": 1}})
    assert ssrcs.user(100) is None and ssrcs.user(200) == 11
    assert ssrcs.handle({"op": 13, "d": {"user_id": "11"}}) == 11
    assert ssrcs.user(200) is None


def test_other_messages_are_ignored() -> None:
    ssrcs = SsrcMap()
    assert ssrcs.handle({"op": 6, "d": {"t": 1}}) is None
    assert ssrcs.handle({"op": 5, "d": {"speaking": 0}}) is None
