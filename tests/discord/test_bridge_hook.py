"""The voice bridge follows the Stage: it starts when the Space goes live on a Stage
channel and stops when the Space ends (the bridge itself is tested in tests/bridge)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.discord import DiscordAdapter, install
from audio import RoomRegistry
from audio.bridge import DiscordBridges
from bot.settings import Settings
from bot.wiring import Stagepass
from tests.discord.conftest import Bot, Server
from tests.discord.fake_discord import FakeDiscord

pytestmark = pytest.mark.timeout(60)


class RecordingBridges:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, Any]] = []

    async def start(self, space_id: int, channel: Any) -> None:
        self.calls.append(("start", space_id, channel.id))

    async def stop(self, space_id: int) -> bool:
        self.calls.append(("stop", space_id, None))
        return True

    async def aclose(self) -> None:
        self.calls.append(("aclose", 0, None))


async def test_bridge_starts_with_the_stage_and_stops_at_the_end(
    bot: Bot, fake: FakeDiscord, server: Server
) -> None:
    bridges = RecordingBridges()
    bot.adapter.stage.bridges = bridges  # type: ignore[assignment]
    guild, alice = server.guild, server.host
    created = await fake.slash(
        guild, alice, "space create", title="Bridged", starts="tomorrow 18:00", tickets=5
    )
    assert "is announced" in (await bot.answer(created)).text()
    assert (
        "is live"
        in (await bot.answer(await fake.slash(guild, alice, "space start", space=1))).text()
    )
    await bot.settle()
    assert bridges.calls == [("start", 1, server.stage.id)]
    await bot.answer(await fake.slash(guild, alice, "space end", space=1))
    await bot.settle()
    assert bridges.calls[-1] == ("stop", 1, None)


async def test_install_adds_the_bridge_only_when_asked(settings: Settings) -> None:
    for wanted in (False, True):
        configured = settings.model_copy(
            update={"discord_voice_bridge": wanted, "discord_token": settings.api_token}
        )
        app = await Stagepass.build(configured, install=False)
        try:
            app.rooms = RoomRegistry()
            await install(app)
            [job] = app.background
            cells = [c.cell_contents for c in job.__closure__ or ()]
            [adapter] = [c for c in cells if isinstance(c, DiscordAdapter)]
            assert isinstance(adapter.stage.bridges, DiscordBridges) is wanted
        finally:
            await app.rooms.aclose()
            await app.close()
