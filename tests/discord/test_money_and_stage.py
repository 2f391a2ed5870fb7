"""Paid tickets and tips go through the core's payment gateway; Discord's own Stage UI and
"interested" marks feed Stagepass."""

from __future__ import annotations

from bot.actors import Actor
from bot.commands import types as t
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.replies import Reply
from bot.settings import Settings
from tests.discord.conftest import Bot, Server, config_for, running
from tests.discord.fake_discord import FakeDiscord
from tests.fakes.payments import StubPayments

G = r"\d+"


async def test_paid_spaces_answer_not_configured_without_billing(
    bot: Bot, fake: FakeDiscord, server: Server
) -> None:
    reply = await bot.host_creates(
        server, title="Paid", starts="tomorrow 18:00", tickets=5, price="5"
    )
    assert reply.ephemeral
    assert reply.text() == (
        "⚠️ Paid Spaces need billing, which is not configured on this Stagepass yet."
    )
    assert fake.channel_messages(server.announce) == []


async def test_buy_on_a_paid_space_gives_the_checkout_link_and_payment_gives_the_ticket(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    payments = StubPayments()
    core.use_payments(payments)
    guild, bob = server.guild, server.bob
    await bot.host_creates(
        server, title="Premium", starts="tomorrow 18:00", tickets=5, price="4.99", currency="eur"
    )
    [announcement] = fake.channel_messages(server.announce)
    assert "Price: €4.99" in announcement.text()
    answer = await bot.answer(await fake.click(guild, bob, announcement, "Buy ticket (€4.99)"))
    assert answer.ephemeral and "held for you until" in answer.text()
    [[pay]] = [row["components"] for row in answer.components]
    assert (pay["label"], pay["url"]) == (
        "Pay now",
        f"https://checkout.test/pay/{payments.holds[0]}",
    )
    # the hold takes a seat, shown as held (not sold) until paid
    assert "Tickets left: 4 of 5 (1 held, awaiting payment)" in announcement.text()
    assert fake.dms(bob) == []

    # billing's webhook confirms the payment: the ticket arrives by DM, with the role
    await core.tickets.confirm(payments.holds[0], fee_minor=50)
    await bot.settle()
    [dm] = fake.dms(bob)
    assert "Ticket" in dm.text() and "paid €4.99" in dm.text()
    [role] = [r for r in guild.roles.values() if r.name == "🎟 #1 Premium"]
    assert role.id in bob.roles

    # cancelling refunds through the gateway and takes the role away
    await bot.answer(await fake.slash(guild, server.host, "space cancel", space=1))
    assert len(payments.refunded) == 1
    assert role.id not in bob.roles
    assert "was refunded" in fake.dms(bob)[-1].text()


async def test_tip_button_opens_a_form_and_tips_the_host_through_the_core(
    bot: Bot, fake: FakeDiscord, server: Server, dispatcher: Dispatcher
) -> None:
    guild = server.guild
    await bot.host_creates(server, title="Tips", starts="tomorrow 18:00", tickets=5)
    [announcement] = fake.channel_messages(server.announce)
    opened = await fake.click(guild, server.bob, announcement, "Tip")
    await bot.until(lambda: opened.modal is not None, "the tip form")
    modal = opened.modal
    assert modal is not None and modal["custom_id"] == "sp-tip-form:1"

    sent = await fake.submit(guild, server.bob, modal, {"amount": "5", "message": "great show"})
    answer = await bot.answer(sent)
    assert answer.ephemeral
    assert answer.text() == "⚠️ Tips need billing, which is not configured yet."

    # once billing registers its handler, the same typed command reaches it
    seen: list[t.Tip] = []

    async def tip(actor: Actor, command: t.Tip) -> Reply:
        seen.append(command)
        return Reply("Thanks! Pay your tip here.")

    dispatcher.register(t.Tip, tip)
    opened = await fake.click(guild, server.bob, announcement, "Tip")
    await bot.until(lambda: opened.modal is not None, "the tip form")
    assert opened.modal is not None
    answer = await bot.answer(await fake.submit(guild, server.bob, opened.modal, {"amount": "5"}))
    assert "Thanks!" in answer.text()
    [command] = seen
    # the Space's host (None), wherever they host from: billing looks them up by the Space
    assert (command.user, command.amount, command.currency, command.space_id) == (
        None,
        "5",
        "usd",
        1,
    )


async def test_promotions_in_discords_stage_ui_follow_the_speaker_cap(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    core.settings.max_speakers = 1
    guild, bob, carol = server.guild, server.bob, server.carol
    await bot.host_creates(server, title="Open mic", starts="tomorrow 18:00", tickets=5)
    [announcement] = fake.channel_messages(server.announce)
    for member in (bob, carol):
        await bot.answer(await fake.click(guild, member, announcement, "Get ticket"))
    await bot.answer(await fake.slash(guild, server.host, "space start", space=1, confirm=True))
    for member in (bob, carol):
        await fake.join_voice(guild, member, server.stage)
    await bot.settle()

    # a moderator invites bob to speak in Discord's own UI: Stagepass follows
    await fake.set_suppress(guild, bob, False)
    await bot.settle()
    assert [s.identity.display_name for s in (await core.stage.state(1)).speakers] == ["bob"]

    # carol too, but the stage is full: Stagepass refuses and Discord suppresses her again
    await fake.set_suppress(guild, carol, False)
    await bot.until(lambda: guild.voice[carol.user.id].suppress, "carol suppressed again")
    [back] = fake.calls_to("PATCH", f"/guilds/{G}/voice-states/{carol.user.id}")
    assert back.body["suppress"] is True
    assert [s.identity.display_name for s in (await core.stage.state(1)).speakers] == ["bob"]

    # moving bob back to the audience in Discord demotes him in Stagepass
    await fake.set_suppress(guild, bob, True)
    await bot.settle()
    assert (await core.stage.state(1)).speakers == []
    assert not fake.calls_to("PATCH", f"/guilds/{G}/voice-states/{bob.user.id}")


async def test_interested_members_get_the_reminder(
    core: Core, dispatcher: Dispatcher, settings: Settings, fake: FakeDiscord, server: Server
) -> None:
    config = config_for(server, settings, retry_seconds=0.2)
    async with running(core, dispatcher, config, fake) as bot:
        await bot.host_creates(server, title="Later", starts="tomorrow 18:00", tickets=5)
        [event] = server.guild.events.values()
        await fake.mark_interested(server.guild, event.id, server.carol)

        key = f"discord:{server.guild.id}:{server.carol.user.id}"

        async def carol_subscribed() -> bool:
            carol = await core.identities.by_key(key)
            return carol is not None and carol.id in await core.reminders.subscribers(1)

        # the upkeep loop (every 0.2 s here) reads who is interested and subscribes them
        await bot.eventually(carol_subscribed, "carol's reminder")
        assert fake.calls_to("GET", f"/guilds/{G}/scheduled-events/{event.id}/users")
