"""Slash options map onto the same typed commands as the text grammar; edits, co-hosts and
moderation reach Discord's scheduled event, roles and Stage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import discord
import pytest
from sqlmodel import select

from adapters.discord.client import StagepassClient, StagepassTree
from bot.actors import Actor, UserRef
from bot.clock import ManualClock
from bot.commands import types as t
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.models import OutboxMessage, OutboxStatus, Platform
from bot.settings import Settings
from tests.discord.conftest import Bot, Server, config_for, running
from tests.discord.fake_discord import FakeDiscord

G = r"\d+"
SNAPSHOT = Path(__file__).with_name("slash_commands.json")


async def command_tree(interactions: Any) -> StagepassTree:
    """The bot's command tree as its start-up builds it, bound to `interactions`."""
    client = StagepassClient(interactions, cast(Any, None))
    await client.setup_hook()
    return client.tree


async def test_slash_commands_match_the_snapshot() -> None:
    """Names, descriptions, options, choices and ranges of every command, as `tree.sync`
    sends them. A deliberate change rewrites slash_commands.json (json.dumps, indent=2)."""
    tree = await command_tree(None)
    registered = [command.to_dict(tree) for command in tree.get_commands()]
    assert registered == json.loads(SNAPSHOT.read_text())


class RecordingAdapter:
    """Stands in for `Interactions.command`: keeps what each callback would run."""

    def __init__(self) -> None:
        self.ran: list[t.Command] = []
        self.core = SimpleNamespace(settings=SimpleNamespace(max_title_length=100))

    async def command(self, interaction: Any, build: Any) -> None:
        actor = Actor(Platform.DISCORD, "1", "2", "mo", is_moderator=True)
        self.ran.append(await build(actor))


@pytest.mark.parametrize(
    ("verb", "options", "expected"),
    [
        ("request", {}, t.StageCommand("request")),
        ("hand", {"hand": "down", "space": 3}, t.StageCommand("hand", 3, None, False)),
        ("hand", {}, t.StageCommand("hand")),
        ("promote", {"space": 3}, t.StageCommand("promote", 3, UserRef("7", "bob"))),
        ("demote", {}, t.StageCommand("demote", None, UserRef("7", "bob"))),
        ("mute", {}, t.StageCommand("mute", None, UserRef("7", "bob"))),
        ("unmute", {"space": 3}, t.StageCommand("unmute", 3, UserRef("7", "bob"))),
        ("remove", {}, t.StageCommand("remove", None, UserRef("7", "bob"))),
        ("allow", {}, t.StageCommand("allow", None, UserRef("7", "bob"))),
        ("queue", {"space": 3}, t.StageCommand("queue", 3)),
    ],
)
async def test_each_stage_verb_runs_its_stage_command(
    verb: str, options: dict[str, Any], expected: t.StageCommand
) -> None:
    adapter = RecordingAdapter()
    group = (await command_tree(adapter)).get_command("stage")
    assert isinstance(group, discord.app_commands.Group)
    command = group.get_command(verb)
    assert isinstance(command, discord.app_commands.Command)
    if any(p.name == "user" for p in command.parameters):
        options = {"user": SimpleNamespace(id=7, display_name="bob"), **options}
    # as discord.py invokes it: the group first when the callback is one of its methods
    bound = () if command.binding is None else (command.binding,)
    await command.callback(*bound, cast(Any, None), **options)
    assert adapter.ran == [expected]


