"""Fuzz the room offer through the real HTTP app: seeded mutations of a real Chromium offer
(`chromium_offer.sdp`, captured by `capture_chromium_offer.py`).

Every case must answer 200 or a 4xx, never a 5xx; aiortc must leave no task exception
behind; every peer connection the room made and does not use any more must be closed with
its ICE transport; and afterwards the server is healthy: a clean offer still joins and
connects. The mutations are seeded, so a failure names a case that replays exactly.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aioice
import aioice.ice
import pytest

from audio.metrics import AudioMetrics
from bot.core import Core
from bot.settings import Settings
from tests.audio.conftest import build_world, close_world
from tests.audio.test_room_edges import Peers, released

CHROMIUM_OFFER = (Path(__file__).parent / "chromium_offer.sdp").read_bytes().decode()
SEED = 20261205
CASES = 600

HOSTILE_LINES = (
    "a=group:BUNDLE 7 0",
    "a=group:BUNDLE 0 7",
    "a=group:BUNDLE 0 0",
    "a=group:BUNDLE",
    "a=group:LS 0 1",
    "a=group:BUNDLE 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "m=video 9 UDP/TLS/RTP/SAVPF 96",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "m=audio 0 UDP/TLS/RTP/SAVPF 111",
    "m=audio 9 RTP/AVP 111",
    "m=audio 9 UDP/TLS/RTP/SAVPF 300",
    "m=audio 9 UDP/TLS/RTP/SAVPF x",
    "a=mid:",
    "a=mid:" + "m" * 200,
    "a=mid:1",
    "a=rtpmap:111 opus/48000/2",
    "a=rtpmap:111 PCMU/8000",
    "a=rtpmap:300 opus/48000/2",
    "a=rtpmap:111 opus/0/0",
    "a=rtpmap:111 opus",
    "a=rtpmap:x opus/48000/2",
    "a=fmtp:99 minptime=10",
    "a=fmtp:111",
    "a=fmtp:111 ;;;==",
    "a=rtcp-fb:* nack",
    "a=rtcp-fb:111",
    "a=extmap:0 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:300 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:15/sendrecv urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:x",
    "a=fingerprint:md5 00:11",
    "a=fingerprint:sha-256 ZZ",
    "a=fingerprint:sha-256",
    "a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:00:11:22:33:44:55:66:77:88:99",
    "a=setup:holdconn",
    "a=setup:passive",
    "a=setup:active",
    "a=setup:",
    "a=ice-ufrag:",
    "a=ice-ufrag:a b",
    "a=ice-pwd:short",
    "a=ice-lite",
    "a=ice-options:ice2",
    "a=candidate:1 1 udp 1 example.com 1 typ host",
    "a=candidate:1 1 udp 1 10.0.0.1 0 typ host",
    "a=candidate:1 1 udp 99999999999 127.0.0.1 99999 typ host",
    "a=candidate:1 1 udp 1 127.0.0.1 5000 typ relay raddr 0.0.0.0 rport 0",
    "a=candidate:1 1 udp 1 abcd.local 5000 typ host",
    "a=candidate:1 3 udp 1 127.0.0.1 5000 typ host",
    "a=candidate:1 1 sctp 1 127.0.0.1 5000 typ host",
    "a=candidate:1 1 udp 1 127.0.0.1 5000 typ bogus",
    "a=candidate:x",
    "a=candidate:",
    "a=end-of-candidates",
    "a=inactive",
    "a=recvonly",
    "a=sendonly",
    "a=rtcp-mux",
    "a=rtcp-mux-only",
    "a=rtcp:99999999999999999999",
    "a=rtcp:9 IN IP9 0.0.0.0",
    "c=IN IP4 ",
    "c=IN IP9 1.2.3.4",
    "a=ssrc:1 cname",
    "a=ssrc:notanumber cname:x",
    "a=ssrc:4294967296 cname:x",
    "a=ssrc-group:FID 1 x",
    "a=msid-semantic:",
    "a=msid:",
    "a=max-message-size:x",
    "a=sctp-port:x",
    "a=sctpmap:x",
    "v=1",
    "v=x",
    "o=",
    "t=x",
    "s=",
    "a=",
    "a",
    "=",
    "",
    " ",
    "a=ü" + "\u202e" * 5,
)
FIELD_VALUES = (
    "",
    "0",
    "-1",
    "65536",
    "4294967296",
    "9" * 40,
    "x" * 300,
    "ü",
    "\t",
    "::",
    "0.0.0.0",
    "255.255.255.255",
    "0/0/0",
    "*",
    "%s%n",
)


@pytest.fixture(autouse=True)
def checks_stay_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mutated candidate can name any address (a flipped digit turns 127.0.0.1 into a
    public one, a name ending in .local asks for multicast DNS). The room must be free to
    answer it, but this test's ICE checks go to loopback only: aioice is handed no other
    remote candidate."""
    add = aioice.ice.Connection.add_remote_candidate

    async def loopback_only(
        self: aioice.ice.Connection, candidate: aioice.Candidate | None
    ) -> None:
        if candidate is None or _loopback(candidate.host):
            await add(self, candidate)

    monkeypatch.setattr(aioice.ice.Connection, "add_remote_candidate", loopback_only)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _line(rng: random.Random, lines: list[str]) -> int:
    return rng.randrange(len(lines)) if lines else 0


def _delete(rng: random.Random, lines: list[str]) -> None:
    if lines:
        del lines[_line(rng, lines)]


def _duplicate(rng: random.Random, lines: list[str]) -> None:
    if lines:
        i = _line(rng, lines)
        lines.insert(rng.randrange(len(lines) + 1), lines[i])


