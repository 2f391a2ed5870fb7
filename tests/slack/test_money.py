"""Paid tickets and tips through Slack. Billing is its own package: here a stand-in
gateway and tip handler show that the checkout link reaches the buyer as soon as the
core has a gateway, and what Slack shows while it has none."""

from __future__ import annotations

import json
from typing import Any

from bot.actors import Actor
from bot.commands import types as t
from bot.models import Hold, Identity, Space, Ticket
from bot.ports import Checkout, TipTotals
from bot.replies import Button, Reply
from tests.slack.conftest import BOB, HOST, Slack
from tests.slack.test_commands import buttons, texts
from tests.slack.test_story import announcements, create_space


class StandInPayments:
    """What billing's gateway promises the core, without Stripe."""

    test_mode = False

    def __init__(self) -> None:
        self.checkouts: list[Hold] = []

    async def ensure_can_sell(self, host: Identity, space_price_minor: int) -> None:
        return None

    async def start_checkout(
        self, *, hold: Hold, space: Space, buyer: Identity, email: str | None
    ) -> Checkout:
        self.checkouts.append(hold)
        return Checkout(url=f"https://checkout.test/{hold.id}", test_mode=True)

    async def tips(self, space_id: int) -> TipTotals:
        return TipTotals()

    async def pay_link(self, hold: Hold) -> str | None:
        return None

    async def refund(self, ticket: Ticket, *, reason: str) -> None:
        return None


async def test_buying_a_paid_ticket_answers_with_the_checkout_link(slack: Slack) -> None:
    payments = StandInPayments()
    slack.core.use_payments(payments)
    response, name = await slack.command(
        HOST, "/space", 'create title:"Paid talk" starts:"2030-01-05 18:00" tickets:5 price:5'
    )
    assert "is announced" in (await slack.answer(response, name))["text"]
    await slack.settle()

    response, name = await slack.click(BOB, "run:0", "/ticket buy 1")
    [reply] = await slack.fake.wait_for("response_url:" + name)
    assert reply.params["response_type"] == "ephemeral"
    assert "held for you until" in reply.params["text"] and "TEST MODE" in reply.params["text"]
    [pay] = buttons(reply.params["blocks"])
    [hold] = payments.checkouts
    assert (pay["text"]["text"], pay["url"]) == ("Pay now", f"https://checkout.test/{hold.id}")
    assert pay["action_id"].startswith("link:")
    await slack.settle()
    # the hold takes a seat, shown as held (not sold) until paid
    assert "*Tickets left*\n4 of 5 (1 held, awaiting payment)" in texts(announcements(slack, 1)[-1])

    # billing's webhook confirms the payment: the ticket arrives by DM
    await slack.core.tickets.confirm(hold.id, fee_minor=50)
    await slack.settle()
    [dm] = slack.fake.dms_to(BOB)
    assert "Ticket " in dm.params["text"] and "paid $5.00" in dm.params["text"]
    assert buttons(dm.json("blocks"))[0]["text"]["text"] == "Join the room"

    # clicking a link button is acknowledged and does nothing else
    before = len(slack.fake.calls)
    response, _ = await slack.click(BOB, "link:0")
    assert response.status_code == 200
    await slack.settle()
    assert len(slack.fake.calls) == before


async def open_tip(slack: Slack) -> tuple[dict[str, Any], str]:
    space_id = await create_space(slack, "Tip jar")
    response, name = await slack.click(BOB, "tip", json.dumps({"space": space_id, "host": HOST}))
    assert response.status_code == 200 and response.content == b""
    [opened] = await slack.fake.wait_for("views.open")
    view: dict[str, Any] = opened.json("view")
    assert view["callback_id"] == "space_tip"
    assert "<@UHOST01>" in view["blocks"][0]["text"]["text"]
    return view, name


def tip_form(amount: str) -> dict[str, dict[str, Any]]:
    return {
        "amount": {"type": "number_input", "value": amount},
        "currency": {"type": "static_select", "selected_option": {"value": "usd"}},
        "message": {"type": "plain_text_input", "value": "Great show"},
        "public": {"type": "checkboxes", "selected_options": [{"value": "yes"}]},
    }


async def test_tip_without_billing_says_so_in_the_modal(slack: Slack) -> None:
    view, _ = await open_tip(slack)
    response = await slack.submit(BOB, view, tip_form("4.567"))
    assert response.json() == {
        "response_action": "errors",
        "errors": {"amount": "USD amounts take at most 2 decimals; '4.567' has more."},
    }
    response = await slack.submit(BOB, view, tip_form("5"))
    body = response.json()
    assert body["response_action"] == "update"
    assert "Tips need billing" in body["view"]["blocks"][0]["text"]["text"]


async def test_tip_with_a_tip_handler_closes_the_modal_and_answers(slack: Slack) -> None:
    seen: list[t.Tip] = []

    async def tip(actor: Actor, command: t.Tip) -> Reply:  # what billing registers
        seen.append(command)
        return Reply(
            "Almost there: pay your tip.",
            buttons=(Button("Pay the tip", url="https://checkout.test/tip"),),
        )

    slack.adapter.interactions.dispatcher.register(t.Tip, tip)
    view, clicked = await open_tip(slack)
    response = await slack.submit(BOB, view, tip_form("5"))
    assert response.status_code == 200 and response.content == b""
    [reply] = await slack.fake.wait_for("response_url:" + clicked)
    assert reply.params["text"] == "Almost there: pay your tip."
    assert reply.params["response_type"] == "ephemeral"
    [command] = seen
    assert command == t.Tip(
        user=command.user,
        amount="5",
        currency="usd",
        message="Great show",
        public=True,
        space_id=1,
    )
    assert command.user is not None and command.user.user_id == HOST


async def test_a_promo_code_is_made_and_entered_as_slash_command_text(slack: Slack) -> None:
    payments = StandInPayments()
    slack.core.use_payments(payments)
    response, name = await slack.command(
        HOST,
        "/space",
        'create title:"Paid talk" starts:"2030-01-05 18:00" tickets:5 price:8 limit:2',
    )
    assert "is announced" in (await slack.answer(response, name))["text"]
    response, name = await slack.command(HOST, "/space", "promo 1 code:EARLY amount:2 uses:3")
    made = (await slack.answer(response, name))["text"]
    assert made.startswith("EARLY — $2.00 off — 3 of 3 uses left"), made
    response, name = await slack.command(BOB, "/ticket", "buy 1 code:early")
    assert "held for you until" in (await slack.answer(response, name))["text"]
    [hold] = payments.checkouts
    assert hold.amount_minor == 600
    response, name = await slack.command(BOB, "/ticket", "buy 1 code:LATE")
    assert "There is no code LATE for Space #1." in (await slack.answer(response, name))["text"]
