"""The whole story in Slack, all through signed requests: a free ticket and its DM,
reminders, the App Home, running the stage as a moderator, and cancelling."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.clock import ManualClock
from bot.events import DirectMessage
from bot.models import OutboxMessage, OutboxStatus, SpaceStatus
from tests.slack.conftest import ANNOUNCE, BOB, CAROL, DAVE, EVE, HOST, Slack
from tests.slack.test_commands import buttons, texts


async def create_space(slack: Slack, title: str, tickets: int = 3) -> int:
    response, name = await slack.command(
        HOST, "/space", f'create title:"{title}" starts:"2030-01-05 18:00" tickets:{tickets}'
    )
    reply = await slack.answer(response, name)
    assert "is announced" in reply["text"], reply
    await slack.settle()
    return max(s.id or 0 for s in await slack.core.spaces.list_spaces())


def announcements(slack: Slack, space_id: int) -> list[list[dict[str, Any]]]:
    """Every version of a Space's announcement, first post then each update."""
    versions = []
    for call in slack.fake.calls:
        if (
            call.method in ("chat.postMessage", "chat.update")
            and call.params.get("channel") == ANNOUNCE
            and not call.params.get("thread_ts")  # replies under it
            and f"Space #{space_id} ·" in texts(call.json("blocks"))
        ):
            versions.append(call.json("blocks"))
    return versions


async def buy(slack: Slack, user: str, space_id: int) -> str:
    response, name = await slack.click(user, "run:0", f"/ticket buy {space_id}")
    assert response.status_code == 200 and response.content == b""
    [reply] = await slack.fake.wait_for("response_url:" + name)
    assert reply.params["response_type"] == "ephemeral"
    assert reply.params["replace_original"] is False
    await slack.settle()
    text: str = reply.params["text"]
    return text


async def test_free_ticket_reminder_and_dms(slack: Slack) -> None:
    space_id = await create_space(slack, "Ask me anything")

    reply = await buy(slack, BOB, space_id)
    assert reply.startswith("You're in! Ticket ")
    [dm] = slack.fake.dms_to(BOB)
    assert dm.params["text"].startswith("Your ticket for Ask me anything (#1)")
    [join, manage] = buttons(dm.json("blocks"))
    assert join["text"]["text"] == "Join the room"
    assert join["url"].startswith("http://stagepass.test/rooms/1#token=")
    assert manage["text"]["text"] == "Manage my ticket"
    assert manage["url"].startswith("http://stagepass.test/tickets/")
    assert [c.params["users"] for c in slack.fake.called("conversations.open")] == [BOB]
    assert "2 of 3" in texts(announcements(slack, space_id)[-1])  # kept current

    response, name = await slack.click(BOB, "run:1", f"/remind on {space_id}")
    assert response.status_code == 200
    [reply_call] = await slack.fake.wait_for("response_url:" + name)
    assert reply_call.params["text"] == "I'll remind you before Space #1 starts."

    # the scheduler says it is time: a DirectMessage on the bus becomes a Slack DM
    slack.core.bus.publish(
        DirectMessage(
            identity_key=f"slack:{slack.team}:{BOB}",
            text="Reminder: Ask me anything (#1) starts in 30m. Use /remind off 1 to stop.",
        )
    )
    await slack.settle()
    reminder = slack.fake.dms_to(BOB)[-1]
    assert reminder.params["text"] == (
        "Reminder: Ask me anything (#1) starts in 30m. Use /reminder off 1 to stop."
    )

    # somebody else's identity (another platform) is not Slack's business
    slack.core.bus.publish(DirectMessage(identity_key="discord:1:2", text="not for Slack"))
    await slack.settle()
    assert all(c.params["text"] != "not for Slack" for c in slack.fake.called("chat.postMessage"))


async def test_sold_out_and_per_buyer_limit(slack: Slack) -> None:
    space_id = await create_space(slack, "Tiny", tickets=1)
    assert (await buy(slack, BOB, space_id)).startswith("You're in!")
    assert await buy(slack, EVE, space_id) == (
        "Space #1 is sold out. Join the waitlist: /ticket waitlist 1."
    )
    assert "Sold out" in texts(announcements(slack, space_id)[-1])
    assert slack.fake.dms_to(EVE) == []


async def outbox_rows(slack: Slack) -> list[OutboxMessage]:
    async with slack.core.db.session() as session:
        return list((await session.exec(select(OutboxMessage))).all())


