"""The Stage's periodic re-check (`StageSync.recheck`, every DISCORD recheck_seconds) and
a member's own join both ask whether they may stay; one refusal is one disconnection and
one DM, even when both ask at the same moment.

The real adapter (unmodified discord.py) against the fake Discord: the member joins
through the gateway's VOICE_STATE_UPDATE, and the re-check runs on its own timer.
"""

from __future__ import annotations

import asyncio

import discord
import pytest

from adapters.discord.stage_access import Venue
from bot.clock import ManualClock
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.models import Space
from bot.settings import Settings
from tests.discord.conftest import Server, config_for, refund_elsewhere, running
from tests.discord.fake_discord import FakeDiscord, Member


def told(fake: FakeDiscord, member: Member) -> list[str]:
    """Every DM telling `member` why they were disconnected."""
    return [m.text() for m in fake.dms(member) if "disconnected" in m.text()]


async def test_a_join_and_the_recheck_at_the_same_moment_disconnect_and_tell_once(
    core: Core,
    dispatcher: Dispatcher,
    settings: Settings,
    fake: FakeDiscord,
    server: Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = config_for(server, settings, recheck_seconds=0.05)
    async with running(core, dispatcher, config, fake) as bot:
        guild, stage, alice, dave = server.guild, server.stage, server.host, server.dave
        await bot.answer(
            await fake.slash(
                guild, alice, "space create", title="Talk", starts="tomorrow 18:00", tickets=5
            )
        )
        started = await bot.answer(
            await fake.slash(guild, alice, "space start", space=1, confirm=True)
        )
        assert "is live" in started.text()

        # the first two to ask about dave (his join, the re-check) go on together
        access = bot.adapter.access
        admit = access.admit
        askers: list[str] = []
        both = asyncio.Event()

        async def at_once(member: discord.Member, channel: Venue, space: Space) -> bool:
            task = asyncio.current_task()
            askers.append(task.get_name() if task is not None else "")
            if len(askers) == 2:
                both.set()
            if len(askers) <= 2:
                await both.wait()
            return await admit(member, channel, space)

        monkeypatch.setattr(access, "admit", at_once)
        await fake.join_voice(guild, dave, stage)  # no ticket for the live Space
        await bot.until(both.is_set, "dave's join and the re-check to ask at once")
        assert sorted(name.split(":")[1].split("#")[0] for name in askers[:2]) == [
            "stage-recheck",
            "voice",
        ]
        await bot.until(lambda: guild.voice[dave.user.id].channel_id is None, "dave moved out")
        await bot.until(lambda: told(fake, dave), "dave's DM")
        await bot.settle()
        assert told(fake, dave) == [
            f"You were disconnected from <#{stage.id}>: “Talk” (Space #1) is live on this "
            "stage, and listening needs a ticket for it. Get one with /ticket buy 1, then join "
            "again."
        ]
        moves = fake.calls_to("PATCH", f"/guilds/{guild.id}/members/{dave.user.id}")
        assert [call.body for call in moves] == [{"channel_id": None}]

        # joining again is a new refusal: moved out and told again
        await fake.join_voice(guild, dave, stage)
        await bot.until(lambda: len(told(fake, dave)) == 2, "dave's second DM")
        assert guild.voice[dave.user.id].channel_id is None


async def test_a_holder_refunded_by_another_process_loses_the_role_off_the_stage_too(
    core: Core,
    dispatcher: Dispatcher,
    settings: Settings,
    clock: ManualClock,
    fake: FakeDiscord,
    server: Server,
) -> None:
    """The Stripe webhook's refund on a web worker publishes no event this process sees:
    the re-check moves such a holder off the Stage, and one who is not on it lost nothing
    but the ticket, keeping the role until the Space ended. The upkeep round replays the
    closure from the database: the role goes, once, and a holder still entitled keeps it."""
    config = config_for(server, settings)
    async with running(core, dispatcher, config, fake) as bot:
        guild, alice, bob, carol = server.guild, server.host, server.bob, server.carol
        await bot.answer(
            await fake.slash(
                guild, alice, "space create", title="Talk", starts="tomorrow 18:00", tickets=5
            )
        )
        for member in (bob, carol):
            await bot.answer(await fake.slash(guild, member, "ticket buy", space=1))
        await bot.settle()
        [role] = [r for r in guild.roles.values() if r.name == "🎟 #1 Talk"]
        assert role.id in bob.roles and role.id in carol.roles

        await refund_elsewhere(settings, core, clock, f"discord:{guild.id}:{carol.user.id}")
        await bot.settle()
        assert role.id in carol.roles  # nothing reached this process yet

        removals = f"/guilds/{guild.id}/members/{carol.user.id}/roles/{role.id}"
        bot.adapter.roles_changed()  # as the upkeep timer would
        await bot.until(lambda: role.id not in carol.roles, "carol's role taken back")
        await bot.settle()
        await bot.adapter.notifier.replay_closures()  # the next round replays nothing
        await bot.settle()
        assert len(fake.calls_to("DELETE", removals)) == 1
        assert role.id in bob.roles
