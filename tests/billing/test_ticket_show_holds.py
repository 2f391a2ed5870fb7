"""`/ticket show` lists the buyer's pending holds with their pay link and expiry (issue
15 item 3), through the shell chat with billing on the Stripe fake."""

from __future__ import annotations

from datetime import timedelta

from tests.billing.conftest import World


async def test_ticket_show_lists_a_pending_hold_with_its_pay_link(world: World) -> None:
    space_id = await world.paid_space(tickets=5)
    buy = await world.say("bob", f"/ticket buy {space_id} quantity:2")
    pay_url = buy.buttons[0].url

    shown = await world.say("bob", "/ticket show")
    assert not shown.error, shown.text
    assert "2 seat(s) held, awaiting payment of" in shown.text
    assert " until " in shown.text and f"#{space_id}" in shown.text
    assert [(b.label, b.url) for b in shown.buttons] == [(f"Pay #{space_id}", pay_url)]

    await world.buy_and_pay("carol", space_id)
    carol = await world.say("carol", "/ticket show")
    assert "held, awaiting payment" not in carol.text  # paid: a ticket, no hold
    [ticket_id] = [w for w in carol.text.split() if len(w) == 16 and w.isalnum()]
    join, manage = carol.buttons
    assert join.label == f"Join #{space_id}" and manage.label == f"Manage {ticket_id[:6]}"
    assert manage.url and manage.url.startswith(f"http://stagepass.test/tickets/{ticket_id}?token=")

    world.clock.advance(timedelta(hours=2))  # the hold lapses
    lapsed = await world.say("bob", "/ticket show")
    assert lapsed.text.startswith("You have no valid tickets. Find a Space with /space list")
    [signin] = lapsed.buttons  # signs bob in on the web, to buy on a Space's page
    assert signin.url and signin.url.startswith("http://stagepass.test/signin?token=")