async def test_times_are_read_in_the_members_zone_and_edits_reach_the_event(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    guild, alice = server.guild, server.host
    zones = await fake.autocomplete(guild, alice, "tz set", "zone", "berl")
    assert {"name": "Europe/Berlin", "value": "Europe/Berlin"} in zones
    reply = await bot.answer(await fake.slash(guild, alice, "tz set", zone="Europe/Berlin"))
    assert "Your time zone is now Europe/Berlin" in reply.text()

    await bot.answer(
        await fake.slash(
            guild,
            alice,
            "space create",
            title="Spring talk",
            starts="2030-05-01 18:00",
            tickets=20,
            duration="1h30m",
            limit=2,
            description="All about spring.",
        )
    )
    space = await core.spaces.get(1)
    assert space.starts_at == datetime(2030, 5, 1, 16, 0, tzinfo=UTC)  # 18:00 CEST
    assert (space.duration_minutes, space.per_buyer_limit) == (90, 2)
    [announcement] = fake.channel_messages(server.announce)
    assert f"<t:{int(space.starts_at.timestamp())}:F>" in announcement.text()
    assert "All about spring." in announcement.text()

    reply = await bot.answer(
        await fake.slash(
            guild,
            alice,
            "space edit",
            space=1,
            title="Spring talk, moved",
            starts="2030-05-02 20:00",
        )
    )
    assert reply.ephemeral and "Updated:" in reply.text()
    assert "Title: Spring talk → Spring talk, moved" in reply.text()
    [edit] = fake.calls_to("PATCH", f"/guilds/{G}/scheduled-events/{G}")
    assert edit.body["name"] == "Spring talk, moved"
    assert edit.body["scheduled_start_time"].startswith("2030-05-02T18:00:00")
    assert announcement.embeds[0]["title"] == "Spring talk, moved"

    nothing = await bot.answer(await fake.slash(guild, alice, "space edit", space=1))
    assert nothing.ephemeral and "Say what to change" in nothing.text()


async def test_space_autocomplete_offers_the_members_own_spaces(
    bot: Bot, fake: FakeDiscord, server: Server
) -> None:
    guild = server.guild
    await bot.host_creates(server, title="Alice's show", starts="tomorrow 18:00", tickets=5)
    assert await fake.autocomplete(guild, server.dave, "space edit", "space", "") == []
    [mine] = await fake.autocomplete(guild, server.host, "space edit", "space", "show")
    assert mine["value"] == 1 and mine["name"].startswith("#1 Alice's show · ")
    assert len(await fake.autocomplete(guild, server.mo, "space cancel", "space", "")) == 1
    assert len(await fake.autocomplete(guild, server.dave, "ticket buy", "space", "1")) == 1
    assert await fake.autocomplete(guild, server.dave, "stage promote", "space", "") == []


async def test_help_and_cohosts(bot: Bot, fake: FakeDiscord, server: Server) -> None:
    guild = server.guild
    help_ = await bot.answer(await fake.slash(guild, server.bob, "help", command="space create"))
    assert help_.ephemeral and '/space create title:"…"' in help_.text()

    await bot.host_creates(server, title="Duo", starts="tomorrow 18:00", tickets=5)
    reply = await bot.answer(
        await fake.slash(
            guild, server.host, "space cohost", action="add", space=1, user=server.carol
        )
    )
    assert "carol is now a co-host of Space #1" in reply.text()
    [role] = [r for r in guild.roles.values() if r.name == "🎟 #1 Duo"]
    assert role.id in server.carol.roles
    await bot.answer(
        await fake.slash(
            guild, server.host, "space cohost", action="remove", space=1, user=server.carol
        )
    )
    assert role.id not in server.carol.roles


async def test_mute_and_remove_reach_the_discord_stage(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    guild, bob = server.guild, server.bob
    await bot.host_creates(server, title="Panel", starts="tomorrow 18:00", tickets=5)
    [announcement] = fake.channel_messages(server.announce)
    await bot.answer(await fake.click(guild, bob, announcement, "Get ticket"))
    await bot.answer(await fake.slash(guild, server.host, "space start", space=1, confirm=True))
    await fake.join_voice(guild, bob, server.stage)
    await bot.settle()
    await bot.answer(await fake.slash(guild, server.mo, "stage promote", user=bob))

    await bot.answer(await fake.slash(guild, server.mo, "stage mute", user=bob))
    [mute] = fake.calls_to("PATCH", f"/guilds/{G}/members/{bob.user.id}")
    assert mute.body == {"mute": True} and bob.mute

    queue = await bot.answer(await fake.slash(guild, server.mo, "stage queue"))
    assert "Speakers: bob (muted)" in queue.text()

    await bot.answer(await fake.slash(guild, server.mo, "stage remove", user=bob))
    remove = fake.calls_to("PATCH", f"/guilds/{G}/members/{bob.user.id}")[-1]
    assert remove.body == {"channel_id": None}
    assert guild.voice[bob.user.id].channel_id is None


async def bob_gets_a_free_ticket(bot: Bot, fake: FakeDiscord, server: Server, title: str) -> None:
    """The host announces a free Space; bob clicks Get ticket (his ticket DM follows)."""
    await bot.host_creates(server, title=title, starts="tomorrow 18:00", tickets=5)
    [announcement] = fake.channel_messages(server.announce)
    answer = await bot.answer(
        await fake.click(server.guild, server.bob, announcement, "Get ticket")
    )
    assert "You're in!" in answer.text()


async def test_closed_dms_are_logged_not_fatal(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core, clock: ManualClock
) -> None:
    fake.dms_closed.add(server.bob.user.id)
    await bob_gets_a_free_ticket(bot, fake, server, "Quiet")
    assert fake.dms(server.bob) == []
    assert fake.calls_to("POST", rf"/channels/{G}/messages")[-1].status == 403
    [row] = await outbox_rows(core)
    assert row.status == OutboxStatus.REFUSED and row.last_error is not None
    assert row.last_error.startswith("403 50007")

    # refused for good: the sweep does not knock again
    posts = len(fake.calls_to("POST", rf"/channels/{G}/messages"))
    clock.advance(timedelta(hours=3))
    assert await core.outbox.sweep() == 0
    await bot.settle()
    assert len(fake.calls_to("POST", rf"/channels/{G}/messages")) == posts


async def test_a_dm_discord_fails_to_take_is_resent_by_the_sweep(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core, clock: ManualClock
) -> None:
    fake.dms_unavailable.add(server.bob.user.id)
    await bob_gets_a_free_ticket(bot, fake, server, "Flaky")
    await bot.settle()
    assert fake.dms(server.bob) == []
    assert fake.calls_to("POST", rf"/channels/{G}/messages")[-1].status == 503
    [row] = await outbox_rows(core)
    assert row.status == OutboxStatus.PENDING and row.last_error == "503 0: Service Unavailable"

    fake.dms_unavailable.clear()
    clock.advance(core.outbox.delay(1))
    assert await core.outbox.sweep() == 1
    await bot.until(lambda: fake.dms(server.bob), "the resent DM")
    [dm] = fake.dms(server.bob)
    assert "Your ticket for Flaky" in dm.text()

    async def acknowledged() -> bool:  # Discord took it a moment before the row says so
        [row] = await outbox_rows(core)
        return row.status == OutboxStatus.SENT

    await bot.eventually(acknowledged, "the outbox row marked sent")

    clock.advance(timedelta(hours=3))  # delivered: never sent twice
    assert await core.outbox.sweep() == 0
    await bot.settle()
    assert len(fake.dms(server.bob)) == 1


async def outbox_rows(core: Core) -> list[OutboxMessage]:
    async with core.db.session() as session:
        return list((await session.exec(select(OutboxMessage))).all())


def _title_option(synced: dict[str, Any], group: str, verb: str) -> dict[str, Any]:
    [sub] = [o for o in synced[group]["options"] if o["name"] == verb]
    [title] = [o for o in sub["options"] if o["name"] == "title"]
    assert isinstance(title, dict)
    return title


async def test_the_title_limit_the_form_offers_is_the_cores(
    core: Core, dispatcher: Dispatcher, settings: Settings, fake: FakeDiscord, server: Server
) -> None:
    settings.max_title_length = 40  # STAGEPASS_MAX_TITLE_LENGTH
    async with running(core, dispatcher, config_for(server, settings), fake) as bot:
        synced = fake.commands[server.guild.id]
        for group, verb in (("space", "create"), ("space", "edit"), ("slot", "add")):
            title = _title_option(synced, group, verb)
            assert (title["min_length"], title["max_length"]) == (1, 40), (group, verb)
        # Discord enforces the range; past it (an old client, a raw call) the core does
        reply = await bot.host_creates(server, title="x" * 41, starts="tomorrow 18:00", tickets=5)
        assert reply.ephemeral
        assert reply.text() == "⚠️ The title is 41 characters long; the limit is 40."


async def test_times_in_replies_and_dms_are_discord_timestamps(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    """Discord shows a `<t:…>` in each reader's own zone; the core wrote it in the reader's
    zone (/tz set), and no zone name is left behind. Autocomplete is plain text: UTC."""
    guild, alice, bob = server.guild, server.host, server.bob
    await bot.answer(await fake.slash(guild, alice, "tz set", zone="Europe/Berlin"))
    await bot.answer(await fake.slash(guild, bob, "tz set", zone="America/New_York"))
    await bot.answer(
        await fake.slash(
            guild, alice, "space create", title="Dawn", starts="2030-05-03 18:00", tickets=5
        )
    )
    space = await core.spaces.get(1)
    assert space.starts_at == datetime(2030, 5, 3, 16, 0, tzinfo=UTC)
    unix = int(space.starts_at.timestamp())

    for member in (alice, bob):  # one Space, one timestamp, whoever reads it
        listing = await bot.answer(await fake.slash(guild, member, "space list"))
        assert listing.ephemeral and f"<t:{unix}:F>" in listing.text()
        assert "CEST" not in listing.text() and "EDT" not in listing.text()

    [announcement] = fake.channel_messages(server.announce)
    await bot.answer(await fake.click(guild, bob, announcement, "Get ticket"))
    [ticket] = fake.dms(bob)
    assert f"starts <t:{unix}:F>." in ticket.text() and "EDT" not in ticket.text()

    [choice] = await fake.autocomplete(guild, bob, "ticket buy", "space", "dawn")
    assert choice == {"name": "#1 Dawn · Fri 3 May 2030, 16:00 UTC", "value": 1}
