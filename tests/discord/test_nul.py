"""A NUL character (U+0000) in a slash command's option is refused naming the option, as
typed text is (tests/test_nul_chat.py); a member's display name holding one is cleaned."""

from __future__ import annotations

from bot.core import Core
from bot.errors import NUL_MESSAGE
from tests.discord.conftest import Bot, Server
from tests.discord.fake_discord import FakeDiscord


async def test_discord_options_and_display_names_with_a_nul(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    refused = await bot.host_creates(server, title="a\x00b", starts="tomorrow 18:00", tickets=5)
    assert refused.text().endswith(f" title: {NUL_MESSAGE}"), refused.text()
    eve = fake.add_member(server.guild, "ev\x00e")  # the platform's name: cleaned, not refused
    options = {"title": "Eve", "starts": "tomorrow 18:00", "tickets": 5}
    made = await bot.answer(await fake.slash(server.guild, eve, "space create", **options))
    assert "Space #1 is announced" in made.text(), made.text()
    host = await core.identities.get((await core.spaces.get(1)).host_id)
    assert host.display_name == "eve"
