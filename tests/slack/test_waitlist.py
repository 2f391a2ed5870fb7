"""Waitlists and invites in Slack, through signed requests: the Join the waitlist button on
a full announcement, /ticket waitlist, a refunded seat going to the first in line, and
/space invite with /ticket redeem (issue 16 items 1 and 3)."""

from __future__ import annotations

from sqlmodel import select

from bot.models import Ticket
from tests.slack.conftest import BOB, CAROL, DAVE, EVE, HOST, Slack
from tests.slack.test_commands import buttons
from tests.slack.test_story import announcements, buy, create_space


async def run(slack: Slack, user: str, command: str, text: str) -> str:
    response, name = await slack.command(user, command, text)
    reply = await slack.answer(response, name)
    await slack.settle()
    answer: str = reply["text"]
    return answer


async def test_the_waitlist_button_and_a_refunded_seat(slack: Slack) -> None:
    space_id = await create_space(slack, "Tiny", tickets=1)
    assert (await buy(slack, BOB, space_id)).startswith("You're in!")
    join = [
        b
        for b in buttons(announcements(slack, space_id)[-1])
        if b["text"]["text"] == "Join the waitlist"
    ]
    assert join and join[0]["value"] == f"/ticket waitlist {space_id}"

    response, name = await slack.click(EVE, join[0]["action_id"], join[0]["value"])
    assert response.status_code == 200
    [reply] = await slack.fake.wait_for("response_url:" + name)
    assert reply.params["text"].startswith("You are number 1 in line for Space #1.")
    second = await run(slack, CAROL, "/ticket", f"waitlist {space_id}")
    assert second.startswith("You are number 2 in line"), second
    info = await run(slack, HOST, "/space", f"info {space_id}")
    assert "Waitlist: 2 waiting" in info, info

    async with slack.core.db.session() as session:
        ticket = (await session.exec(select(Ticket))).one()
    refunded = await run(slack, HOST, "/ticket", f"refund {ticket.id}")
    assert "revoked" in refunded, refunded
    [dm] = slack.fake.dms_to(EVE)  # a free Space's offer is the ticket itself
    assert dm.params["text"].startswith("Your ticket for Tiny (#1)")
    assert slack.fake.dms_to(CAROL) == []


async def test_invite_only_and_redeem(slack: Slack) -> None:
    response, name = await slack.command(
        HOST, "/space", 'create title:"Inner" starts:"2030-01-05 18:00" tickets:5 visibility:invite'
    )
    assert "is announced" in (await slack.answer(response, name))["text"]
    await slack.settle()
    refused = await run(slack, DAVE, "/ticket", "buy 1")
    assert "invite-only" in refused, refused
    invite = await run(slack, HOST, "/space", "invite 1 uses:1")
    token = invite.rsplit("/ticket redeem ", 1)[-1].strip()
    got = await run(slack, DAVE, "/ticket", f"redeem {token}")
    assert got.startswith("You're in!"), got
    assert "used up" in await run(slack, BOB, "/ticket", f"redeem {token}")
    assert "Inner" not in await run(slack, BOB, "/space", "list")
