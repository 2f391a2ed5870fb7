"""The free-Space story through the in-memory chat, as people would type it."""

from __future__ import annotations

from adapters.shell.chat import Chat
from bot.core import Core
from bot.models import SpaceStatus


async def test_host_creates_listener_joins_moderator_runs_stage(chat: Chat, core: Core) -> None:
    reply = await chat.say(
        "alice",
        '/space create title:"Ask me anything" starts:"tomorrow 18:00" tickets:3 duration:60',
    )
    assert not reply.error, reply.text
    assert "Space #1 is announced" in reply.text
    assert chat.channel == ["New Space: #1 Ask me anything"]

    reply = await chat.say("bob", "/ticket buy 1")
    assert not reply.error, reply.text
    assert "You're in" in reply.text
    [dm] = chat.dms("bob")
    assert "Your ticket for Ask me anything" in dm
    token = dm.split("#token=")[1].split()[0]
    admission = await core.tickets.verify_token(token, space_id=1)
    assert admission.ticket is not None and admission.ticket.space_id == 1

    again = await chat.say("bob", "/ticket buy 1")
    assert again.error and "at most 1 ticket" in again.text

    assert not (await chat.say("alice", "/space start 1 confirm:yes")).error
    assert (await core.spaces.get(1)).status == SpaceStatus.LIVE
    assert not (await chat.say("bob", "/stage request")).error
    queue = await chat.say("alice", "/stage queue")
    assert "Raised hands: bob" in queue.text

    refused = await chat.say("carol", "/stage promote @bob")
    assert refused.error and "Only the host" in refused.text

    chat.person("mo", moderator=True)
    assert not (await chat.say("mo", "/stage promote @bob")).error
    assert any("You are now a speaker" in m for m in chat.dms("bob"))
    queue = await chat.say("alice", "/stage queue")
    assert "Speakers: bob" in queue.text and "Raised hands: none" in queue.text
    assert not (await chat.say("mo", "/stage demote @bob")).error
    assert "Speakers: none" in (await chat.say("alice", "/stage queue")).text
