"""Money news in the server: a public tip is thanked under the Space's announcement, a
private one is not; a disputed payment reaches the host and the moderators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.actors import Actor
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.events import PaymentDisputed, TipReceived
from bot.models import Platform
from bot.settings import Settings
from tests.discord.conftest import Bot, Server, config_for, running
from tests.discord.fake_discord import FakeDiscord, Member, Message


def key(server: Server, member: Member) -> str:
    return f"discord:{server.guild.id}:{member.user.id}"


async def tip(core: Core, server: Server, *, public: bool, space_id: int | None = 1) -> TipReceived:
    """What billing publishes once Stripe says bob's tip to alice was paid (bob ran
    `/tip`, so Stagepass knows him)."""
    bob = server.bob.user
    await core.identities.ensure(Actor(Platform.DISCORD, str(server.guild.id), str(bob.id), "bob"))
    return TipReceived(
        community_id=f"discord:{server.guild.id}",
        host_key=key(server, server.host),
        tipper_key=key(server, server.bob),
        amount_minor=500,
        currency="usd",
        message="great *show*",
        public=public,
        space_id=space_id,
    )


async def announce(bot: Bot, fake: FakeDiscord, server: Server, title: str) -> Message:
    await bot.host_creates(server, title=title, starts="tomorrow 18:00", tickets=5)
    return fake.channel_messages(server.announce)[-1]


def posts_to(fake: FakeDiscord, channel_id: int) -> list[Any]:
    return fake.calls_to("POST", f"/channels/{channel_id}/messages")


async def test_a_public_tip_is_thanked_in_reply_to_the_announcement(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    announcement = await announce(bot, fake, server, "Tip jar")
    core.bus.publish(await tip(core, server, public=True))
    await bot.until(lambda: len(fake.channel_messages(server.announce)) == 2, "the thanks")
    await bot.settle()

    thanks = fake.channel_messages(server.announce)[-1]
    bob, alice = server.bob.user.id, server.host.user.id
    assert thanks.content == (rf'Thank you <@{bob}> for tipping <@{alice}> $5.00: "great \*show\*"')
    sent = posts_to(fake, server.announce.id)[-1].body
    assert int(sent["message_reference"]["message_id"]) == announcement.id
    assert sent["allowed_mentions"]["parse"] == []  # names shown, nobody pinged
    # the host also hears it privately, from the core
    assert any("bob tipped you $5.00" in m.text() for m in fake.dms(server.host))


async def test_a_private_tip_is_only_a_dm(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    await announce(bot, fake, server, "Quiet tips")
    posted = len(posts_to(fake, server.announce.id))
    core.bus.publish(await tip(core, server, public=False))
    await bot.until(lambda: fake.dms(server.host), "the host's DM")
    await bot.settle()

    assert len(posts_to(fake, server.announce.id)) == posted
    assert [m.text() for m in fake.channel_messages(server.announce)][1:] == []
    [dm] = fake.dms(server.host)
    assert dm.text() == 'bob tipped you $5.00 for Quiet tips: "great *show*"'


async def test_a_tip_outside_a_space_is_thanked_in_the_announcement_channel(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    core.bus.publish(await tip(core, server, public=True, space_id=None))
    await bot.until(lambda: fake.channel_messages(server.announce), "the thanks")
    await bot.settle()
    [thanks] = fake.channel_messages(server.announce)
    assert thanks.content.startswith(f"Thank you <@{server.bob.user.id}> for tipping")
    assert "message_reference" not in posts_to(fake, server.announce.id)[-1].body


def dispute(server: Server, ticket_id: str) -> PaymentDisputed:
    return PaymentDisputed(
        space_id=1,
        community_id=f"discord:{server.guild.id}",
        holder_key=key(server, server.bob),
        ticket_ids=(ticket_id,),
        amount_minor=1500,
        currency="usd",
        reason="fraudulent",
    )


async def bobs_ticket(bot: Bot, fake: FakeDiscord, server: Server, core: Core) -> str:
    announcement = await announce(bot, fake, server, "Disputed")
    await bot.answer(await fake.click(server.guild, server.bob, announcement, "Get ticket"))
    bob = await core.identities.by_key(key(server, server.bob))
    assert bob is not None and bob.id is not None
    [ticket] = await core.tickets.tickets_of(bob.id)
    return ticket.id


async def test_a_dispute_reaches_the_host_and_every_moderator_role(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    ticket_id = await bobs_ticket(bot, fake, server, core)
    core.bus.publish(dispute(server, ticket_id))
    await bot.until(lambda: fake.channel_messages(server.alerts), "the moderators' alert")
    await bot.settle()

    [alert] = fake.channel_messages(server.alerts)
    assert alert.content == (
        f"<@&{server.mods.id}> Moderators: a payment for #1 Disputed was disputed with the "
        f"buyer's bank (fraudulent): $15.00 from <@{server.bob.user.id}>. "
        f"Ticket(s) {ticket_id} were revoked."
    )
    sent = posts_to(fake, server.alerts.id)[-1].body
    assert sent["allowed_mentions"] == {"parse": ["roles"]}  # the moderators are pinged
    [to_host] = [m for m in fake.dms(server.host) if "disputed" in m.text()]
    assert "A payment of $15.00 for Disputed (#1) was disputed" in to_host.text()
    assert fake.dms(fake.operator) == []  # the channel reached the moderators


async def test_without_an_alert_channel_the_owner_hears_of_a_dispute(
    core: Core,
    dispatcher: Dispatcher,
    settings: Settings,
    fake: FakeDiscord,
    server: Server,
    discord_errors: Callable[[], list[Any]],
) -> None:
    config = config_for(server, settings, alert_channels=())
    async with running(core, dispatcher, config, fake) as bot:
        ticket_id = await bobs_ticket(bot, fake, server, core)
        core.bus.publish(dispute(server, ticket_id))
        await bot.until(lambda: fake.dms(fake.operator), "the owner's DM")
        await bot.settle()
    [to_owner] = fake.dms(fake.operator)
    assert to_owner.text().startswith("Moderators: a payment for #1 Disputed was disputed")
    assert any("was disputed" in m.text() for m in fake.dms(server.host))
    assert fake.channel_messages(server.alerts) == []
    assert discord_errors() == [] and core.bus.failures == 0
