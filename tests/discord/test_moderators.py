"""One moderator rule: the roles alerts mention (`moderator_roles`) are the roles that make
their members moderators (`is_moderator`), on discord.py's own view of a real server."""

from __future__ import annotations

from adapters.discord.members import is_moderator, moderator_roles
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.settings import Settings
from tests.discord.conftest import Server, config_for, running
from tests.discord.fake_discord import FakeDiscord
from tests.discord.fake_discord import permissions as P


async def test_moderator_roles_are_the_roles_that_make_moderators(
    core: Core, dispatcher: Dispatcher, settings: Settings, fake: FakeDiscord, server: Server
) -> None:
    guild = server.guild
    admins = fake.add_role(guild, "Admins", P.ADMINISTRATOR)
    helpers = fake.add_role(guild, "Helpers")  # configured by name
    hosts = fake.add_role(guild, "Hosts")  # configured by id
    half = fake.add_role(guild, "Channel managers", P.MANAGE_CHANNELS | P.MUTE_MEMBERS)
    fans = fake.add_role(guild, "Fans")
    ada = fake.add_member(guild, "ada", admins)
    hal = fake.add_member(guild, "hal", helpers, fans)
    ho = fake.add_member(guild, "ho", hosts)
    chan = fake.add_member(guild, "chan", half)
    fan = fake.add_member(guild, "fan", fans)
    named = frozenset({"Helpers", str(hosts.id)})
    config = config_for(server, settings, moderator_roles=named)

    async with running(core, dispatcher, config, fake) as bot:
        discord_guild = bot.adapter.client.get_guild(guild.id)
        assert discord_guild is not None
        mentioned = moderator_roles(discord_guild, named)
        # highest first; not "Channel managers" (no Move Members) nor the bot's managed role
        assert [r.name for r in mentioned] == ["Stage Mods", "Admins", "Helpers", "Hosts"]

        people = (server.mo, ada, hal, ho, chan, fan, server.bob, server.dave)
        for person in people:
            member = await discord_guild.fetch_member(person.user.id)
            by_rule = is_moderator(member, member.guild_permissions, named)
            by_role = any(role in mentioned for role in member.roles)
            assert by_rule == by_role, person.user.name
            assert by_rule == (person in (server.mo, ada, hal, ho))
