"""One Space across a Discord server and a Slack workspace: linked from both sides,
announced in both at once, bought from both until sold out, one room, one cancel."""

from __future__ import annotations

import re

import pytest

from bot.actors import Actor
from bot.errors import PermissionDenied
from bot.models import Platform, SpaceStatus
from tests.linked.conftest import Both
from tests.slack.conftest import BOB, CAROL, EVE, HOST
from tests.slack.fake_slack import TEAM
from tests.slack.test_commands import texts
from tests.slack.test_story import announcements, buy

TOKEN = re.compile(r"http://stagepass\.test/rooms/1#token=([\w.~%-]+)")


async def test_one_space_in_discord_and_slack(both: Both) -> None:
    core, fake, server, slack, bot = both.core, both.fake, both.server, both.slack, both.discord
    guild, alice = server.guild, server.host

    # the host links the server and the workspace: a code in Discord, entered in Slack
    made = await bot.answer(await fake.slash(guild, alice, "community link"))
    assert made.ephemeral
    code = re.search(r"link code is ([A-Z0-9]+)", made.text())
    assert code is not None, made.text()
    response, name = await slack.command(HOST, "/community", f"link {code[1]}")
    linked = await slack.answer(response, name)
    assert "Linked with Stagepass HQ (discord)" in linked["text"], linked
    listed = await bot.answer(await fake.slash(guild, alice, "community links"))
    assert re.search(r"\(slack\) — slack:T\w+", listed.text()), listed.text()

    # one command announces the Space in both
    created = await bot.answer(
        await fake.slash(
            guild,
            alice,
            "space create",
            title="Both sides",
            starts="tomorrow 18:00",
            tickets=3,
            also="slack",
        )
    )
    assert "Space #1 is announced. It is announced in" in created.text(), created.text()
    await both.settle()
    [in_discord] = fake.channel_messages(server.announce)
    assert "Tickets left: 3 of 3" in in_discord.text()
    first_post = announcements(slack, 1)[0]
    assert "Both sides" in texts(first_post) and "3 of 3" in texts(first_post)
    assert "*Host*\nalice" in texts(first_post)  # named: she is not in this workspace

    # buyers on both sides take the same three seats
    bought = await bot.answer(await fake.click(guild, server.bob, in_discord, "Get ticket"))
    assert "You're in!" in bought.text()
    assert (await buy(slack, BOB, 1)).startswith("You're in!")
    assert "Tickets left: 1 of 3" in in_discord.text()  # a Slack sale shows in Discord
    assert (await buy(slack, CAROL, 1)).startswith("You're in!")
    await both.settle()

    # sold out: the last buyer is refused on either side, and both announcements say so
    assert (await buy(slack, EVE, 1)).startswith("Space #1 is sold out.")
    await both.settle()
    assert "Tickets left: Sold out" in in_discord.text()
    assert in_discord.button("Sold out").get("disabled")
    refused = await bot.answer(await fake.slash(guild, server.dave, "ticket buy", space=1))
    assert refused.ephemeral and "Space #1 is sold out." in refused.text()
    assert "Sold out" in texts(announcements(slack, 1)[-1])
    space = await core.spaces.get(1)
    assert (space.sold, space.capacity) == (3, 3)

    # one room: the join links of holders from both sides open the same room
    from_discord = TOKEN.search(str(fake.dms(server.bob)[0].components))
    [slack_dm] = slack.fake.dms_to(BOB)
    from_slack = TOKEN.search(str(slack_dm.params["blocks"]))
    assert from_discord is not None and from_slack is not None
    holders = set()
    for match in (from_discord, from_slack):
        admitted = await core.tickets.verify_token(match[1], space_id=1)
        assert admitted.ticket is not None and admitted.ticket.space_id == 1
        holders.add(admitted.ticket.holder_id)
    assert len(holders) == 2

    # live: one stage queue; a Slack holder's raised hand is seen by the Discord moderator
    started = await bot.answer(await fake.slash(guild, alice, "space start", space=1, confirm=True))
    assert "is live" in started.text()
    response, name = await slack.command(BOB, "/stage", "request space:1")
    assert "You asked to speak" in (await slack.answer(response, name))["text"]
    queue = await bot.answer(await fake.slash(guild, server.mo, "stage queue", space=1))
    assert "Raised hands: Bob" in queue.text(), queue.text()
    # a Slack admin moderates the shared stage; the new speaker is told of on both sides
    response, name = await slack.command(CAROL, "/stage", f"promote <@{BOB}> space:1")
    assert "is now a speaker" in (await slack.answer(response, name))["text"]
    await both.settle()
    posts = [m.text() for m in fake.channel_messages(server.announce)]
    assert "🎙️ Bob is now a speaker in **Both sides**." in posts, posts
    threads = [c.params["text"] for c in slack.fake.called("chat.postMessage")]
    assert any(f"<@{BOB}> is now a speaker" in text for text in threads), threads
    space = await core.spaces.get(1)
    for holder in (Actor(Platform.SLACK, TEAM, BOB), Actor(Platform.DISCORD, str(guild.id),
                   str(server.bob.user.id))):  # fmt: skip
        await core.stage.admit(holder, space)  # both let into the one room
    with pytest.raises(PermissionDenied):
        await core.stage.admit(Actor(Platform.SLACK, TEAM, EVE), space)

    # a cancel reaches the holders on both sides and both announcements
    cancelled = await bot.answer(
        await fake.slash(guild, alice, "space cancel", space=1, reason="Host is ill", confirm=True)
    )
    assert "Space #1 is cancelled" in cancelled.text(), cancelled.text()
    await both.settle()
    assert (await core.spaces.get(1)).status == SpaceStatus.CANCELLED
    assert any("cancelled" in m.text().lower() for m in fake.dms(server.bob)[1:])
    for user in (BOB, CAROL):
        assert any("cancelled" in dm.params["text"].lower() for dm in slack.fake.dms_to(user)[1:])
    assert "Cancelled" in in_discord.text() and in_discord.components == []
    assert "Cancelled" in texts(announcements(slack, 1)[-1])
    assert fake.unknown == []


async def test_a_workspace_not_linked_hears_there_is_no_space_here(both: Both) -> None:
    fake, server, slack, bot = both.fake, both.server, both.slack, both.discord
    await bot.answer(
        await fake.slash(
            server.guild, server.host, "space create", title="Ours", starts="tomorrow 18:00",
            tickets=3,
        )
    )  # fmt: skip
    assert await buy(slack, BOB, 1) == "There is no Space #1 here."
    assert announcements(slack, 1) == []
    also = await bot.answer(
        await fake.slash(
            server.guild, server.host, "space create", title="Theirs", starts="tomorrow 18:00",
            tickets=3, also="slack",
        )
    )  # fmt: skip
    assert "not linked with any other" in also.text()
