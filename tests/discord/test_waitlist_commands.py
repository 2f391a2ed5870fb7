"""Waitlists and invites through the fake Discord (real interaction payloads): the Join the
waitlist button on a full announcement, the offer DM when a seat comes back, /ticket
waitlist, /space invite and /ticket redeem (issue 16 items 1 and 3)."""

from __future__ import annotations

from sqlmodel import select

from bot.core import Core
from bot.models import Hold
from tests.discord.conftest import Bot, Server
from tests.discord.fake_discord import FakeDiscord
from tests.fakes.payments import FakeGateway


async def invite_only_space(bot: Bot, server: Server) -> None:
    """The host's invite-only Space #1, "Inner", of 5 seats."""
    await bot.host_creates(
        server, title="Inner", starts="tomorrow 18:00", tickets=5, visibility="invite"
    )


async def invite(bot: Bot, server: Server, *, uses: int) -> str:
    """The token of a new invite to Space #1 good for `uses` tickets, as the reply gives it."""
    made = await bot.answer(
        await bot.fake.slash(server.guild, server.host, "space invite", space=1, uses=uses)
    )
    return made.text().split("/ticket redeem ")[-1].strip().strip("`")


async def test_the_waitlist_button_and_the_offer_dm(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    core.use_payments(FakeGateway())
    guild = server.guild
    await bot.host_creates(server, title="Tiny", starts="tomorrow 18:00", tickets=1, price="5")
    [announcement] = fake.channel_messages(server.announce)
    held = await bot.answer(await fake.click(guild, server.bob, announcement, "Buy ticket ($5.00)"))
    assert "held for you until" in held.text()
    await bot.settle()
    assert announcement.button("All held, try later")["disabled"] is True
    join = announcement.button("Join the waitlist")
    assert not join.get("disabled")

    joined = await bot.answer(
        await fake.click(guild, server.carol, announcement, "Join the waitlist")
    )
    assert "You are number 1 in line for Space #1." in joined.text(), joined.text()
    second = await bot.answer(await fake.slash(guild, server.dave, "ticket waitlist", space=1))
    assert "You are number 2 in line" in second.text(), second.text()
    info = await bot.answer(await fake.slash(guild, server.host, "space info", space=1))
    assert "Waitlist: 2 waiting" in info.text(), info.text()

    async with core.db.session() as session:
        hold = (await session.exec(select(Hold))).one()
    await core.tickets.release(hold.id, expired=True)
    await bot.settle()
    [offer] = [m for m in fake.dms(server.carol) if "came free" in m.text()]
    assert "A seat of Tiny (#1) came free and is held for you until" in offer.text()
    assert offer.button("Pay now")["url"].startswith("https://pay.test/")
    left = await bot.answer(
        await fake.slash(guild, server.dave, "ticket waitlist", space=1, leave=True)
    )
    assert "You left the waitlist of Space #1." in left.text()


async def test_an_invite_only_space_and_its_invite(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    guild = server.guild
    await invite_only_space(bot, server)
    refused = await bot.answer(await fake.slash(guild, server.bob, "ticket buy", space=1))
    assert "invite-only" in refused.text(), refused.text()
    token = await invite(bot, server, uses=1)
    got = await bot.answer(await fake.slash(guild, server.bob, "ticket redeem", token=token))
    assert "You're in!" in got.text(), got.text()
    used = await bot.answer(await fake.slash(guild, server.carol, "ticket redeem", token=token))
    assert "used up" in used.text()


async def test_a_host_lists_and_withdraws_an_invite_with_slash_options(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    """`/space invites` and `/space invite revoke:` reach the same core as the text grammar."""
    guild = server.guild
    await invite_only_space(bot, server)
    token = await invite(bot, server, uses=2)
    short = core.invites.read(token, core.clock.now()).ticket_id[:8]
    listed = await bot.answer(await fake.slash(guild, server.host, "space invites", space=1))
    assert f"{short} — 0 of 2 tickets taken" in listed.text(), listed.text()
    neither = await bot.answer(await fake.slash(guild, server.host, "space invite", space=1))
    assert "uses: is missing" in neither.text(), neither.text()
    withdrawn = await bot.answer(
        await fake.slash(guild, server.host, "space invite", space=1, revoke=short)
    )
    assert f"Invite {short} of Space #1 is withdrawn" in withdrawn.text(), withdrawn.text()
    refused = await bot.answer(await fake.slash(guild, server.bob, "ticket redeem", token=token))
    assert "This invite was withdrawn by the host." in refused.text(), refused.text()
