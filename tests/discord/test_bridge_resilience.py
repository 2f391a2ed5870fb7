"""The voice bridge when Discord misbehaves, against the local fake Discord over real sockets.

Already covered in tests/bridge/test_fake_voice.py: the voice socket dropped (4015) and
the bot disconnected by a moderator (it joins again). Here: a region move (Discord points
the call at another voice server), the main gateway resuming under a live call, and the
voice server going away for a while, during which the room keeps running without
Discord, and after which the bridge is heard again. Each is logged.
"""

from __future__ import annotations

import logging

import pytest

from audio.fanout import PacketTrack
from audio.jitter import JitterBuffer
from tests.bridge.playout import drain, handled, heard_from_discord, played_out, speak_into
from tests.bridge.test_fake_voice import ALICE_TONE, ROOM_TONE, TONES, World, world
from tests.bridge.tones import dominant, opus_tone
from tests.discord.fake_discord.voice import FakeVoice


async def alice_is_heard(w: World, voice: FakeVoice, ssrc: int) -> bool:
    """Alice speaks through ``voice``; whether the room's listener hears her tone."""
    count = handled(w.bridge) + 25
    w.listener._queue.clear()
    await voice.speak_as(w.alice, ssrc, opus_tone(ALICE_TONE, 25))
    await heard_from_discord(w.bridge, count)
    return dominant(drain(w.listener), TONES) == ALICE_TONE


def logged(caplog: pytest.LogCaptureFixture, logger: str, text: str) -> bool:
    return any(r.name == logger and text in r.getMessage() for r in caplog.records)


async def test_region_move_reconnects_to_the_new_voice_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with world() as w, FakeVoice(w.fake) as moved:
        assert w.voice.identifies == 1
        await moved.move_bot_here(w.guild)
        await w.fake.until(
            lambda: moved.identifies == 1 and moved.bot_address is not None and w.bridge.connected,
            what="the bridge on the new voice server",
        )
        assert w.voice.identifies == 1  # discord.py moved on its own: no rejoin by the bridge
        assert moved.session is not None and w.voice.session is not None
        assert moved.session.key != w.voice.session.key
        assert await alice_is_heard(w, moved, 111)
        assert w.bridge.receiver.stats.undecryptable == 0  # the new key, picked up at once
        assert logged(caplog, "discord.voice_state", "potentially reconnecting")


async def test_gateway_resume_leaves_the_call_alone(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with world() as w:
        identifies, connections = w.voice.identifies, w.fake.connections
        await w.fake.close_sessions()  # the main gateway drops; discord.py resumes it
        await w.fake.until(
            lambda: logged(caplog, "discord.gateway", "successfully RESUMED"),
            what="the gateway resume",
        )
        assert w.fake.connections == connections  # resumed, not identified again
        assert w.bridge.connected and w.bridge.playing
        assert w.voice.identifies == identifies  # the voice connection was never touched
        assert await alice_is_heard(w, w.voice, 111)


async def test_room_keeps_running_while_discord_is_gone_and_hears_it_again_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # A join may take a loaded machine well over a second once Discord is back: 5 s of margin.
    async with world(join_timeout=5.0, stall_timeout=0.3, check_interval=0.05) as w:
        browser = JitterBuffer()
        w.room._mixer.add_voice("browser", browser, PacketTrack(max_queue=500))
        await w.voice.go_down()
        await w.fake.until(
            lambda: logged(caplog, "audio.bridge.bridge", "could not join"),
            what="a failed rejoin",
        )
        assert not w.bridge.connected
        # The room goes on without Discord: a browser speaker is heard by the listener.
        w.listener._queue.clear()
        await speak_into(browser, ROOM_TONE, 25)
        await played_out(browser, what="the browser's packets played out")
        assert not w.room.closed
        assert dominant(drain(w.listener), TONES) == ROOM_TONE
        # Discord comes back: the bridge's next attempt gets in, and alice is heard again.
        identifies = w.voice.identifies
        w.voice.come_back()
        await w.fake.until(
            lambda: (
                w.voice.identifies > identifies
                and w.bridge.connected
                and w.bridge.playing
                and w.voice.bot_address is not None
            ),
            what="the bridge back in the call",
        )
        assert await alice_is_heard(w, w.voice, 333)
        assert logged(caplog, "audio.bridge.bridge", "bridge joined channel")