async def test_a_rate_limited_dm_is_resent_by_the_sweep(slack: Slack, clock: ManualClock) -> None:
    space_id = await create_space(slack, "Busy")
    slack.fake.fail("chat.postMessage", "ratelimited")
    assert (await buy(slack, BOB, space_id)).startswith("You're in!")
    [_refused] = slack.fake.dms_to(BOB)  # answered {"ok": false, "error": "ratelimited"}
    [row] = await outbox_rows(slack)
    assert (row.status, row.last_error) == (OutboxStatus.PENDING, "ratelimited")

    clock.advance(slack.core.outbox.delay(1))
    assert await slack.core.outbox.sweep() == 1
    await slack.settle()
    [_, dm] = slack.fake.dms_to(BOB)
    assert "Your ticket for Busy" in dm.params["text"]
    [row] = await outbox_rows(slack)
    assert row.status == OutboxStatus.SENT
    clock.advance(timedelta(hours=3))  # delivered: never sent twice
    assert await slack.core.outbox.sweep() == 0
    await slack.settle()
    assert len(slack.fake.dms_to(BOB)) == 2


@pytest.mark.parametrize("error", ["user_not_found", "cannot_dm_bot"])
async def test_a_dm_slack_refuses_for_good_is_not_retried(
    slack: Slack, clock: ManualClock, error: str
) -> None:
    space_id = await create_space(slack, "Closed")
    slack.fake.fail("conversations.open", error)
    assert (await buy(slack, BOB, space_id)).startswith("You're in!")
    [row] = await outbox_rows(slack)
    assert (row.status, row.last_error) == (OutboxStatus.REFUSED, error)
    opened = len(slack.fake.called("conversations.open"))
    clock.advance(timedelta(hours=3))
    assert await slack.core.outbox.sweep() == 0
    await slack.settle()
    assert len(slack.fake.called("conversations.open")) == opened
    assert slack.fake.dms_to(BOB) == []


async def home(slack: Slack, user: str) -> list[dict[str, Any]]:
    response = await slack.event(
        {
            "type": "app_home_opened",
            "user": user,
            "tab": "home",
            "channel": "D" + user,
            "event_ts": "1.0",
        }
    )
    assert response.status_code == 200
    await slack.settle()
    published = [c for c in slack.fake.called("views.publish") if c.params["user_id"] == user]
    view = published[-1].json("view")
    assert view["type"] == "home"
    blocks: list[dict[str, Any]] = view["blocks"]
    return blocks


async def test_app_home(slack: Slack) -> None:
    space_id = await create_space(slack, "Ask me anything")
    other = await create_space(slack, "Second show")
    await buy(slack, BOB, space_id)
    await slack.click(BOB, "run:1", f"/remind on {other}")
    await slack.settle()

    blocks = await home(slack, BOB)
    shown = texts(blocks)
    assert "*#1 Ask me anything*" in shown and "you have a ticket" in shown
    assert "*#2 Second show*" in shown and "reminder on" in shown
    [join] = [b for b in buttons(blocks) if b["text"]["text"] == "Join"]
    assert join["url"].startswith("http://stagepass.test/rooms/1#token=")
    [turn_off] = [b for b in buttons(blocks) if b["text"]["text"] == "Turn off"]
    assert turn_off["value"] == "/remind off 2"
    assert [b["value"] for b in buttons(blocks) if b["text"]["text"] == "Get ticket"] == [
        "/ticket buy 2"
    ]
    assert "Spaces you host" not in shown

    blocks = await home(slack, HOST)
    shown = texts(blocks)
    assert "Spaces you host" in shown and "Seats: 1 sold, 0 held, 2 left of 3" in shown

    def labelled(label: str) -> list[dict[str, Any]]:
        return [b for b in buttons(blocks) if b["text"]["text"] == label]

    assert [b["value"] for b in labelled("Start")] == ["/space start 1", "/space start 2"]
    assert [b["value"] for b in labelled("Cancel")] == ["/space cancel 1", "/space cancel 2"]
    assert labelled("Cancel")[0]["confirm"]["confirm"]["text"] == "Cancel the Space"
    assert labelled("Host a Space")[0]["action_id"] == "open_create"

    # a sale refreshes the buyer's tab only; the host sees it the next time they look
    before = len(slack.fake.called("views.publish"))
    await buy(slack, EVE, space_id)
    refreshed = {c.params["user_id"] for c in slack.fake.called("views.publish")[before:]}
    assert refreshed == {EVE}
    assert "Seats: 2 sold, 0 held, 1 left of 3" in texts(await home(slack, HOST))

    # "Host a Space" opens the same modal as /space create
    await slack.click(HOST, "open_create", in_home=True)
    [opened] = await slack.fake.wait_for("views.open")
    assert opened.json("view")["callback_id"] == "space_create"


