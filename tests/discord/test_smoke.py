from __future__ import annotations

from tests.discord.conftest import Bot, Server
from tests.discord.fake_discord import FakeDiscord


async def test_connects_and_syncs(bot: Bot, fake: FakeDiscord, server: Server) -> None:
    assert set(fake.commands[server.guild.id]) >= {"space", "ticket", "stage", "tip", "help"}
    assert fake.unknown == []
