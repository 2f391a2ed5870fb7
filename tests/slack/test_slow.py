"""Slack must hear back within 3 seconds, however slow the work is. These tests stall the
work (the database, or the dispatcher) and check that Slack's request is answered while
the work is still stalled, and that the work's answer follows once it completes.

No wall-clock thresholds: the proof is the order of things."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.actors import Actor
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.replies import Reply
from tests.slack.conftest import BOB, HOST, Slack
from tests.slack.test_commands import form, open_create_modal
from tests.slack.test_story import create_space


@pytest.fixture
async def slow(make_slack: Any) -> Slack:
    """Answers on the acknowledgement only when the work takes under 0.2 s."""
    slack: Slack = await make_slack(ack_budget=0.2)
    return slack


async def stalled(slack: Slack) -> None:
    """The work has reached the database and is waiting there."""
    await asyncio.wait_for(slack.db.stalled.wait(), 10)


async def test_slash_command_is_acknowledged_while_the_database_is_slow(slow: Slack) -> None:
    slow.db.gate.clear()
    response, name = await slow.command(BOB, "/space", "list")
    assert response.status_code == 200 and response.content == b""  # acknowledged...
    await stalled(slow)
    assert slow.fake.responses() == []  # ...while the work is still waiting

    slow.db.gate.set()
    [reply] = await slow.fake.wait_for("response_url:" + name)
    assert reply.params["text"] == "No upcoming Spaces here. Host one with /space create."
    assert reply.params["response_type"] == "ephemeral"


async def test_button_is_acknowledged_while_the_database_is_slow(slow: Slack) -> None:
    space_id = await create_space(slow, "Slow sale")
    slow.db.gate.clear()
    response, name = await slow.click(BOB, "run:0", f"/ticket buy {space_id}")
    assert response.status_code == 200 and response.content == b""
    await stalled(slow)
    assert slow.fake.responses(name) == [] and slow.fake.dms_to(BOB) == []

    slow.db.gate.set()
    [reply] = await slow.fake.wait_for("response_url:" + name)
    assert reply.params["text"].startswith("You're in!")
    await slow.settle()
    assert slow.fake.dms_to(BOB)[0].params["text"].startswith("Your ticket for Slow sale")


async def test_modal_is_acknowledged_while_the_database_is_slow(slow: Slack) -> None:
    view, name = await open_create_modal(slow)
    slow.db.gate.clear()
    response = await slow.submit(HOST, view, form())
    body = response.json()
    assert body["response_action"] == "update"  # "working on it" instead of the form
    assert body["view"]["blocks"][0]["text"]["text"] == "Announcing your Space…"
    await stalled(slow)
    assert slow.fake.called("views.update") == [] and slow.fake.responses(name) == []

    slow.db.gate.set()
    [updated] = await slow.fake.wait_for("views.update")
    assert updated.params["view_id"] == "VMODAL01"
    assert "Space #1 is announced." in updated.json("view")["blocks"][0]["text"]["text"]
    [reply] = await slow.fake.wait_for("response_url:" + name)
    assert reply.params["response_type"] == "ephemeral"  # the announcement is public


async def test_late_modal_error_shows_the_form_again(slow: Slack) -> None:
    view, _ = await open_create_modal(slow)
    response = await slow.submit(HOST, view, form(tickets={"value": "0"}))
    assert response.json()["response_action"] == "errors"  # checked before any database
    slow.db.gate.clear()
    response = await slow.submit(HOST, view, form(price={"value": "5"}))
    assert response.json()["response_action"] == "update"
    await stalled(slow)
    slow.db.gate.set()
    [updated] = await slow.fake.wait_for("views.update")
    again = updated.json("view")
    assert again["callback_id"] == "space_create"
    assert "Paid Spaces need billing" in again["blocks"][0]["text"]["text"]
    price = next(b for b in again["blocks"] if b.get("block_id") == "price")
    assert price["element"]["initial_value"] == "5"


async def test_event_is_acknowledged_while_the_database_is_slow(slow: Slack) -> None:
    slow.db.gate.clear()
    response = await slow.event({"type": "app_home_opened", "user": BOB, "tab": "home"})
    assert response.status_code == 200
    await stalled(slow)
    assert slow.fake.called("views.publish") == []
    slow.db.gate.set()
    [published] = await slow.fake.wait_for("views.publish")
    assert published.params["user_id"] == BOB


class SlowDispatcher(Dispatcher):
    """A dispatcher whose every command waits until the test lets it go."""

    def __init__(self, core: Core) -> None:
        super().__init__(core)
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.finished = asyncio.Event()

    async def handle(self, actor: Actor, text: str) -> Reply:
        self.started.set()
        await self.release.wait()
        reply = await super().handle(actor, text)
        self.finished.set()
        return reply


async def test_slow_dispatcher_answers_after_the_ack(make_slack: Any) -> None:
    slack: Slack = await make_slack(dispatcher=SlowDispatcher, ack_budget=0.2)
    dispatcher = slack.adapter.interactions.dispatcher
    assert isinstance(dispatcher, SlowDispatcher)
    response, name = await slack.command(HOST, "/tz")
    assert response.status_code == 200 and response.content == b""
    await asyncio.wait_for(dispatcher.started.wait(), 10)
    assert not dispatcher.finished.is_set()  # the ack came back before the work finished

    response, button = await slack.click(BOB, "run:0", "/help tz")
    assert response.status_code == 200 and response.content == b""
    assert not dispatcher.finished.is_set()

    dispatcher.release.set()
    [reply] = await slack.fake.wait_for("response_url:" + name)
    assert reply.params["text"].startswith("Your time zone is Europe/Berlin.")
    [reply] = await slack.fake.wait_for("response_url:" + button)
    assert reply.params["text"].startswith("Stagepass commands: /tz set Europe/Berlin")