async def test_start_from_home_and_moderators_run_the_stage(slack: Slack) -> None:
    space_id = await create_space(slack, "Live show")
    await buy(slack, BOB, space_id)

    # hours before the announced time, Start asks for confirmation first
    response, _ = await slack.click(HOST, "run:start:1", f"/space start {space_id}", in_home=True)
    assert response.status_code == 200 and response.content == b""
    await slack.settle()
    assert (await slack.core.spaces.get(space_id)).status == SpaceStatus.SCHEDULED
    [asked] = slack.fake.dms_to(HOST)
    assert f"use /space start {space_id} confirm:yes" in asked.params["text"]

    space = await slack.core.spaces.get(space_id)
    clock = slack.core.clock
    assert isinstance(clock, ManualClock)
    clock.set(space.starts_at - timedelta(minutes=10))
    response, _ = await slack.click(HOST, "run:start:1", f"/space start {space_id}", in_home=True)
    await slack.settle()
    assert (await slack.core.spaces.get(space_id)).status == SpaceStatus.LIVE
    started = slack.fake.dms_to(HOST)[-1]  # from the App Home, the answer comes by DM
    assert started.params["text"] == "Space #1 is live."
    [room, desk] = buttons(started.json("blocks"))
    assert room["url"].startswith("http://stagepass.test/rooms/1#token=")
    assert desk["url"].startswith("http://stagepass.test/spaces/1/manage?token=")
    assert "Live now" in texts(announcements(slack, space_id)[-1])
    # said once to the workspace, under the announcement (the host's answer is theirs)
    [live] = [c for c in slack.fake.called("chat.postMessage") if "is live now" in c.params["text"]]
    assert live.params["channel"] == ANNOUNCE and live.params["thread_ts"]

    # Eve is no moderator; Carol is a workspace admin; Dave is in the stage-mods group
    response, name = await slack.command(EVE, "/stage", f"promote <@{BOB}|bob>")
    refused = await slack.answer(response, name)
    assert refused["text"] == "Only the host, co-hosts and moderators can manage the stage."

    response, name = await slack.command(CAROL, "/stage", f"promote <@{BOB}|bob>")
    promoted = await slack.answer(response, name)
    assert promoted["response_type"] == "ephemeral"  # the public word is in the thread
    assert promoted["text"] == f"<@{BOB}> is now a speaker."
    await slack.settle()
    [thread] = [
        c
        for c in slack.fake.called("chat.postMessage")
        if c.params.get("thread_ts") and "speaker" in c.params["text"]
    ]
    assert thread.params["channel"] == ANNOUNCE
    assert thread.params["text"] == f"<@{BOB}> is now a speaker in #1 Live show."
    assert (
        slack.fake.dms_to(BOB)[-1].params["text"].startswith("You are now a speaker in Live show.")
    )

    response, name = await slack.command(DAVE, "/stage", f"demote <@{BOB}|bob>")
    assert (await slack.answer(response, name))["text"] == f"<@{BOB}> is a listener again."
    await slack.settle()
    assert slack.fake.dms_to(BOB)[-1].params["text"] == "You are a listener again in Live show."
    assert {c.params["user"] for c in slack.fake.called("users.info")} >= {CAROL, DAVE, EVE}
    assert slack.fake.called("usergroups.users.list")[0].params["usergroup"] == "S0MODS"


async def test_moderator_cancels_and_everyone_is_told(slack: Slack) -> None:
    space_id = await create_space(slack, "Doomed")
    await buy(slack, BOB, space_id)

    response, name = await slack.command(CAROL, "/space", f'cancel {space_id} reason:"Host is ill"')
    reply = await slack.answer(response, name)
    assert reply["response_type"] == "ephemeral"  # the refund count is the canceller's
    assert reply["text"] == (
        "Space #1 is cancelled. 1 ticket(s) refunded or voided. Every holder is told by DM."
    )
    await slack.settle()

    [bob_dm] = [c for c in slack.fake.dms_to(BOB) if "cancelled" in c.params["text"]]
    assert bob_dm.params["text"].startswith("Your ticket ")
    assert bob_dm.params["text"].endswith("for Doomed was cancelled. Host is ill")
    # (the host also gets the refund progress DM, now sent by the core for every cancel)
    [host_dm] = [c for c in slack.fake.dms_to(HOST) if "was cancelled" in c.params["text"]]
    assert host_dm.params["text"] == "Your Space Doomed (#1) was cancelled. Reason: Host is ill"
    last = announcements(slack, space_id)[-1]
    assert "Cancelled — Host is ill" in texts(last)
    assert buttons(last) == []  # nothing left to buy
