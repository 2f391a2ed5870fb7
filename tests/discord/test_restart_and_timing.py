"""Restarts keep buttons working without re-posting; slow work is deferred in time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.actors import Actor
from bot.clock import ManualClock
from bot.commands import types as t
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.db import Database
from bot.replies import Reply
from bot.settings import Settings
from tests.discord.conftest import Server, config_for, restarted_core, running
from tests.discord.fake_discord import FakeDiscord

G = r"\d+"


async def test_restart_keeps_buttons_and_posts_nothing_twice(
    core: Core,
    dispatcher: Dispatcher,
    settings: Settings,
    fake: FakeDiscord,
    server: Server,
    sqlite_db: Database,
    clock: ManualClock,
    discord_errors: Callable[[], list[logging.LogRecord]],
) -> None:
    guild = server.guild
    config = config_for(server, settings)
    async with running(core, dispatcher, config, fake) as bot:
        reply = await bot.host_creates(server, title="Twice?", starts="tomorrow 18:00", tickets=5)
        assert "is announced" in reply.text()
    [announcement] = fake.channel_messages(server.announce)
    posts = len(fake.calls_to("POST", f"/channels/{server.announce.id}/messages"))
    events = len(fake.calls_to("POST", f"/guilds/{G}/scheduled-events"))
    roles = len(fake.calls_to("POST", f"/guilds/{G}/roles"))
    assert (posts, events, roles) == (1, 1, 0)  # the role waits for the first sale
    await core.bus.close()

    # a new process: new core, new client, same database
    core2 = await restarted_core(settings, sqlite_db, clock)
    try:
        async with running(core2, Dispatcher(core2), config, fake) as bot:
            assert fake.connections == 2
            # nothing re-posted or re-created; the announcement was only refreshed in place
            assert len(fake.calls_to("POST", f"/channels/{server.announce.id}/messages")) == posts
            assert len(fake.calls_to("POST", f"/guilds/{G}/scheduled-events")) == events
            assert len(fake.calls_to("POST", f"/guilds/{G}/roles")) == roles
            assert fake.channel_messages(server.announce) == [announcement]

            # the old message's buttons still work
            answer = await bot.answer(
                await fake.click(guild, server.bob, announcement, "Get ticket")
            )
            assert "You're in!" in answer.text()
            assert any("Your ticket for Twice?" in m.text() for m in fake.dms(server.bob))
            assert "Tickets left: 4 of 5" in announcement.text()
            [role] = [r for r in guild.roles.values() if r.name == "🎟 #1 Twice?"]
            assert role.id in server.bob.roles
    finally:
        await core2.close()
    assert discord_errors() == []


async def test_slow_work_is_deferred_then_followed_up(
    core: Core, dispatcher: Dispatcher, settings: Settings, fake: FakeDiscord, server: Server
) -> None:
    """Past `ack_within` the bot defers ("thinking…") and then replaces that message;
    every answer is private, errors included.
    (`ack_within=0` makes every answer "slow".)"""
    release = asyncio.Event()

    async def slow(actor: Actor, command: t.ListSpaces) -> Reply:
        await release.wait()
        return await dispatcher.list_spaces(actor, command)

    dispatcher.register(t.ListSpaces, slow)
    config = config_for(server, settings, ack_within=0.0)
    async with running(core, dispatcher, config, fake) as bot:
        listing = await fake.slash(server.guild, server.bob, "space list")
        await bot.until(lambda: listing.callback_types == [5], "the deferral")
        assert listing.callbacks[0]["data"]["flags"] == 64  # thinking, privately
        assert listing.answer() is None
        release.set()
        answer = await bot.answer(listing)
        assert "No upcoming Spaces here" in answer.text() and answer.ephemeral
        assert fake.calls_to("PATCH", rf"/webhooks/{G}/{listing.token}/messages/@original")
        assert not listing.late

        # an error is private too: the "thinking…" message is replaced with it
        bad = await fake.slash(
            server.guild,
            server.host,
            "space create",
            title="When?",
            starts="someday maybe",
            tickets=3,
        )
        answer = await bot.answer(bad)
        assert bad.callback_types == [5] and bad.callbacks[0]["data"]["flags"] == 64
        assert answer.ephemeral and "can't read 'someday maybe' as a time" in answer.text()
        assert fake.channel_messages(server.general) == []  # nothing left in public
