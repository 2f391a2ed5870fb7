"""/space promo and /ticket buy code: through the fake Discord (real interaction payloads)."""

from __future__ import annotations

from sqlmodel import select

from bot.core import Core
from bot.models import Hold
from tests.discord.conftest import Bot, Server
from tests.discord.fake_discord import FakeDiscord
from tests.fakes.payments import FakeGateway


async def test_a_host_makes_a_code_and_a_buyer_enters_it(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    core.use_payments(FakeGateway())
    guild, alice, bob = server.guild, server.host, server.bob
    await bot.answer(
        await fake.slash(
            guild,
            alice,
            "space create",
            title="Paid talk",
            starts="2030-05-01 18:00",
            tickets=20,
            price="10",
        )
    )
    made = await bot.answer(
        await fake.slash(
            guild,
            alice,
            "space promo",
            space=1,
            code="early",
            percent=25,
            uses=10,
            until="2030-04-30 18:00",
        )
    )
    assert made.text().startswith("EARLY — 25% off — 10 of 10 uses left — until "), made.text()

    refused = await bot.answer(
        await fake.slash(guild, bob, "space promo", space=1, code="MINE", percent=90, uses=1)
    )
    assert "Only the host and co-hosts can manage promo codes." in refused.text()

    bought = await bot.answer(await fake.slash(guild, bob, "ticket buy", space=1, code="Early"))
    assert "held for you" in bought.text(), bought.text()
    async with core.db.session() as session:
        hold = (await session.exec(select(Hold))).one()
    assert hold.amount_minor == 750

    off = await bot.answer(
        await fake.slash(guild, alice, "space promo", space=1, code="EARLY", switch="off")
    )
    assert "EARLY is off for Space #1." in off.text()
    listed = await bot.answer(await fake.slash(guild, alice, "space promo", space=1))
    assert "EARLY — 25% off — 9 of 10 uses left" in listed.text() and " — off" in listed.text()
