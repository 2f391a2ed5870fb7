"""Two Spaces announced on one Stage: a ticket opens its own Space only.

The real adapter (unmodified discord.py) against the fake Discord: the overwrites it sets
are the ones the fake keeps and computes Connect from (`Guild.channel_permissions`), and
members join and leave the Stage through the gateway's VOICE_STATE_UPDATE payloads.
"""

from __future__ import annotations

import asyncio

import pytest

from adapters.discord.models import DiscordStageLock
from bot.actors import Actor
from bot.clock import ManualClock
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.db import Database
from bot.errors import Conflict
from bot.models import Platform, SpaceStatus
from bot.notices import EventMessenger
from bot.settings import Settings
from tests.discord.conftest import Bot, Server, config_for, running
from tests.discord.fake_discord import Channel, FakeDiscord, Member, Message, Role
from tests.discord.fake_discord import permissions as P


async def announce(bot: Bot, server: Server, title: str, starts: str) -> Message:
    reply = await bot.answer(
        await bot.fake.slash(
            server.guild, server.host, "space create", title=title, starts=starts, tickets=5
        )
    )
    assert "is announced" in reply.text(), reply.text()
    return bot.fake.channel_messages(server.announce)[-1]


def ticket_role(server: Server, space_id: int) -> Role | None:
    found = [r for r in server.guild.roles.values() if r.name.startswith(f"🎟 #{space_id} ")]
    return found[0] if found else None


def may_connect(server: Server, member: Member, channel: Channel) -> bool:
    return bool(server.guild.channel_permissions(member.user.id, channel) & P.CONNECT)


def told(fake: FakeDiscord, member: Member) -> str:
    """The DM telling `member` why they were disconnected ("" until it arrives)."""
    found = [m.text() for m in fake.dms(member) if "disconnected" in m.text()]
    assert len(found) <= 1, found
    return found[0] if found else ""


def in_voice(server: Server, member: Member) -> int | None:
    state = server.guild.voice.get(member.user.id)
    return state.channel_id if state is not None else None


