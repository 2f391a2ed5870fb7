"""Numbers typed in chat past what a database column holds: an id no row can have (a Space,
a recording part) or a count (tickets, uses) beyond PostgreSQL's INTEGER. Each is refused
with a clear reply naming what is wrong (the usage follows it), never a database error
('something went wrong'), on SQLite and on PostgreSQL, where they failed. Slots:
tests/scheduler/test_slots.py."""

from __future__ import annotations

import pytest

from adapters.shell.chat import Chat
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.models import MAX_ID

PAST = MAX_ID + 1
HUGE = [
    (f"/space info {PAST}", f"'{PAST}' is not a Space number."),
    (f"/space info #{PAST}", f"'#{PAST}' is not a Space number."),
    (f"/ticket buy {PAST}", f"'{PAST}' is not a Space number."),
    (f"/space replays 1 delete:{PAST}", f"delete: must be at most {MAX_ID:,}."),
    (f"/ticket buy 1 quantity:{PAST}", f"quantity: must be at most {MAX_ID:,}."),
    (f"/space invite 1 uses:{PAST}", f"uses: must be at most {MAX_ID:,}."),
]


async def refuses_huge_numbers(chat: Chat, core: Core) -> None:
    made = await chat.say("alice", '/space create title:"Launch" starts:"in 2 days" tickets:5')
    assert not made.error, made.text
    for line, said in HUGE:
        reply = await chat.say("alice", line)
        assert reply.error and reply.text.startswith(said), (line, reply.text)
    missing = await chat.say("alice", f"/space info {MAX_ID}")
    assert missing.text == f"There is no Space #{MAX_ID}."
    assert not (await chat.say("bob", "/ticket buy 1")).error  # the next command runs


async def test_numbers_past_a_column_are_refused_in_chat(chat: Chat, core: Core) -> None:
    await refuses_huge_numbers(chat, core)


@pytest.mark.postgres
async def test_numbers_past_a_column_never_reach_postgres(pg_core: Core) -> None:
    await refuses_huge_numbers(Chat(pg_core, Dispatcher(pg_core)), pg_core)
