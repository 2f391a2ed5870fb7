"""Seats held for unpaid buyers, as Discord shows them: held, not sold (issue 12 item 6)."""

from __future__ import annotations

from bot.core import Core
from tests.discord.conftest import Bot, Server
from tests.discord.fake_discord import FakeDiscord
from tests.fakes.payments import StubPayments


async def test_a_held_last_seat_shows_as_held_and_comes_back_when_released(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    payments = StubPayments()
    core.use_payments(payments)
    guild, bob = server.guild, server.bob
    await bot.host_creates(server, title="Tiny", starts="tomorrow 18:00", tickets=1, price="5")
    [announcement] = fake.channel_messages(server.announce)
    answer = await bot.answer(await fake.click(guild, bob, announcement, "Buy ticket ($5.00)"))
    assert "held for you until" in answer.text()
    await bot.settle()

    assert "Tickets left: 0 of 1 (1 held, awaiting payment)" in announcement.text()
    button = announcement.button("All held, try later")  # not "Sold out": nobody paid yet
    assert button["disabled"] is True

    await core.tickets.release(payments.holds[0], expired=True)
    await bot.settle()
    assert "Tickets left: 1 of 1" in announcement.text()
    assert not announcement.button("Buy ticket ($5.00)").get("disabled")