async def test_a_ticket_for_another_space_does_not_open_the_live_stage(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    guild, stage = server.guild, server.stage
    bob, carol, dave, mo, alice = server.bob, server.carol, server.dave, server.mo, server.host
    early = await announce(bot, server, "Early show", "tomorrow 18:00")
    late = await announce(bot, server, "Late show", "tomorrow 21:00")

    # announcing made no roles (a server holds 250) and left the Stage open
    assert ticket_role(server, 1) is None and ticket_role(server, 2) is None
    assert stage.overwrites == {}
    assert may_connect(server, dave, stage)

    # carol holds a ticket for the early show, bob one for the late show
    await bot.answer(await fake.click(guild, carol, early, "Get ticket"))
    await bot.answer(await fake.click(guild, bob, late, "Get ticket"))
    early_role, late_role = ticket_role(server, 1), ticket_role(server, 2)
    assert early_role is not None and late_role is not None  # made by the first sales
    assert early_role.id in carol.roles and late_role.id in bob.roles
    assert stage.overwrites == {}  # still nothing live

    # dave waits on the open Stage before anything starts
    await fake.join_voice(guild, dave, stage)
    await bot.settle()
    assert in_voice(server, dave) == stage.id

    # the early show goes live: only its listeners may connect now
    started = await bot.answer(await fake.slash(guild, alice, "space start", space=1, confirm=True))
    assert "is live" in started.text()
    assert stage.overwrites[guild.id].deny & P.CONNECT
    assert stage.overwrites[early_role.id].allow & P.CONNECT
    assert late_role.id not in stage.overwrites
    assert may_connect(server, carol, stage) and may_connect(server, alice, stage)
    assert may_connect(server, mo, stage)  # a moderator by permissions, no role configured
    assert not may_connect(server, bob, stage)  # his ticket is for the late show
    # dave, already there without a ticket, is moved out and told why
    await bot.until(lambda: in_voice(server, dave) is None, "dave moved out of the Stage")
    await bot.until(lambda: told(fake, dave), "dave's DM")
    assert "/ticket buy 1" in told(fake, dave)

    # the late show cannot go live on the same Stage meanwhile
    refused = await bot.answer(await fake.slash(guild, alice, "space start", space=2, confirm=True))
    assert refused.ephemeral
    assert refused.text() == (
        f"⚠️ “Early show” (Space #1) is live on <#{stage.id}> right now, and a Stage holds "
        "one Space at a time. Start Space #2 when #1 has ended (/space end 1)."
    )
    assert (await core.spaces.get(2)).status == SpaceStatus.SCHEDULED

    # bob joins anyway (a stale client, a role allowed elsewhere): refused at the Stage
    await fake.join_voice(guild, bob, stage)
    await bot.until(lambda: in_voice(server, bob) is None, "bob moved out of the Stage")
    await bot.until(lambda: told(fake, bob), "bob's DM")
    assert told(fake, bob) == (
        f"You were disconnected from <#{stage.id}>: “Early show” (Space #1) is live on this "
        "stage, and listening needs a ticket for it. Get one with /ticket buy 1, then join "
        "again."
    )
    # carol, the host and the moderator stay
    for member in (carol, alice, mo):
        await fake.join_voice(guild, member, stage)
    await bot.settle()
    assert [in_voice(server, m) for m in (carol, alice, mo)] == [stage.id] * 3

    # the end: the Stage opens again as it was, and the late show may go live
    await bot.answer(await fake.slash(guild, alice, "space end", space=1))
    assert early_role.id not in guild.roles
    assert stage.overwrites.get(guild.id) is None
    assert may_connect(server, dave, stage)
    started = await bot.answer(await fake.slash(guild, alice, "space start", space=2, confirm=True))
    assert "is live" in started.text()
    assert may_connect(server, bob, stage) and not may_connect(server, carol, stage)
    await fake.join_voice(guild, bob, stage)
    await bot.settle()
    assert in_voice(server, bob) == stage.id
    async with core.db.session() as session:
        lock = await session.get(DiscordStageLock, str(stage.id))
    assert lock is not None and lock.space_id == 2
    assert fake.unknown == []


async def test_with_ticket_only_stage_off_the_stage_stays_open_but_holds_one_space(
    core: Core, dispatcher: Dispatcher, settings: Settings, fake: FakeDiscord, server: Server
) -> None:
    config = config_for(server, settings, ticket_only_stage=False)
    guild, stage, alice, dave = server.guild, server.stage, server.host, server.dave
    async with running(core, dispatcher, config, fake) as bot:
        await announce(bot, server, "Open house", "tomorrow 18:00")
        await announce(bot, server, "Second", "tomorrow 21:00")
        await fake.join_voice(guild, dave, stage)
        await bot.answer(await fake.slash(guild, alice, "space start", space=1, confirm=True))
        await fake.join_voice(guild, server.bob, stage)
        await bot.settle()
        assert stage.overwrites == {}
        assert [in_voice(server, m) for m in (dave, server.bob)] == [stage.id] * 2
        refused = await bot.answer(
            await fake.slash(guild, alice, "space start", space=2, confirm=True)
        )
        assert "a Stage holds one Space at a time" in refused.text()


@pytest.mark.postgres
async def test_two_starts_racing_for_one_stage_on_postgresql(
    settings: Settings, pg_db: Database, clock: ManualClock, fake: FakeDiscord, server: Server
) -> None:
    """Two hosts press start at once: one Space goes live, the other is refused with the
    message (no error from the lock's primary key), whichever wins."""
    core = Core.build(settings, db=pg_db, clock=clock)
    EventMessenger(core)
    try:
        async with running(core, Dispatcher(core), config_for(server, settings), fake) as bot:
            for title, starts in (("Left", "tomorrow 18:00"), ("Right", "tomorrow 21:00")):
                await announce(bot, server, title, starts)
            host = Actor(Platform.DISCORD, str(server.guild.id), str(server.host.user.id), "alice")
            results = await asyncio.gather(
                core.spaces.start(host, 1, confirm=True),
                core.spaces.start(host, 2, confirm=True),
                return_exceptions=True,
            )
            refused = [r for r in results if isinstance(r, Exception)]
            assert len(refused) == 1 and isinstance(refused[0], Conflict), results
            assert "a Stage holds one Space at a time" in refused[0].message
            statuses = {(await core.spaces.get(i)).status for i in (1, 2)}
            assert statuses == {SpaceStatus.LIVE, SpaceStatus.SCHEDULED}
            await bot.settle()
    finally:
        await core.close()


async def test_a_listener_who_loses_the_ticket_or_is_removed_leaves_the_stage(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    guild, stage, alice, bob, carol = (
        server.guild, server.stage, server.host, server.bob, server.carol,
    )  # fmt: skip
    show = await announce(bot, server, "Talk", "tomorrow 18:00")
    for member in (bob, carol):
        await bot.answer(await fake.click(guild, member, show, "Get ticket"))
    await bot.answer(await fake.slash(guild, alice, "space start", space=1, confirm=True))
    for member in (bob, carol):
        await fake.join_voice(guild, member, stage)
    await bot.settle()
    assert [in_voice(server, m) for m in (bob, carol)] == [stage.id] * 2

    # the host takes bob's (free) ticket back: losing Connect moves no one, so the bot does
    [ticket] = await core.tickets.tickets_of(await _identity_id(core, server, bob), 1)
    await core.tickets.refund(ticket, reason="Refunded by the host.")
    await bot.until(lambda: in_voice(server, bob) is None, "bob moved out of the Stage")
    await bot.until(lambda: told(fake, bob), "bob's DM")
    assert "listening needs a ticket for it" in told(fake, bob)

    # a moderator removes carol; coming back (her ticket is still valid) is refused
    await bot.answer(await fake.slash(guild, server.mo, "stage remove", user=carol))
    await bot.until(lambda: in_voice(server, carol) is None, "carol removed")
    await fake.join_voice(guild, carol, stage)
    await bot.until(lambda: in_voice(server, carol) is None, "carol moved out again")
    await bot.until(lambda: told(fake, carol), "carol's DM")
    assert told(fake, carol) == (
        f"You were disconnected from <#{stage.id}>: You were removed from “Talk” (Space #1); "
        "a moderator of the Space can let you back in with /stage allow."
    )


async def _identity_id(core: Core, server: Server, member: Member) -> int:
    identity = await core.identities.by_key(f"discord:{server.guild.id}:{member.user.id}")
    assert identity is not None and identity.id is not None
    return identity.id
