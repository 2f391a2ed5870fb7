"""With DISCORD_TICKET_ONLY_STAGE off, Stagepass leaves the Stage as open as the server made
it. A paid Space's room is then bridged into it only while nobody without a ticket may
connect: the host and the moderators are told why it is not, and it starts as soon as the
channel is locked (and stops if the channel is opened again).

The real adapter against the fake Discord, whose overwrites are what discord.py resolves
permissions from; a recording stand-in for the bridges (the bridge is tested elsewhere).
"""

from __future__ import annotations

from typing import Any

from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.settings import Settings
from tests.discord.conftest import Bot, Server, config_for, running
from tests.discord.fake_discord import FakeDiscord
from tests.discord.fake_discord import permissions as P
from tests.discord.test_bridge_hook import RecordingBridges
from tests.fakes.payments import StubPayments


async def _start(bot: Bot, server: Server, *, price: str) -> RecordingBridges:
    """Announce Space #1 at `price` with its bridge on, and start it."""
    bridges = RecordingBridges()
    bot.adapter.stage.bridges = bridges  # type: ignore[assignment]  # a recording stand-in
    fake, guild, alice = bot.fake, server.guild, server.host
    created = await bot.answer(
        await fake.slash(
            guild,
            alice,
            "space create",
            title="Paid talk",
            starts="tomorrow 18:00",
            tickets=5,
            price=price,
        )
    )
    assert "is announced" in created.text(), created.text()
    await bot.answer(await fake.slash(guild, alice, "space edit", space=1, bridge="listen"))
    started = await bot.answer(await fake.slash(guild, alice, "space start", space=1, confirm=True))
    assert "is live" in started.text()
    await bot.settle()
    return bridges


def _started(bridges: RecordingBridges) -> list[tuple[str, int, Any]]:
    return [c for c in bridges.calls if c[0] == "start"]


def _told(fake: FakeDiscord, server: Server) -> list[str]:
    """What the host was told by DM about the bridge."""
    return [m.text() for m in fake.dms(server.host) if "voice bridge" in m.text()]


async def test_a_paid_space_is_not_bridged_into_a_channel_people_without_a_ticket_may_join(
    core: Core,
    dispatcher: Dispatcher,
    settings: Settings,
    fake: FakeDiscord,
    server: Server,
    logs: list[dict[str, Any]],
) -> None:
    guild, stage = server.guild, server.stage
    members = fake.add_role(guild, "Members")
    core.use_payments(StubPayments())
    config = config_for(server, settings, ticket_only_stage=False)
    async with running(core, dispatcher, config, fake) as bot:
        bridges = await _start(bot, server, price="5")

        # the Stage is open to @everyone: no bridge, and the host is told why and what to do
        assert _started(bridges) == []
        await bot.until(lambda: _told(fake, server), "the host's DM")
        assert _told(fake, server) == [
            f"The Discord voice bridge of “Paid talk” (#1) is not running: <#{stage.id}> is "
            "open to everyone in the server, so people without a ticket would hear this paid "
            "Space there, and DISCORD_TICKET_ONLY_STAGE is off.\nTo fix, either: deny "
            f"**Connect** on <#{stage.id}> to everyone but the ticket holders (the bridge "
            "starts as soon as the channel is locked), or set DISCORD_TICKET_ONLY_STAGE=true "
            "so Stagepass keeps the channel to ticket holders while a Space is live."
        ]
        [alert] = fake.channel_messages(server.alerts)
        assert "is not running" in alert.text() and "@everyone" not in alert.text()
        warnings = [e for e in logs if e["event"].startswith("voice bridge not started")]
        assert warnings and warnings[0]["log_level"] == "warning"
        assert {k: warnings[0][k] for k in ("guild", "channel", "space_id", "open_to_roles")} == {
            "guild": guild.id,
            "channel": stage.id,
            "space_id": 1,
            "open_to_roles": [guild.id],
        }

        # an admin makes the Stage private to a "Members" role: still open without a ticket
        await fake.set_overwrite(stage, guild.everyone, deny=P.CONNECT)
        await fake.set_overwrite(stage, members, allow=P.CONNECT | P.VIEW_CHANNEL)
        await bot.settle()
        assert _started(bridges) == []
        assert len(_told(fake, server)) == 1  # told once, not at every change
        warnings = [e for e in logs if e["event"].startswith("voice bridge not started")]
        assert warnings[-1]["open_to_roles"] == [members.id]

        # locked to all but staff: the bridge starts at once, with no new command
        await fake.set_overwrite(stage, members)
        await bot.until(lambda: _started(bridges) == [("start", 1, stage.id)], "the bridge")

        # opened again while live: the bridge stops, and the host hears of it again
        await fake.set_overwrite(stage, guild.everyone)
        await bot.until(lambda: bridges.last() == ("stop", 1, None), "the bridge to stop")
        await bot.until(lambda: len(_told(fake, server)) == 2, "the host told again")


async def test_a_free_space_is_bridged_into_an_open_channel(
    core: Core, dispatcher: Dispatcher, settings: Settings, fake: FakeDiscord, server: Server
) -> None:
    config = config_for(server, settings, ticket_only_stage=False)
    async with running(core, dispatcher, config, fake) as bot:
        bridges = await _start(bot, server, price="0")
        assert _started(bridges) == [("start", 1, server.stage.id)]
        assert _told(fake, server) == []
