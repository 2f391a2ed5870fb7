"""Cancelling a Space, members without rights, and bot permissions that are missing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.models import SpaceStatus
from bot.settings import Settings
from tests.discord.conftest import Bot, Server, build_server, config_for, running
from tests.discord.fake_discord import FakeDiscord, Message
from tests.discord.fake_discord import permissions as P

G = r"\d+"


async def create(bot: Bot, server: Server, title: str, tickets: int = 5) -> Message:
    """The host creates a Space; returns its announcement."""
    before = len(server_announcements(bot, server))
    reply = await bot.answer(
        await bot.fake.slash(
            server.guild,
            server.host,
            "space create",
            title=title,
            starts="tomorrow 18:00",
            tickets=tickets,
        )
    )
    assert "is announced" in reply.text(), reply.text()
    announcements = server_announcements(bot, server)
    assert len(announcements) == before + 1
    return announcements[-1]


def server_announcements(bot: Bot, server: Server) -> list[Message]:
    return bot.fake.channel_messages(server.announce)


def ticket_role(server: Server, space_id: int) -> Any:
    found = [r for r in server.guild.roles.values() if r.name.startswith(f"🎟 #{space_id} ")]
    return found[0] if found else None


async def test_host_cancels_buyers_lose_the_role_and_hear_of_it(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    guild = server.guild
    first = await create(bot, server, "Morning show")
    other = await create(bot, server, "Evening show")
    for member in (server.bob, server.carol):
        await bot.answer(await fake.click(guild, member, other, "Get ticket"))
    await bot.answer(await fake.click(guild, server.bob, first, "Get ticket"))
    role = ticket_role(server, 2)
    assert role.id in server.bob.roles and role.id in server.carol.roles
    assert "Tickets left: 3 of 5" in other.text()

    reply = await bot.answer(
        await fake.slash(guild, server.host, "space cancel", space=2, reason="I lost my voice")
    )
    assert "Space #2 is cancelled. 2 ticket(s) refunded or voided." in reply.text()
    assert reply.ephemeral  # the refund counts concern the host only

    assert (await core.spaces.get(2)).status == SpaceStatus.CANCELLED
    assert role.id not in guild.roles  # deleted: every buyer lost it at once
    assert role.id not in server.bob.roles and role.id not in server.carol.roles
    for member in (server.bob, server.carol):
        assert any(
            "Your ticket" in m.text() and "Evening show was cancelled. I lost my voice" in m.text()
            for m in fake.dms(member)
        ), [m.text() for m in fake.dms(member)]
    event = next(e for e in guild.events.values() if e.name == "Evening show")
    assert event.status == 4  # canceled
    assert "Cancelled: I lost my voice" in other.text() and other.components == []

    # the other Space is untouched
    assert ticket_role(server, 1).id in server.bob.roles
    assert (await core.spaces.get(1)).status == SpaceStatus.SCHEDULED


async def test_a_refund_takes_the_role_back(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    announcement = await create(bot, server, "Q&A")
    await bot.answer(await fake.click(server.guild, server.bob, announcement, "Get ticket"))
    bob = await core.identities.by_key(f"discord:{server.guild.id}:{server.bob.user.id}")
    assert bob is not None and bob.id is not None
    [ticket] = await core.tickets.tickets_of(bob.id, 1)
    reply = await bot.answer(
        await fake.slash(server.guild, server.host, "ticket refund", ticket=ticket.id)
    )
    assert f"Ticket {ticket.id} is revoked" in reply.text()
    role = ticket_role(server, 1)
    assert role.id not in server.bob.roles and role.id in server.host.roles
    assert fake.calls_to("DELETE", f"/guilds/{G}/members/{server.bob.user.id}/roles/{role.id}")
    assert "Tickets left: 5 of 5" in announcement.text()


async def test_members_without_rights_are_refused_and_nothing_changes(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    guild = server.guild
    announcement = await create(bot, server, "Members only")
    await bot.answer(await fake.click(guild, server.bob, announcement, "Get ticket"))
    calls = len(fake.calls)

    refused = await bot.answer(await fake.slash(guild, server.dave, "space cancel", space=1))
    assert refused.ephemeral
    assert refused.text() == "⚠️ Only the host and moderators can cancel this Space."
    edit = await bot.answer(
        await fake.slash(guild, server.dave, "space edit", space=1, title="Mine")
    )
    assert edit.ephemeral and "Only the host can edit this Space." in edit.text()
    assert (await core.spaces.get(1)).status == SpaceStatus.SCHEDULED
    assert (await core.spaces.get(1)).title == "Members only"
    # nothing but the two answers went to Discord
    assert {(c.method, c.path.split("/")[1]) for c in fake.calls[calls:]} == {
        ("POST", "interactions")
    }

    await bot.answer(await fake.slash(guild, server.host, "space start", space=1, confirm=True))
    await fake.join_voice(guild, server.bob, server.stage)
    await bot.settle()
    calls = len(fake.calls)
    refused = await bot.answer(
        await fake.slash(guild, server.dave, "stage promote", user=server.bob)
    )
    assert refused.ephemeral
    assert "Only the host, co-hosts and moderators can manage the stage." in refused.text()
    assert (await core.stage.state(1)).speakers == []
    assert guild.voice[server.bob.user.id].suppress is True
    assert not fake.calls_to("PATCH", f"/guilds/{G}/voice-states/{G}")
    assert {(c.method, c.path.split("/")[1]) for c in fake.calls[calls:]} == {
        ("POST", "interactions")
    }

    # a configured moderator role counts too (dave has it in a second bot below)


async def test_a_configured_moderator_role_makes_a_moderator(
    core: Core, dispatcher: Dispatcher, settings: Settings, fake: FakeDiscord, server: Server
) -> None:
    helpers = fake.add_role(server.guild, "Helpers")
    server.dave.roles.add(helpers.id)
    config = config_for(server, settings, moderator_roles=frozenset({"Helpers"}))
    async with running(core, dispatcher, config, fake) as bot:
        await create(bot, server, "Helped")
        reply = await bot.answer(
            await fake.slash(server.guild, server.dave, "space cancel", space=1)
        )
        assert "Space #1 is cancelled" in reply.text()


@pytest.fixture
def crippled(fake: FakeDiscord) -> Server:
    """A server where the bot was invited without Manage Roles."""
    return build_server(fake, bot_permissions=P.BOT_INVITE & ~P.MANAGE_ROLES)


@pytest.fixture
async def crippled_bot(
    core: Core,
    dispatcher: Dispatcher,
    settings: Settings,
    fake: FakeDiscord,
    crippled: Server,
    discord_errors: Callable[[], list[logging.LogRecord]],
) -> AsyncIterator[Bot]:
    async with running(core, dispatcher, config_for(crippled, settings), fake) as bot:
        yield bot
    assert discord_errors() == [] and core.bus.failures == 0


async def test_missing_manage_roles_is_explained_and_retried(
    crippled_bot: Bot, fake: FakeDiscord, crippled: Server, core: Core
) -> None:
    bot, server, guild = crippled_bot, crippled, crippled.guild
    announcement = await create(bot, server, "No roles yet")
    await bot.answer(await fake.click(guild, server.bob, announcement, "Get ticket"))
    await bot.answer(await fake.click(guild, server.carol, announcement, "Get ticket"))

    # the ticket itself is fine: the DM with the join link arrived
    assert any("Your ticket for No roles yet" in m.text() for m in fake.dms(server.bob))
    assert ticket_role(server, 1) is None
    assert fake.calls_to("POST", f"/guilds/{G}/roles")[0].status == 403

    # the host (DM) and the moderators (alert channel) are told exactly what to change, once
    [to_host] = [m for m in fake.dms(server.host) if "Manage Roles" in m.text()]
    [to_mods] = fake.channel_messages(server.alerts)
    for message in (to_host, to_mods):
        assert "the bot is missing the **Manage Roles** permission" in message.text()
        assert (
            "Server Settings → Roles → **Stagepass** → turn on **Manage Roles**" in message.text()
        )
        assert "nothing is lost" in message.text()
    tasks = await bot.adapter.store.tasks(await bot.adapter.store.get(1, guild.id))
    assert sorted(t.action for t in tasks) == ["grant", "grant"]  # bob, carol (the role with them)

    # an admin fixes the bot's role: Discord says so, and the bot catches up at once
    await fake.update_role(guild, fake.bot_role(guild), permissions=P.BOT_INVITE)
    await bot.until(lambda: ticket_role(server, 1) is not None, "the ticket role")
    await bot.settle()
    role = ticket_role(server, 1)
    for member in (server.host, server.bob, server.carol):
        assert role.id in member.roles
    assert await bot.adapter.store.tasks(await bot.adapter.store.get(1, guild.id)) == []
    assert any(m.text().startswith("Fixed: every ticket holder") for m in fake.dms(server.host))


async def test_role_above_the_bot_is_explained(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    guild = server.guild
    announcement = await create(bot, server, "Hierarchy")
    await bot.answer(await fake.click(guild, server.carol, announcement, "Get ticket"))
    role = ticket_role(server, 1)  # made by the first sale
    # someone drags the ticket role above the bot's own role
    await fake.update_role(guild, role, position=fake.bot_role(guild).position + 1)
    await bot.settle()
    await bot.answer(await fake.click(guild, server.bob, announcement, "Get ticket"))
    assert role.id not in server.bob.roles
    [to_mods] = fake.channel_messages(server.alerts)
    assert (
        "the role **🎟 #1 Hierarchy** is above the bot's highest role **Stagepass**"
        in to_mods.text()
    )
    assert "drag **Stagepass** above **🎟 #1 Hierarchy**" in to_mods.text()
    assert [
        (t.user_id, t.action)
        for t in await bot.adapter.store.tasks(await bot.adapter.store.get(1, guild.id))
    ] == [(str(server.bob.user.id), "grant")]

    await fake.update_role(guild, role, position=1)
    await bot.until(lambda: role.id in server.bob.roles, "the retried grant")


async def test_without_an_announcement_channel_the_host_is_told_how_to_fix_it(
    core: Core, dispatcher: Dispatcher, settings: Settings, fake: FakeDiscord, server: Server
) -> None:
    """Answers are private, so a Space nobody can see is reported, not silently kept."""
    config = config_for(server, settings, announce_channels=())
    async with running(core, dispatcher, config, fake) as bot:
        reply = await bot.host_creates(server, title="Hidden", starts="tomorrow 18:00", tickets=5)
        assert reply.ephemeral and "is announced" in reply.text()
        [alert] = fake.channel_messages(server.alerts)
        assert "“Hidden” (#1) was not announced" in alert.text()
        assert "set DISCORD_ANNOUNCE_CHANNEL" in alert.text()
        assert any("DISCORD_ANNOUNCE_CHANNEL" in m.text() for m in fake.dms(server.host))