def _swap(rng: random.Random, lines: list[str]) -> None:
    if len(lines) > 1:
        i, j = rng.sample(range(len(lines)), 2)
        lines[i], lines[j] = lines[j], lines[i]


def _insert(rng: random.Random, lines: list[str]) -> None:
    lines.insert(rng.randrange(len(lines) + 1), rng.choice(HOSTILE_LINES))


def _replace(rng: random.Random, lines: list[str]) -> None:
    if lines:
        lines[_line(rng, lines)] = rng.choice(HOSTILE_LINES)


def _field(rng: random.Random, lines: list[str]) -> None:
    """Replace one space- or colon-separated field of a line."""
    if not lines:
        return
    i = _line(rng, lines)
    separator = rng.choice((" ", ":", "/", "="))
    parts = lines[i].split(separator)
    parts[rng.randrange(len(parts))] = rng.choice(FIELD_VALUES)
    lines[i] = separator.join(parts)


def _chars(rng: random.Random, lines: list[str]) -> None:
    """Flip a few characters of a line to random ones (printable or not)."""
    if not lines:
        return
    i = _line(rng, lines)
    text = list(lines[i])
    for _ in range(rng.randint(1, 4)):
        if text:
            text[rng.randrange(len(text))] = chr(rng.choice((0, 9, 11, 32, 127, 0xFF, 0x2028)))
            text[rng.randrange(len(text))] = chr(rng.randint(33, 126))
    lines[i] = "".join(text)


def _flood(rng: random.Random, lines: list[str]) -> None:
    """Repeat one line many times (a size attack that stays under the body limit)."""
    if lines:
        i = _line(rng, lines)
        lines[i + 1 : i + 1] = [lines[i]] * rng.choice((50, 400, 1_000))


def _drop_kind(rng: random.Random, lines: list[str]) -> None:
    """Remove every line of one kind (all candidates, all rtpmaps, the mid...)."""
    prefix = rng.choice(
        ("a=candidate", "a=rtpmap", "a=mid", "a=ice-", "a=fingerprint", "a=setup", "a=group",
         "a=rtcp-mux", "m=", "c=", "v=", "a=extmap", "a=ssrc")
    )  # fmt: skip
    lines[:] = [line for line in lines if not line.startswith(prefix)]


def _truncate(rng: random.Random, lines: list[str]) -> None:
    if lines:
        i = _line(rng, lines)
        lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        del lines[i + 1 :]


def _hoist(rng: random.Random, lines: list[str]) -> None:
    """Move a media-level line into the session part (before the m= line) or past it."""
    if lines:
        line = lines.pop(_line(rng, lines))
        lines.insert(rng.randrange(len(lines) + 1), line)


MUTATIONS: tuple[Callable[[random.Random, list[str]], None], ...] = (
    _delete, _duplicate, _swap, _insert, _insert, _replace, _replace, _field, _field,
    _chars, _flood, _drop_kind, _truncate, _hoist,
)  # fmt: skip


def mutate(rng: random.Random, offer: str) -> str:
    """One seeded mutation of ``offer``: one to three line-level changes and a line ending."""
    lines = offer.split("\r\n")[:-1]
    for _ in range(rng.randint(1, 3)):
        rng.choice(MUTATIONS)(rng, lines)
    ending = rng.choices(("\r\n", "\n", "\r", "\r\n\r\n"), weights=(8, 3, 1, 1))[0]
    return ending.join(lines) + ending


def test_mutations_are_seeded_and_varied() -> None:
    first = [mutate(random.Random(SEED + i), CHROMIUM_OFFER) for i in range(50)]
    again = [mutate(random.Random(SEED + i), CHROMIUM_OFFER) for i in range(50)]
    assert first == again
    assert len(set(first)) > 45
    assert CHROMIUM_OFFER not in first or first.count(CHROMIUM_OFFER) < 3


async def test_hostile_offers_get_200_or_4xx_and_leave_the_room_healthy(
    core: Core, settings: Settings, metrics: AudioMetrics
) -> None:
    peers = Peers()
    world = await build_world(core, settings, metrics, peer_factory=peers)
    unretrieved: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    default_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    try:
        fuzzer = await world.ticket("fuzzer")
        statuses: Counter[int] = Counter()
        failures: list[str] = []
        for case in range(CASES):
            sdp = mutate(random.Random(SEED + case), CHROMIUM_OFFER)
            response = await world.http.post(
                f"/rooms/{world.space_id}/offer",
                json={"sdp": sdp, "type": "offer", "token": fuzzer.token},
            )
            statuses[response.status_code] += 1
            if not (response.status_code == 200 or 400 <= response.status_code < 500):
                failures.append(f"case {case}: {response.status_code} {response.text[:200]}")
        assert not failures, failures[:5]
        # The corpus exercises both sides: some mutants are still good offers, most not.
        assert statuses[200] >= 20 and statuses[422] >= CASES // 2, statuses

        # Healthy after: the app answers, a clean offer joins and connects.
        assert (await world.http.get("/healthz")).status_code == 200
        clean = await world.ticket("clean")
        client = await world.join(clean)
        assert client.pc.connectionState == "connected"

        # Nothing leaked: the room holds at most the fuzzer's last good session and the clean
        # one, and every other peer connection it made is closed with its ICE transport.
        room = world.room()
        assert set(room) <= {fuzzer.key, clean.key}
        live = {id(session.pc) for key in room if (session := room.session(key)) is not None}
        leaked = [pc for pc in peers.made if id(pc) not in live and not released(pc)]
        assert leaked == []
        gc.collect()
        await asyncio.sleep(0)
        assert [c.get("message") for c in unretrieved] == []
    finally:
        loop.set_exception_handler(default_handler)
        await close_world(world)
