"""A paid Space across two Discord servers and a Slack workspace: linked, announced in all
three with the same buttons, paid tickets bought through the Stripe fake from every side
until sold out (the webhooks confirm them), one room, one capacity, and a tip from a
linked server that reaches the host's Connect account less the platform's cut."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import httpx
from sqlmodel import select

from bot.models import Ticket, TicketStatus
from tests.discord.conftest import Server
from tests.discord.fake_discord import Message
from tests.linked.conftest import Both
from tests.slack.conftest import BOB, CAROL, EVE, HOST
from tests.slack.test_commands import texts
from tests.slack.test_money import tip_form
from tests.slack.test_story import announcements

PAY = re.compile(r"/pay/(cs_test_\w+)")
ONBOARD = re.compile(r"(http://127\.0\.0\.1:\d+/connect/onboard/acct_\w+\?link=[\w-]+)")
TOKEN = re.compile(r"http://stagepass\.test/rooms/1#token=([\w.~%-]+)")


async def link(both: Both, guild_from: Server, enter: Any) -> str:
    """A code made by alice in `guild_from`, entered by `enter` (a coroutine factory)."""
    made = await both.discord.answer(
        await both.fake.slash(guild_from.guild, guild_from.host, "community link")
    )
    code = re.search(r"link code is ([A-Z0-9]+)", made.text())
    assert code is not None, made.text()
    answer: str = await enter(code[1])
    return answer


def pay_session(text: str) -> str:
    found = PAY.search(text)
    assert found is not None, text
    return found[1]


async def buy_in_discord(both: Both, server: Server, announcement: Message) -> str:
    """A Discord member of `server` clicks Buy ticket; the Checkout Session to pay."""
    answer = await both.discord.answer(
        await both.fake.click(server.guild, server.bob, announcement, "Buy ticket ($5.00)")
    )
    return pay_session(str(answer.components) + answer.text())


async def buy_in_slack(both: Both, user: str) -> str:
    """A Slack member clicks Get ticket; the reply's text (with any pay link in it)."""
    slack = both.slack
    response, name = await slack.click(user, "run:0", "/ticket buy 1")
    assert response.status_code == 200
    [reply] = await slack.fake.wait_for("response_url:" + name)
    await slack.settle()
    return str(reply.params)


async def pay(both: Both, session_id: str) -> None:
    assert both.stripe is not None
    await both.stripe.complete_session(session_id)
    await both.pump()


