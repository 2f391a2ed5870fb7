"""Linked communities in the core: a code from one side confirmed on the other, a Space
announced in both with one set of seats, and the refusal kept for unlinked communities."""

from __future__ import annotations

import re
from datetime import timedelta

from adapters.shell.chat import Chat
from bot.actors import Actor
from bot.clock import ManualClock
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.models import Platform
from bot.replies import Reply
from bot.services.communities import CODE_MINUTES

SLACK = Platform.SLACK


def slack(user: str, team: str = "T1") -> Actor:
    return Actor(SLACK, team, user, user, community_name=f"Acme {team}")


async def say(dispatcher: Dispatcher, core: Core, actor: Actor, text: str) -> Reply:
    reply = await dispatcher.handle(actor, text)
    await core.bus.drain()
    return reply


def code_of(reply: Reply) -> str:
    found = re.search(r"link code is ([A-Z0-9]+)", reply.text)
    assert found is not None, reply.text
    return found[1]


async def link(chat: Chat, dispatcher: Dispatcher, core: Core) -> None:
    made = await chat.say("alice", "/community link")
    assert not made.error, made.text
    done = await say(dispatcher, core, slack("UHOST"), f"/community link {code_of(made)}")
    assert not done.error and "Linked with Shell (shell)" in done.text, done.text


async def test_link_both_sides_then_one_space_sells_one_set_of_seats(
    chat: Chat, dispatcher: Dispatcher, core: Core
) -> None:
    await link(chat, dispatcher, core)
    listed = await say(dispatcher, core, slack("UBOB"), "/community links")
    assert "Shell (shell) — shell:local" in listed.text
    assert "Acme T1 (slack) — slack:T1" in (await chat.say("bob", "/community links")).text

    created = await chat.say(
        "alice", '/space create title:"Both sides" starts:"tomorrow 18:00" tickets:2 also:slack'
    )
    assert not created.error, created.text
    assert "announced in Acme T1 (slack) too" in created.text
    assert chat.channel == ["New Space: #1 Both sides"]
    assert await core.communities.shown_in(await core.spaces.get(1)) == ("shell:local", "slack:T1")
    listed = await say(dispatcher, core, slack("UBOB"), "/space list")
    assert "#1 Both sides" in listed.text

    # a buyer on each side takes the two seats; the third is refused, on either side
    assert "You're in" in (await say(dispatcher, core, slack("UBOB"), "/ticket buy 1")).text
    assert "You're in" in (await chat.say("bob", "/ticket buy 1")).text
    for refused in (
        await say(dispatcher, core, slack("UCAROL"), "/ticket buy 1"),
        await chat.say("carol", "/ticket buy 1"),
    ):
        assert refused.error and refused.text.startswith("Space #1 is sold out.")
    space = await core.spaces.get(1)
    assert (space.sold, space.capacity) == (2, 2)

    # one room: both holders' tokens admit them to Space #1
    bob_dm = chat.dms("bob")[0]
    token = bob_dm.split("#token=")[1].split()[0]
    assert (await core.tickets.verify_token(token, space_id=1)).ticket is not None

    # a workspace that is not linked still hears "There is no Space here"
    stranger = await say(dispatcher, core, slack("UX", team="T9"), "/ticket buy 1")
    assert stranger.error and stranger.text == "There is no Space #1 here."
    info = await say(dispatcher, core, slack("UX", team="T9"), "/space info 1")
    assert info.error and info.text == "There is no Space #1 here."


async def test_codes_work_once_expire_and_unlink_stops_new_shares(
    chat: Chat, dispatcher: Dispatcher, core: Core, clock: ManualClock
) -> None:
    made = await chat.say("alice", "/community link")
    own = await chat.say("bob", f"/community link {code_of(made)}")
    assert own.error and "enter it in the other one" in own.text

    late = await chat.say("alice", "/community link")
    clock.advance(timedelta(minutes=CODE_MINUTES + 1))
    expired = await say(dispatcher, core, slack("UHOST"), f"/community link {code_of(late)}")
    assert expired.error and "unknown or has expired" in expired.text

    fresh = await chat.say("alice", "/community link")
    code = code_of(fresh)
    assert not (await say(dispatcher, core, slack("UHOST"), f"/community link {code}")).error
    again = await say(dispatcher, core, slack("UHOST"), f"/community link {code}")
    assert again.error and "unknown or has expired" in again.text

    not_linked = await chat.say(
        "alice", '/space create title:"X" starts:"tomorrow 18:00" tickets:2 also:discord'
    )
    assert not_linked.error and "No linked community is called 'discord'" in not_linked.text
    same_platform = await chat.say(
        "alice", '/space create title:"X" starts:"tomorrow 18:00" tickets:2 also:shell'
    )
    assert same_platform.error

    gone = await say(dispatcher, core, slack("UHOST"), "/community unlink shell")
    assert not gone.error and "no longer linked with Shell (shell)" in gone.text
    refused = await chat.say(
        "alice", '/space create title:"X" starts:"tomorrow 18:00" tickets:2 also:slack'
    )
    assert refused.error and "not linked with any other" in refused.text


async def test_linking_needs_host_rights(chat: Chat, core: Core) -> None:
    from bot.services.eligibility import HostEligibility

    core.spaces.eligibility = HostEligibility(["moderators"])
    refused = await chat.say("bob", "/community link")
    assert refused.error and "Only moderators can host" in refused.text
    chat.person("mo", moderator=True)
    assert not (await chat.say("mo", "/community link")).error
