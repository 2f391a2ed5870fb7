"""What Slack shows can be trusted: the text people typed arrives as they typed it, no
title pings the channel, a Space is only "announced" once it is, replies that concern
one person stay theirs, and a sale costs one App Home refresh, not one per viewer."""

from __future__ import annotations

import json
from typing import Any

from tests.slack.conftest import ANNOUNCE, BOB, EVE, HOST, MakeSlack, Slack, slack_user
from tests.slack.test_commands import buttons, texts
from tests.slack.test_story import announcements, buy, create_space, home

CREATE = 'create title:"{title}" starts:"2030-01-05 18:00" tickets:{tickets}'


async def create(slack: Slack, title: str, tickets: int = 3) -> dict[str, Any]:
    response, name = await slack.command(
        HOST, "/space", CREATE.format(title=title, tickets=tickets)
    )
    reply = await slack.answer(response, name)
    await slack.settle()
    return reply


def pingable(value: Any) -> Any:
    """`value` without its plain_text objects (Slack shows those as typed, never as a
    mention), with JSON-encoded parameters (blocks, view) decoded."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return pingable(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        if value.get("type") == "plain_text":
            return None
        return {k: pingable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pingable(v) for v in value]
    return value


def everything_posted(slack: Slack) -> str:
    """Every mrkdwn text Stagepass sent to Slack (messages, updates, views, replies)."""
    return "\n".join(json.dumps(pingable(call.params)) for call in slack.fake.calls)


async def test_command_text_is_unescaped(slack: Slack) -> None:
    # Slack escapes &, < and > in what people type
    await create(slack, "Q&amp;A: &lt;live&gt; &amp;amp; more")
    space = await slack.core.spaces.get(1)
    assert space.title == "Q&A: <live> &amp; more"


async def test_a_title_that_says_here_pings_nobody(slack: Slack) -> None:
    reply = await create(slack, "&lt;!here&gt; &lt;!channel&gt; party &lt;@UBOB0001&gt;")
    assert (await slack.core.spaces.get(1)).title == "<!here> <!channel> party <@UBOB0001>"
    await buy(slack, BOB, 1)  # DMs, announcement updates, App Home
    sent = everything_posted(slack) + json.dumps(pingable(reply))
    for ping in ("<!here>", "<!channel>", "<@UBOB0001>"):
        assert ping not in sent
    [post] = [c for c in slack.fake.called("chat.postMessage") if c.params["channel"] == ANNOUNCE]
    assert post.params["text"].startswith("&lt;!here&gt; &lt;!channel&gt; party")
    assert "&lt;!here&gt;" in reply["text"]


async def test_people_are_mentioned_by_id(slack: Slack) -> None:
    space_id = await create_space(slack, "Cohosts")
    response, name = await slack.command(HOST, "/space", f"cohost add {space_id} <@{BOB}|bob>")
    reply = await slack.answer(response, name)
    assert reply["text"] == f"<@{BOB}> is now a co-host of Space #{space_id}."
    assert reply["response_type"] == "ephemeral"


async def test_not_announced_says_what_to_fix_and_posts_again(slack: Slack) -> None:
    slack.fake.fail("chat.postMessage", "channel_not_found")
    reply = await create(slack, "Hidden")
    assert "is announced" not in reply["text"]
    assert reply["text"].startswith(
        "#1 Hidden: :warning: Space #1 is set up but not announced: Slack can't find the "
        "announcement channel CANNOUNCE. Set SLACK_ANNOUNCE_CHANNEL"
    )
    [again] = [b for b in buttons(reply["blocks"]) if b["text"]["text"] == "Post it again"]
    assert slack.fake.dms_to(HOST) == []  # told once, in the reply

    response, name = await slack.click(HOST, again["action_id"], again["value"])
    assert response.status_code == 200
    [answer] = await slack.fake.wait_for("response_url:" + name)
    assert answer.params["text"] == "Space #1 is announced."
    await slack.settle()
    *failed, post = [
        c
        for c in slack.fake.called("chat.postMessage")
        if c.params["channel"] == ANNOUNCE and "blocks" in c.params
    ]
    assert len(failed) == 1  # the first try, refused by Slack
    assert "Hidden" in texts(post.json("blocks"))
    assert slack.adapter.tasks.failures == 0


async def test_a_post_that_fails_after_the_reply_is_told_by_dm(slack: Slack) -> None:
    slack.adapter.interactions.announce_wait = 0  # the reply does not wait for the post
    slack.fake.fail("chat.postMessage", "not_in_channel")
    reply = await create(slack, "Private")
    assert reply["text"].startswith("#1 Private: Space #1 is set up; its announcement is on")
    [dm] = slack.fake.dms_to(HOST)
    assert dm.params["text"] == (
        "Space #1 is set up but not announced: Stagepass is not a member of the channel "
        "CANNOUNCE. Invite it there (/invite @Stagepass), then press Post it again."
    )
    assert [b["value"] for b in buttons(dm.json("blocks"))] == ["/slack-repost 1"]


async def test_no_channel_at_all(make_slack: MakeSlack) -> None:
    slack: Slack = await make_slack(slack_announce_channel=None)
    reply = await create(slack, "Nowhere")
    assert "no announcement channel is set" in reply["text"]


async def test_a_burst_of_sales_stays_inside_slacks_views_publish_budget(slack: Slack) -> None:
    """Slack allows about 100 views.publish a minute per workspace. 40 sales while 20
    people have their App Home open: one refresh per buyer (the old rule, every recent
    viewer on every sale, made 20 x 40 = 800)."""
    space_id = await create_space(slack, "Popular", tickets=100)
    viewers = [f"UVIEW{n:04d}" for n in range(20)]
    buyers = [f"UBUY{n:05d}" for n in range(40)]
    for user in viewers + buyers:
        slack.fake.users[user] = slack_user(user, user.lower())
    for user in viewers:
        response = await slack.event({"type": "app_home_opened", "user": user, "tab": "home"})
        assert response.status_code == 200
    await slack.settle()
    before = len(slack.fake.called("views.publish"))
    for user in buyers:
        await buy(slack, user, space_id)
    published = slack.fake.called("views.publish")[before:]
    assert {c.params["user_id"] for c in published} == set(buyers)
    assert len(published) <= 2 * len(buyers) <= 100  # at most one catch-up each


async def test_get_ticket_becomes_sold_out(slack: Slack) -> None:
    space_id = await create_space(slack, "Tiny", tickets=1)
    [first] = announcements(slack, space_id)
    assert [b["text"]["text"] for b in buttons(first)][:1] == ["Get ticket"]
    await buy(slack, BOB, space_id)
    latest = announcements(slack, space_id)[-1]
    [sold_out, *_] = buttons(latest)
    assert sold_out["text"]["text"] == "Sold out"
    assert sold_out["value"] == f"/space info {space_id}" and "style" not in sold_out
    assert "Get ticket" not in texts(latest)
    shown = await home(slack, EVE)
    assert "Sold out" in [b["text"]["text"] for b in buttons(shown)]
    assert "Get ticket" not in [b["text"]["text"] for b in buttons(shown)]
    # clicking it tells the clicker about the Space, and sells nothing
    reply = await buy_click(slack, EVE, sold_out)
    assert "Tickets left: Sold out" in reply
    assert (await slack.core.spaces.get(space_id)).sold == 1


async def buy_click(slack: Slack, user: str, element: dict[str, Any]) -> str:
    response, name = await slack.click(user, element["action_id"], element["value"])
    assert response.status_code == 200
    [answer] = await slack.fake.wait_for("response_url:" + name)
    await slack.settle()
    text: str = answer.params["text"]
    return text


async def test_a_mention_keeps_the_name_people_are_known_by(slack: Slack) -> None:
    space_id = await create_space(slack, "Names")
    await buy(slack, BOB, space_id)  # bob is known by his Slack display name, Bob
    response, name = await slack.command(HOST, "/space", f"cohost add {space_id} <@{BOB}|bob>")
    await slack.answer(response, name)
    bob = await slack.core.identities.by_key(f"slack:T0ACME:{BOB}")
    assert bob is not None and bob.display_name == "Bob"
