"""The core's trust rules through Discord's own payloads: a price edit keeps the Space's
currency, a removal from the Stage shows in /ticket show and is undone by /stage allow
(the stage sync maps the core's seat), and a live Space is cancelled only with confirm."""

from __future__ import annotations

from bot.core import Core
from bot.models import SpaceStatus
from bot.services.stage import SeatRole
from tests.discord.conftest import Bot, Server
from tests.discord.fake_discord import FakeDiscord
from tests.discord.test_cancel_and_rights import create
from tests.fakes.payments import StubPayments

G = r"\d+"


async def test_a_price_edit_keeps_the_currency_and_the_reply_shows_the_change(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    core.use_payments(StubPayments())
    guild = server.guild
    created = await bot.host_creates(
        server, title="Chanson", starts="tomorrow 18:00", tickets=5, price="3", currency="eur"
    )
    assert "is announced" in created.text()

    reply = await bot.answer(await fake.slash(guild, server.host, "space edit", space=1, price="4"))
    assert reply.ephemeral
    assert "Price: €3.00 → €4.00" in reply.text()
    space = await core.spaces.get(1)
    assert (space.price_minor, space.currency) == (400, "eur")
    await bot.settle()
    [announcement] = fake.channel_messages(server.announce)
    assert "€4.00" in announcement.text() and "$4.00" not in announcement.text()


async def test_a_removed_listener_shows_as_removed_until_stage_allow(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    guild, bob = server.guild, server.bob
    announcement = await create(bot, server, "Open mic")
    await bot.answer(await fake.click(guild, bob, announcement, "Get ticket"))
    await bot.answer(await fake.slash(guild, server.host, "space start", space=1, confirm=True))
    await fake.join_voice(guild, bob, server.stage)
    await bot.settle()

    removed = await bot.answer(await fake.slash(guild, server.host, "stage remove", user=bob))
    # the moderator's answer is theirs alone (issue 13.8): no public echo of a removal
    assert removed.ephemeral and "bob was removed from the Space." in removed.text()
    await bot.settle()
    assert guild.voice[bob.user.id].channel_id is None  # disconnected from the Stage

    shown = await bot.answer(await fake.slash(guild, bob, "ticket show"))
    assert "removed from the stage by a moderator" in shown.text()
    assert "Join #1" not in str(shown.components)
    client_guild = bot.adapter.client.get_guild(guild.id)
    assert client_guild is not None
    member = await client_guild.fetch_member(bob.user.id)
    seat = await bot.adapter.stage.seat(1, member)
    assert (seat.role, seat.may_speak) == (None, False)
    refused = await bot.answer(await fake.slash(guild, server.host, "stage promote", user=bob))
    assert refused.ephemeral and "/stage allow" in refused.text()

    allowed = await bot.answer(await fake.slash(guild, server.host, "stage allow", user=bob))
    assert allowed.ephemeral and allowed.text() == "bob may join the Space's stage again."
    await bot.settle()
    assert any("let you back into Open mic" in m.text() for m in fake.dms(bob))
    shown = await bot.answer(await fake.slash(guild, bob, "ticket show"))
    assert "removed" not in shown.text()
    bob_id = await core.identities.by_key(f"discord:{guild.id}:{bob.user.id}")
    assert bob_id is not None
    core_seat = await core.stage.seat(await core.spaces.get(1), bob_id)
    assert (core_seat.role, core_seat.may_listen, core_seat.removed) == (
        SeatRole.LISTENER,
        True,
        False,
    )


async def test_a_live_space_is_cancelled_only_with_confirm_and_the_stage_closes(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    guild = server.guild
    announcement = await create(bot, server, "Night owls")
    await bot.answer(await fake.click(guild, server.bob, announcement, "Get ticket"))
    await bot.answer(await fake.slash(guild, server.host, "space start", space=1, confirm=True))
    await bot.settle()
    assert server.stage.id in guild.stages

    refused = await bot.answer(
        await fake.slash(guild, server.host, "space cancel", space=1, reason="Storm")
    )
    assert refused.ephemeral
    assert refused.text() == (
        "⚠️ Space #1 is live, so it can't be cancelled; use /space end 1, or add "
        "confirm:yes to end it and refund every ticket."
    )
    assert (await core.spaces.get(1)).status == SpaceStatus.LIVE

    done = await bot.answer(
        await fake.slash(guild, server.host, "space cancel", space=1, reason="Storm", confirm=True)
    )
    assert "Space #1 is cancelled. It was live and has ended." in done.text()
    await bot.settle()
    assert (await core.spaces.get(1)).status == SpaceStatus.CANCELLED
    assert server.stage.id not in guild.stages  # the Stage instance is closed
    assert "Storm" in announcement.text()
    assert any("Storm" in m.text() for m in fake.dms(server.bob))
