"""`install(stagepass)`: off without a token; with one, a background job that runs the
client until stop. And a client that cannot start is reported, not hidden."""

from __future__ import annotations

import asyncio

import discord
import pytest

from adapters.discord import DiscordAdapter, install
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.settings import Settings, load_settings
from bot.wiring import Stagepass
from tests.discord.conftest import Server, config_for
from tests.discord.fake_discord import FakeDiscord
from tests.waiting import PATIENCE


async def test_without_a_token_install_does_nothing(settings: Settings) -> None:
    app = await Stagepass.build(settings, install=False)
    try:
        await install(app)
        assert app.background == [] and "discord" not in app.modes
    finally:
        await app.close()


async def test_the_background_job_runs_the_client_until_stop(
    settings: Settings, fake: FakeDiscord, server: Server
) -> None:
    configured = load_settings(
        data_dir=settings.data_dir,
        public_url="http://stagepass.test",
        discord_token=fake.token,
        discord_guild_ids=str(server.guild.id),
        discord_announce_channel_ids=str(server.announce.id),
        discord_stage_channel_ids=str(server.stage.id),
    )
    app = await Stagepass.build(configured, install=False)
    try:
        await install(app)
        assert app.modes[-1] == "discord"
        [job] = app.background
        stop = asyncio.Event()
        task = asyncio.create_task(job(stop))
        await fake.until(lambda: server.guild.id in fake.commands or task.done(), 15)
        assert not task.done()
        created = await fake.slash(
            server.guild,
            server.host,
            "space create",
            title="Wired",
            starts="tomorrow 18:00",
            tickets=2,
        )
        assert "is announced" in (await fake.answer(created)).text()
        await fake.until(lambda: len(fake.channel_messages(server.announce)) == 1)
        stop.set()
        await asyncio.wait_for(task, PATIENCE)
        assert not any(
            t.get_name().startswith("discord:") for t in asyncio.all_tasks() if not t.done()
        )
    finally:
        await app.close()


async def test_a_client_that_cannot_log_in_is_reported(
    core: Core, dispatcher: Dispatcher, settings: Settings, fake: FakeDiscord, server: Server
) -> None:
    adapter = DiscordAdapter(core, dispatcher, config_for(server, settings))
    with pytest.raises(discord.LoginFailure):
        await asyncio.wait_for(adapter.run("not-the-token", asyncio.Event()), PATIENCE)
    assert adapter.client.is_closed()


async def test_discord_sync_registers_the_commands_over_rest(
    settings: Settings, fake: FakeDiscord, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.discord.cli import sync_commands

    configured = load_settings(data_dir=settings.data_dir, discord_token=fake.token)
    assert await asyncio.wait_for(sync_commands(configured), PATIENCE) == 0
    assert "Stagepass HQ" in capsys.readouterr().out
    assert set(fake.commands[server.guild.id]) >= {"space", "ticket", "stage"}
    assert fake.connections == 0  # no gateway needed

    wrong = load_settings(data_dir=settings.data_dir, discord_token="nope")
    assert await asyncio.wait_for(sync_commands(wrong), PATIENCE) == 2
