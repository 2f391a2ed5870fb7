"""A NUL character (U+0000) typed in chat: PostgreSQL stores none, so a title, a reason or
a promo code holding one failed in the database (a logged 'something went wrong', or a
500). Refused now before the command runs, naming the field, from every adapter (text
commands and Discord's typed options alike); a name a platform gives is cleaned instead.
On SQLite, and on PostgreSQL where the failures were."""

from __future__ import annotations

import pytest

from adapters.shell.chat import Chat
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.errors import NUL_MESSAGE
from tests.fakes.payments import FakeGateway

CREATE = '/space create title:"{title}" starts:"in 2 days" tickets:5 price:10 description:"{d}"'
TYPED = [
    (CREATE.format(title="a\x00b", d="fine"), "title"),
    (CREATE.format(title="fine", d="\x00"), "description"),
    ('/space edit 1 title:"x\x00"', "title"),
    ('/space cancel 1 reason:"gone\x00"', "reason"),
    ("/tz set Europe/Ber\x00lin", "zone"),
]


async def refuses_nul(chat: Chat, core: Core) -> None:
    made = await chat.say("alice", CREATE.format(title="Launch", d="fine"))
    assert not made.error, made.text
    for line, field in TYPED:
        reply = await chat.say("alice", line)
        assert reply.error, (field, reply.text)
        assert reply.text == f"{field}: {NUL_MESSAGE}", reply.text
        assert reply.error_field == field
    space = await core.spaces.get(1)
    assert (space.title, space.status.value, space.description) == ("Launch", "scheduled", "fine")
    assert not (await chat.say("bob", "/ticket buy 1")).error  # the next command runs
    assert [s.title for s in await core.spaces.list_spaces(chat.community_id)] == ["Launch"]


async def test_a_nul_character_typed_in_chat_is_refused_naming_the_field(
    chat: Chat, core: Core
) -> None:
    core.use_payments(FakeGateway())
    await refuses_nul(chat, core)


@pytest.mark.postgres
async def test_a_nul_character_typed_in_chat_never_reaches_postgres(pg_core: Core) -> None:
    pg_core.use_payments(FakeGateway())
    await refuses_nul(Chat(pg_core, Dispatcher(pg_core)), pg_core)
