"""Slash commands and the "Host a Space" modal, through signed requests to /slack/events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.slack.conftest import ANNOUNCE, HOST, MakeSlack, Slack
from tests.slack.fake_slack import BOT_TOKEN


def texts(blocks: list[dict[str, Any]]) -> str:
    """Every piece of text in some blocks, for asserting on what people read."""
    out = []
    for block in blocks:
        for key in ("text", "label", "hint"):
            if isinstance(block.get(key), dict):
                out.append(block[key]["text"])
        out += [f["text"] for f in block.get("fields", [])]
        out += [
            e.get("text", "") if e.get("type") == "mrkdwn" else ""
            for e in block.get("elements", [])
        ]
        out += [
            e["text"]["text"]
            for e in block.get("elements", [])
            if "text" in e and isinstance(e["text"], dict)
        ]
        if "accessory" in block:
            out.append(block["accessory"]["text"]["text"])
    return "\n".join(out)


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for block in blocks:
        found += [e for e in block.get("elements", []) if e.get("type") == "button"]
        if block.get("accessory", {}).get("type") == "button":
            found.append(block["accessory"])
    return found


async def test_space_create_by_command_posts_the_announcement(slack: Slack) -> None:
    response, name = await slack.command(
        HOST, "/space", 'create title:"Ask me anything" starts:"2030-01-05 18:00" tickets:50'
    )
    reply = await slack.answer(response, name)
    assert reply["response_type"] == "ephemeral"  # the announcement is the public word
    assert "Space #1 is announced." in reply["text"]
    await slack.settle()

    [post] = [c for c in slack.fake.called("chat.postMessage") if c.params["channel"] == ANNOUNCE]
    assert post.token == BOT_TOKEN
    blocks = post.json("blocks")
    shown = texts(blocks)
    # alice is in Europe/Berlin (users.info): "18:00" is hers, 17:00 UTC
    starts = int(datetime(2030, 1, 5, 18, 0, tzinfo=ZoneInfo("Europe/Berlin")).timestamp())
    assert f"<!date^{starts}^{{date_short_pretty}} {{time}}|Sat 5 Jan 2030, 17:00 UTC>" in shown
    assert "Ask me anything" in shown and "50 of 50" in shown and "<@UHOST01>" in shown
    assert [(b["text"]["text"], b.get("value")) for b in buttons(blocks)] == [
        ("Get ticket", "/ticket buy 1"),
        ("Remind me", "/remind on 1"),
        ("Tip the host", json.dumps({"space": 1, "host": HOST})),
    ]


async def test_command_errors_and_help_read_as_in_slack(slack: Slack) -> None:
    response, name = await slack.command(HOST, "/space", "create tickets:5")
    reply = await slack.answer(response, name)
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith("title: is missing.")
    assert reply["blocks"][0]["text"]["text"].startswith(":warning:")

    response, name = await slack.command(HOST, "/help", "remind")
    reply = await slack.answer(response, name)
    assert "/reminder on|off SPACE" in reply["text"]  # Slack keeps /remind for itself
    assert "/remind " not in reply["text"]

    response, name = await slack.command(HOST, "/stagepass", "remind on 99")
    reply = await slack.answer(response, name)
    assert reply["text"] == "There is no Space #99."

    response, name = await slack.command(HOST, "/reminder", "on 98")
    reply = await slack.answer(response, name)
    assert reply["text"] == "There is no Space #98."


async def open_create_modal(slack: Slack, user: str = HOST) -> tuple[dict[str, Any], str]:
    response, name = await slack.command(user, "/space", "create")
    assert response.status_code == 200 and response.content == b""
    [opened] = await slack.fake.wait_for("views.open")
    assert opened.params["trigger_id"] == f"trigger.{name[1:]}"
    view: dict[str, Any] = opened.json("view")
    return view, name


def form(**changes: Any) -> dict[str, dict[str, Any]]:
    values: dict[str, dict[str, Any]] = {
        "title": {"type": "plain_text_input", "value": "Modal AMA"},
        "description": {"type": "plain_text_input", "value": None},
        "starts_date": {"type": "datepicker", "selected_date": "2030-01-06"},
        "starts_time": {"type": "timepicker", "selected_time": "19:30"},
        "duration": {"type": "number_input", "value": "90"},
        "tickets": {"type": "number_input", "value": "3"},
        "price": {"type": "number_input", "value": None},
        "currency": {"type": "static_select", "selected_option": {"value": "usd"}},
        "limit": {"type": "number_input", "value": None},
        "manual": {"type": "checkboxes", "selected_options": []},
    }
    for block, element in changes.items():
        values[block] = {**values[block], **element}
    return values


async def test_space_create_modal(slack: Slack) -> None:
    view, name = await open_create_modal(slack)
    assert view["callback_id"] == "space_create"
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert {"title", "starts_date", "starts_time", "tickets", "price", "currency"} <= set(blocks)
    assert blocks["starts_date"]["element"]["type"] == "datepicker"
    assert blocks["starts_time"]["element"] == {
        "type": "timepicker",
        "action_id": "value",
        "timezone": "Europe/Berlin",  # alice's zone in Slack (users.info), kept at first sight
    }
    assert blocks["currency"]["element"]["type"] == "static_select"
    assert json.loads(view["private_metadata"])["response_url"] == slack.fake.response_url(name)

    response = await slack.submit(HOST, view, form())
    assert response.status_code == 200 and response.content == b""  # closes the modal
    [reply] = await slack.fake.wait_for("response_url:" + name)
    assert reply.params["response_type"] == "ephemeral"  # the announcement is public
    assert reply.params["text"].startswith("#1 Modal AMA: Space #1 is announced.")
    await slack.settle()
    [post] = [c for c in slack.fake.called("chat.postMessage") if c.params["channel"] == ANNOUNCE]
    starts = int(datetime(2030, 1, 6, 19, 30, tzinfo=ZoneInfo("Europe/Berlin")).timestamp())
    assert f"<!date^{starts}^" in texts(post.json("blocks"))
    assert "90 min" in texts(post.json("blocks"))


async def test_modal_reads_the_time_in_the_hosts_zone(slack: Slack) -> None:
    response, name = await slack.command(HOST, "/tz", "set Asia/Tokyo")  # /tz beats Slack's
    assert "Asia/Tokyo" in (await slack.answer(response, name))["text"]
    view, _ = await open_create_modal(slack)
    starts_time = next(b for b in view["blocks"] if b.get("block_id") == "starts_time")
    assert starts_time["element"]["timezone"] == "Asia/Tokyo"
    assert "In your time zone, Asia/Tokyo" in starts_time["hint"]["text"]
    response = await slack.submit(HOST, view, form())
    assert response.status_code == 200
    await slack.settle()
    space = await slack.core.spaces.get(1)
    assert space.starts_at == datetime(2030, 1, 6, 10, 30, tzinfo=UTC)  # 19:30 in Tokyo


@pytest.mark.parametrize(
    ("changes", "block", "message"),
    [
        ({"tickets": {"value": "0"}}, "tickets", "A Space needs at least 1 ticket."),
        (
            {"starts_date": {"selected_date": "2029-12-31"}},
            "starts_date",
            "The start time is in the past; pick a time ahead.",
        ),
        ({"title": {"value": "x" * 101}}, "title", "The title is 101 characters long"),
        (
            {"currency": {"selected_option": {"value": "jpy"}}, "price": {"value": "4.5"}},
            "price",
            "JPY amounts take no decimals",
        ),
        ({"starts_time": {"selected_time": None}}, "starts_time", "Pick the time"),
        ({"duration": {"value": "9999"}}, "duration", "The duration must be between"),
        ({"title": {"value": "a\x00b"}}, "title", "title: Text may not contain a NUL"),
        ({"description": {"value": "\x00"}}, "description", "description: Text may not"),
    ],
)
async def test_modal_errors_land_on_their_fields(
    slack: Slack, changes: dict[str, Any], block: str, message: str
) -> None:
    view, _ = await open_create_modal(slack)
    response = await slack.submit(HOST, view, form(**changes))
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == [block]
    assert body["errors"][block].startswith(message)
    await slack.settle()
    assert await slack.core.spaces.list_spaces() == []


async def test_the_title_limit_the_form_offers_is_the_cores(make_slack: MakeSlack) -> None:
    slack: Slack = await make_slack(max_title_length=40)  # STAGEPASS_MAX_TITLE_LENGTH
    view, _ = await open_create_modal(slack)
    [title] = [b for b in view["blocks"] if b.get("block_id") == "title"]
    assert title["element"]["max_length"] == 40
    # Slack enforces it in the form; past it (a raw submission) the core does, on the field
    response = await slack.submit(HOST, view, form(title={"value": "x" * 41}))
    body = response.json()
    assert body["response_action"] == "errors"
    assert body["errors"] == {"title": "The title is 41 characters long; the limit is 40."}


async def test_modal_error_without_a_field_shows_on_top_and_keeps_the_values(
    slack: Slack,
) -> None:
    view, _ = await open_create_modal(slack)
    response = await slack.submit(HOST, view, form(price={"value": "5"}))
    body = response.json()
    assert body["response_action"] == "update"
    again = body["view"]
    assert again["callback_id"] == "space_create"
    assert again["private_metadata"] == view["private_metadata"]
    assert "Paid Spaces need billing" in again["blocks"][0]["text"]["text"]
    title = next(b for b in again["blocks"] if b.get("block_id") == "title")
    assert title["element"]["initial_value"] == "Modal AMA"
    price = next(b for b in again["blocks"] if b.get("block_id") == "price")
    assert price["element"]["initial_value"] == "5"


async def test_modal_cannot_open_after_the_trigger_expired(slack: Slack) -> None:
    slack.fake.fail("views.open", "expired_trigger_id")
    response, name = await slack.command(HOST, "/space", "create")
    assert response.status_code == 200
    [reply] = await slack.fake.wait_for("response_url:" + name)
    assert reply.params["response_type"] == "ephemeral"
    assert "try again" in reply.params["text"]


async def test_space_manage_and_tickets_in_slack(slack: Slack) -> None:
    """The desk link comes privately as a button that opens the desk; `/space tickets`
    answers with the list, within a Slack section's 3,000 characters."""
    response, name = await slack.command(
        HOST, "/space", 'create title:"Desk" starts:"2030-01-05 18:00" tickets:50'
    )
    await slack.answer(response, name)
    await slack.settle()

    response, name = await slack.command(HOST, "/space", "manage 1")
    reply = await slack.answer(response, name)
    assert reply["response_type"] == "ephemeral"
    assert "works for an hour" in reply["text"]
    [button] = [b for b in buttons(reply["blocks"]) if b["text"]["text"] == "Open your desk"]
    path = button["url"].split("://", 1)[1].split("/", 1)[1]
    desk = await slack.http.get("/" + path)
    assert desk.status_code == 200 and "No tickets yet." in desk.text

    response, name = await slack.command(HOST, "/space", "tickets 1")
    reply = await slack.answer(response, name)
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].endswith("\nNo tickets yet."), reply["text"]
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in reply["blocks"])
