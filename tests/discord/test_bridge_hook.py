"""The voice bridge follows the Stage and the Space's setting: it runs while a Space whose
bridge is on is live on a Stage channel (the bridge itself is tested in tests/bridge)."""

from __future__ import annotations

from typing import Any

from adapters.discord import DiscordAdapter, install
from audio import RoomRegistry
from audio.bridge import DiscordBridges
from bot.settings import Settings
from bot.wiring import Stagepass
from tests.discord.conftest import Bot, Server
from tests.discord.fake_discord import FakeDiscord


class RecordingBridges:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, Any]] = []
        self.seats: Any = None  # set by StageSync: who may speak

    async def start(self, space_id: int, channel: Any) -> None:
        self.calls.append(("start", space_id, channel.id))

    async def stop(self, space_id: int) -> bool:
        self.calls.append(("stop", space_id, None))
        return True

    async def aclose(self) -> None:
        self.calls.append(("aclose", 0, None))

    async def reseat(self, space_id: int, user_id: int) -> bool:
        return False

    def lists(self, space_id: int, user_id: int) -> bool:
        return False

    def last(self) -> tuple[str, int, Any]:
        return self.calls[-1]


async def test_the_spaces_setting_starts_and_stops_its_bridge(
    bot: Bot, fake: FakeDiscord, server: Server
) -> None:
    bridges = RecordingBridges()
    bot.adapter.stage.bridges = bridges  # type: ignore[assignment]  # a recording stand-in
    guild, alice = server.guild, server.host
    created = await fake.slash(
        guild, alice, "space create", title="Bridged", starts="tomorrow 18:00", tickets=5
    )
    assert "is announced" in (await bot.answer(created)).text()
    assert (
        "is live"
        in (
            await bot.answer(await fake.slash(guild, alice, "space start", space=1, confirm=True))
        ).text()
    )
    await bot.settle()
    # DISCORD_VOICE_BRIDGE is off, and the Space says "default": no bridge
    assert [c for c in bridges.calls if c[0] == "start"] == []

    edited = await fake.slash(guild, alice, "space edit", space=1, bridge="listen")
    assert "Discord voice bridge: on" in (await bot.answer(edited)).text()
    await bot.settle()
    assert bridges.last() == ("start", 1, server.stage.id)
    assert [c for c in bridges.calls if c[0] == "start"] == [("start", 1, server.stage.id)]

    edited = await fake.slash(guild, alice, "space edit", space=1, bridge="off")
    await bot.answer(edited)
    await bot.settle()
    assert bridges.last() == ("stop", 1, None)

    await bot.answer(await fake.slash(guild, alice, "space edit", space=1, bridge="speak"))
    await bot.settle()
    assert bridges.last() == ("start", 1, server.stage.id)
    await bot.answer(await fake.slash(guild, alice, "space end", space=1))
    await bot.settle()
    assert bridges.last() == ("stop", 1, None)


async def test_the_global_setting_is_the_default_of_every_space(
    bot: Bot, fake: FakeDiscord, server: Server
) -> None:
    bridges = RecordingBridges()
    bot.adapter.stage.bridges = bridges  # type: ignore[assignment]  # a recording stand-in
    bot.core.ctx.settings = bot.core.settings.model_copy(update={"discord_voice_bridge": True})
    guild, alice = server.guild, server.host
    await bot.answer(
        await fake.slash(
            guild, alice, "space create", title="On", starts="tomorrow 18:00", tickets=5
        )
    )
    await bot.answer(await fake.slash(guild, alice, "space start", space=1, confirm=True))
    await bot.settle()
    assert bridges.calls == [("start", 1, server.stage.id)]


async def test_install_adds_the_bridges_wherever_there_are_rooms(settings: Settings) -> None:
    configured = settings.model_copy(update={"discord_token": settings.api_token})
    for rooms in (False, True):
        app = await Stagepass.build(configured, install=False)
        try:
            registry = RoomRegistry() if rooms else None
            if registry is not None:
                app.provide("rooms", registry)
            await install(app)
            [job] = app.background
            cells = [c.cell_contents for c in job.__closure__ or ()]
            [adapter] = [c for c in cells if isinstance(c, DiscordAdapter)]
            assert isinstance(adapter.stage.bridges, DiscordBridges) is rooms
        finally:
            if registry is not None:
                await registry.aclose()
            await app.close()
