"""The core's trust rules through signed Slack requests: a price edit keeps the Space's
currency, a removal shows in /ticket show until /stage allow, changes reach ticket
holders by DM, and a live Space is cancelled only with confirm:yes."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import ManualClock
from bot.models import SpaceStatus
from tests.fakes.payments import StubPayments
from tests.slack.conftest import BOB, HOST, Slack
from tests.slack.test_commands import buttons, texts
from tests.slack.test_story import buy, create_space, home


async def _say(slack: Slack, user: str, command: str, text: str) -> dict[str, object]:
    response, name = await slack.command(user, command, text)
    reply = await slack.answer(response, name)
    await slack.settle()
    return reply


async def _go_live(slack: Slack, space_id: int) -> None:
    clock = slack.core.clock
    assert isinstance(clock, ManualClock)
    clock.set((await slack.core.spaces.get(space_id)).starts_at - timedelta(minutes=5))
    reply = await _say(slack, HOST, "/space", f"start {space_id}")
    assert reply["text"] == f"Space #{space_id} is live.", reply


async def test_a_price_edit_keeps_the_currency(slack: Slack) -> None:
    slack.core.use_payments(StubPayments())
    created = await _say(
        slack,
        HOST,
        "/space",
        'create title:"Chanson" starts:"2030-01-05 18:00" tickets:3 price:3 currency:eur',
    )
    assert "is announced" in str(created["text"])
    reply = await _say(slack, HOST, "/space", "edit 1 price:4")
    assert "Price: €3.00 → €4.00" in str(reply["text"])
    space = await slack.core.spaces.get(1)
    assert (space.price_minor, space.currency) == (400, "eur")


async def test_a_removal_shows_until_stage_allow(slack: Slack) -> None:
    space_id = await create_space(slack, "Open mic")
    await buy(slack, BOB, space_id)
    await _go_live(slack, space_id)

    removed = await _say(slack, HOST, "/stage", f"remove <@{BOB}|bob>")
    assert removed["text"] == f"<@{BOB}> was removed from the Space."  # a Slack mention
    shown = await _say(slack, BOB, "/ticket", "show")
    assert "removed from the stage by a moderator" in str(shown["text"])
    asked = await _say(slack, BOB, "/stage", "request")
    assert "/stage allow" in str(asked["text"])
    blocks = await home(slack, BOB)  # the App Home lists the ticket by the same seat rule
    assert "removed from the stage by a moderator" in texts(blocks)
    assert not [b for b in buttons(blocks) if b.get("text", {}).get("text") == "Join"]

    allowed = await _say(slack, HOST, "/stage", f"allow <@{BOB}|bob>")
    assert allowed["response_type"] == "ephemeral"  # every answer in Slack is the asker's
    assert allowed["text"] == f"<@{BOB}> may join the Space's stage again."
    shown = await _say(slack, BOB, "/ticket", "show")
    assert "removed" not in str(shown["text"])
    blocks = await home(slack, BOB)
    assert [b for b in buttons(blocks) if b.get("text", {}).get("text") == "Join"]
    assert any("let you back into Open mic" in c.params["text"] for c in slack.fake.dms_to(BOB))


async def test_a_new_start_time_reaches_holders_and_a_live_cancel_needs_confirm(
    slack: Slack,
) -> None:
    space_id = await create_space(slack, "Late talk")
    await buy(slack, BOB, space_id)
    await _say(slack, HOST, "/space", f'edit {space_id} starts:"2030-01-05 20:00"')
    [moved] = [c for c in slack.fake.dms_to(BOB) if "changed" in c.params["text"]]
    assert moved.params["text"].startswith("Late talk (#1), which you have a ticket for, changed:")
    assert "Starts: " in moved.params["text"] and " → " in moved.params["text"]

    await _go_live(slack, space_id)
    refused = await _say(slack, HOST, "/space", f"cancel {space_id}")
    assert refused["text"] == (
        f"Space #{space_id} is live, so it can't be cancelled; use /space end {space_id}, "
        "or add confirm:yes to end it and refund every ticket."
    )
    done = await _say(slack, HOST, "/space", f'cancel {space_id} reason:"Fire alarm" confirm:yes')
    assert "It was live and has ended." in str(done["text"])
    assert (await slack.core.spaces.get(space_id)).status == SpaceStatus.CANCELLED
    assert any("Fire alarm" in c.params["text"] for c in slack.fake.dms_to(BOB))