async def test_a_paid_space_sold_from_two_servers_and_a_workspace(paid: Both) -> None:
    both, core, fake, slack = paid, paid.core, paid.fake, paid.slack
    stripe, home, other = paid.stripe, paid.server, paid.second
    assert stripe is not None and other is not None
    core.settings.tip_fee_percent = Decimal("10")

    # the host connects Stripe in her own server
    connect = await both.discord.answer(await fake.slash(home.guild, home.host, "payouts connect"))
    onboarding = ONBOARD.search(str(connect.components) + connect.text())
    assert onboarding is not None, connect.text()
    async with httpx.AsyncClient() as browser:
        assert (await browser.post(onboarding[1])).status_code == 303
    await both.pump()
    [account] = stripe.accounts

    # linked with the Slack workspace and with a second Discord server
    async def in_slack(code: str) -> str:
        response, name = await slack.command(HOST, "/community", f"link {code}")
        return str((await slack.answer(response, name))["text"])

    async def in_second(code: str) -> str:
        entered = await fake.slash(other.guild, other.host, "community link", code=code)
        return (await both.discord.answer(entered)).text()

    assert "Linked with Stagepass HQ (discord)" in await link(both, home, in_slack)
    assert "Linked with Stagepass HQ (discord)" in await link(both, home, in_second)

    # one paid Space, announced in all three with the same buttons
    created = await both.discord.answer(
        await fake.slash(
            home.guild,
            home.host,
            "space create",
            title="Paid across",
            starts="tomorrow 18:00",
            tickets=4,
            price="5",
            also="all",
        )
    )
    assert "Space #1 is announced" in created.text(), created.text()
    await both.settle()
    [in_home] = fake.channel_messages(home.announce)
    [in_other] = fake.channel_messages(other.announce)
    for shown in (in_home, in_other):
        assert "Tickets left: 4 of 4" in shown.text()
        for label in ("Buy ticket ($5.00)", "Remind me", "Tip"):
            assert not shown.button(label).get("disabled"), label
    in_slack_first = str(announcements(slack, 1)[0])
    assert "Tip the host" in in_slack_first and "4 of 4" in in_slack_first

    # paid tickets from every side, each confirmed by its webhook
    await pay(both, await buy_in_discord(both, home, in_home))
    await pay(both, await buy_in_discord(both, other, in_other))
    for user in (BOB, CAROL):
        await pay(both, pay_session(await buy_in_slack(both, user)))
    space = await core.spaces.get(1)
    assert (space.sold, space.capacity) == (4, 4)  # one capacity counts all three
    async with core.db.session() as session:
        tickets = list(await session.exec(select(Ticket).where(Ticket.space_id == 1)))
    assert len(tickets) == 4 and all(t.status == TicketStatus.VALID for t in tickets)
    assert {t.price_minor for t in tickets} == {500}

    # sold out everywhere
    assert "sold out" in (await buy_in_slack(both, EVE)).lower()
    refused = await both.discord.answer(
        await fake.slash(other.guild, other.dave, "ticket buy", space=1)
    )
    assert "Space #1 is sold out." in refused.text()
    for shown in (in_home, in_other):
        assert "Tickets left: Sold out" in shown.text()
        assert not shown.button("Join the waitlist").get("disabled")
    assert "Sold out" in texts(announcements(slack, 1)[-1])
    assert "Join the waitlist" in str(announcements(slack, 1)[-1])

    # one room: join links from each side open the same room
    links = [
        TOKEN.search(str(fake.dms(home.bob)[0].components)),
        TOKEN.search(str(fake.dms(other.bob)[0].components)),
        TOKEN.search(str(slack.fake.dms_to(BOB)[0].params["blocks"])),
    ]
    holders = set()
    for match in links:
        assert match is not None
        admitted = await core.tickets.verify_token(match[1], space_id=1)
        assert admitted.ticket is not None and admitted.ticket.space_id == 1
        holders.add(admitted.ticket.holder_id)
    assert len(holders) == 3

    # a tip from the linked server's announcement goes to the host's account, less 10 %
    opened = await fake.click(other.guild, other.carol, in_other, "Tip")
    await both.discord.until(lambda: opened.modal is not None, "the tip form")
    assert opened.modal is not None
    sent = await fake.submit(other.guild, other.carol, opened.modal, {"amount": "5"})
    tipped = await both.discord.answer(sent)
    assert "Tip $5.00 to alice" in tipped.text(), tipped.text()
    checkout = stripe.requests_for("POST", "/v1/checkout/sessions")[-1]
    assert checkout.params["metadata"]["stagepass_kind"] == "tip"
    assert checkout.params["payment_intent_data"]["transfer_data"] == {"destination": account}
    assert checkout.params["payment_intent_data"]["application_fee_amount"] == "50"
    await pay(both, pay_session(str(tipped.components) + tipped.text()))
    fee = list(stripe.application_fees.values())[-1]  # the tip's, made last
    transfer = list(stripe.transfers.values())[-1]
    assert (fee["amount"], fee["account"]) == (50, account)
    assert (transfer["amount"], transfer["destination"]) == (500, account)
    assert any("carol tipped you $5.00" in m.text() for m in fake.dms(home.host))

    # and the Tip button of the Slack workspace's announcement: the same host and account
    [tip_button] = [
        element
        for block in announcements(slack, 1)[-1]
        for element in block.get("elements", [])
        if element.get("action_id") == "tip"
    ]
    response, name = await slack.click(CAROL, "tip", tip_button["value"])
    assert response.status_code == 200
    [opened_in_slack] = await slack.fake.wait_for("views.open")
    view = opened_in_slack.json("view")
    assert "A tip for the host" in str(view["blocks"])  # she hosts from Discord
    assert (await slack.submit(CAROL, view, tip_form("5"))).status_code == 200
    [reply] = await slack.fake.wait_for("response_url:" + name)
    assert "Tip $5.00 to alice" in reply.params["text"], reply.params
    from_slack = stripe.requests_for("POST", "/v1/checkout/sessions")[-1]
    assert from_slack.params["payment_intent_data"]["transfer_data"] == {"destination": account}
    await pay(both, pay_session(str(reply.params)))
    assert (list(stripe.transfers.values())[-1]["destination"]) == account
    assert sum("tipped you $5.00" in m.text() for m in fake.dms(home.host)) == 2

    # live: the Stage opens in the server the Space is run from, never in the other one,
    # whose scheduled event points at the room; both servers are told it is live
    started = await both.discord.answer(
        await fake.slash(home.guild, home.host, "space start", space=1, confirm=True)
    )
    assert "is live" in started.text(), started.text()
    await both.settle()
    [stage] = home.guild.stages.values()
    assert stage.channel_id == home.stage.id
    assert other.guild.stages == {}
    [home_event] = home.guild.events.values()
    [other_event] = other.guild.events.values()
    assert (home_event.entity_type, other_event.entity_type) == (1, 3)  # Stage, external
    assert other_event.status == 2  # started with the Space
    for server in (home, other):
        assert any("is live now" in m.text() for m in fake.channel_messages(server.announce))
