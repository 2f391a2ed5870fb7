"""`audio.install`: what it adds to a Stagepass, its settings, and its background job."""

from __future__ import annotations

import asyncio

import pytest

from adapters.shell.chat import Chat
from audio import install
from audio.install import LiveAudio, rtc_ice_servers
from audio.metrics import AudioMetrics
from audio.pages import browser_ice_servers
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.errors import ConfigError
from bot.settings import Settings, load_settings
from bot.wiring import Stagepass
from tests.audio.conftest import World, build_world, close_world
from tests.waiting import PATIENCE, eventually

ICE = (
    '[{"urls": "stun:stun.example.org:3478"},'
    ' {"urls": ["turn:turn.example.org:3478", "turns:turn.example.org:5349"],'
    '  "username": "u", "credential": "p"}]'
)


def stagepass(core: Core, settings: Settings) -> Stagepass:
    dispatcher = Dispatcher(core)
    return Stagepass(settings, core, dispatcher, services={"chat": Chat(core, dispatcher)})


async def test_install_adds_routes_a_job_and_the_mode(core: Core, settings: Settings) -> None:
    app = stagepass(core, settings)
    await install(app)
    paths = {getattr(route, "path", "") for router in app.routers for route in router.routes}
    assert {
        "/rooms/{space_id}/offer",
        "/rooms/{space_id}/state",
        "/rooms/{space_id}",
        "/rooms/{space_id}/hand",
        "/rooms/{space_id}/recording",
        "/rooms/{space_id}/recordings/{number}",
        "/audio/{name}",
    } <= paths
    assert [job.__name__ for job in app.background] == ["audio_rooms"]
    assert app.modes == ["audio"]


async def test_install_does_nothing_when_turned_off(core: Core, settings: Settings) -> None:
    off = settings.model_copy(update={"audio_enabled": False})
    app = stagepass(core, off)
    await install(app)
    assert app.routers == [] and app.background == [] and app.modes == []


def test_ice_servers_setting(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    del settings  # (its fixture moved us into a clean directory: no stray .env)
    monkeypatch.setenv("STAGEPASS_ICE_SERVERS", ICE)
    servers = load_settings().ice_servers
    rtc = rtc_ice_servers(servers)
    assert [s.urls for s in rtc] == [
        ["stun:stun.example.org:3478"],
        ["turn:turn.example.org:3478", "turns:turn.example.org:5349"],
    ]
    assert rtc[1].username == "u" and rtc[1].credential == "p"
    assert browser_ice_servers(servers) == [
        {"urls": ["stun:stun.example.org:3478"]},
        {
            "urls": ["turn:turn.example.org:3478", "turns:turn.example.org:5349"],
            "username": "u",
            "credential": "p",
        },
    ]
    monkeypatch.setenv("STAGEPASS_ICE_SERVERS", "")
    assert load_settings().ice_servers == []  # the default: none, never a public server
    for bad in ("stun:x", "[{}]", '[{"urls": "https://x"}]', '[{"urls": "stun:x", "pw": 1}]'):
        monkeypatch.setenv("STAGEPASS_ICE_SERVERS", bad)
        with pytest.raises(ConfigError, match="STAGEPASS_ICE_SERVERS"):
            load_settings()


def test_recording_dir_setting(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.resolved_recording_dir == settings.data_dir / "recordings"
    monkeypatch.setenv("STAGEPASS_RECORDING_DIR", "/srv/recordings")
    assert str(load_settings().resolved_recording_dir) == "/srv/recordings"


async def test_the_job_opens_live_rooms_and_closes_every_room_on_stop(world: World) -> None:
    audio: LiveAudio = world.audio
    await audio.registry.close(world.space_id)
    audio.serving = False
    stop = asyncio.Event()
    job = asyncio.get_running_loop().create_task(audio.run(stop))
    await eventually(
        lambda: audio.serving and audio.registry.get(world.space_id) is not None,
        what="the live Space's room open",
    )
    room = audio.registry.get(world.space_id)
    stop.set()
    await asyncio.wait_for(job, PATIENCE)
    assert not audio.serving and len(audio.registry) == 0
    assert room is not None and room.closed


async def test_a_start_seen_while_not_serving_opens_the_room_on_first_use(
    core: Core, settings: Settings, metrics: AudioMetrics
) -> None:
    """A one-shot CLI command starting a Space must not start a mixer; the serving process
    opens the room when the first participant asks for it (or on its next reconcile)."""
    world = await build_world(core, settings, metrics, live=False)
    try:
        world.audio.serving = False
        await world.start()
        assert world.audio.registry.get(world.space_id) is None
        ann = await world.ticket("ann")
        me = await world.http.get(f"/rooms/{world.space_id}/me", headers=ann.bearer)
        assert me.status_code == 200
        assert world.audio.registry.get(world.space_id) is not None
    finally:
        await close_world(world)
