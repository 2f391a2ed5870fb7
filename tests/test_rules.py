"""Bad input and forbidden actions get a clear message in chat and change nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from adapters.shell.chat import Chat
from bot.core import Core
from bot.models import AuditEntry, Space, SpaceCohost, StageMember

CREATE = '/space create title:"Show" starts:"tomorrow 18:00" tickets:20'


async def _counts(core: Core) -> tuple[int, ...]:
    counts = []
    async with core.db.engine.connect() as conn:
        for table in (Space, AuditEntry, SpaceCohost, StageMember):
            query = sa.select(sa.func.count()).select_from(table)
            counts.append((await conn.execute(query)).scalar_one())
    return tuple(counts)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (CREATE + " price:-3", "cannot be negative"),
        (CREATE + " price:5000000", "above the limit"),
        (CREATE + " price:0.10", "lowest price"),
        (CREATE + " currency:xyz", "Unknown currency"),
        ('/space create title:"Show" starts:"tomorrow 18:00" tickets:0', "at least 1 ticket"),
        ('/space create title:"Show" starts:"tomorrow 18:00" tickets:10001', "at most 10,000"),
        ('/space create title:"Show" starts:"2020-01-01 10:00" tickets:5', "in the past"),
        (
            '/space create title:"' + "x" * 101 + '" starts:"tomorrow 18:00" tickets:5',
            "limit is 100",
        ),
        (CREATE + " duration:100000", "duration must be"),
        (CREATE + " limit:50", "per buyer"),
        ("/space info 99", "no Space #99"),
        ("/ticket buy 99", "no Space #99"),
    ],
)
async def test_bad_space_input_is_refused_and_nothing_changes(
    chat: Chat, core: Core, command: str, message: str
) -> None:
    before = await _counts(core)
    reply = await chat.say("alice", command)
    assert reply.error
    assert message in reply.text
    assert await _counts(core) == before


async def test_paid_space_needs_billing_until_it_is_configured(chat: Chat) -> None:
    reply = await chat.say("alice", CREATE + " price:5")
    assert reply.error and "billing" in reply.text


async def test_only_the_host_edits_and_only_staff_run_the_stage(chat: Chat, core: Core) -> None:
    assert not (await chat.say("alice", CREATE)).error
    before = await _counts(core)
    for who, command, message in [
        ("mallory", '/space edit 1 title:"Mine now"', "Only the host can edit"),
        ("mallory", "/space cancel 1", "Only the host and moderators can cancel"),
        ("mallory", "/space start 1", "can start"),
        ("mallory", "/space cohost add 1 @mallory", "Only the host can change co-hosts"),
    ]:
        reply = await chat.say(who, command)
        assert reply.error and message in reply.text, reply.text
    assert await _counts(core) == before
    assert (await core.spaces.get(1)).title == "Show"


async def test_a_third_cohost_is_refused(chat: Chat, core: Core) -> None:
    assert not (await chat.say("alice", CREATE)).error
    assert not (await chat.say("alice", "/space cohost add 1 @bob")).error
    assert not (await chat.say("alice", "/space cohost add 1 @carol")).error
    before = await _counts(core)
    reply = await chat.say("alice", "/space cohost add 1 @dave")
    assert reply.error and "at most 2 co-hosts" in reply.text
    assert await _counts(core) == before


async def test_an_eleventh_speaker_is_refused(chat: Chat, core: Core) -> None:
    assert not (await chat.say("alice", CREATE)).error
    listeners = [f"l{i}" for i in range(11)]
    for name in listeners:
        assert not (await chat.say(name, "/ticket buy 1")).error
    assert not (await chat.say("alice", "/space start 1 confirm:yes")).error
    for name in listeners[:10]:
        reply = await chat.say("alice", f"/stage promote @{name}")
        assert not reply.error, reply.text
    before = await _counts(core)
    reply = await chat.say("alice", "/stage promote @l10")
    assert reply.error and "stage is full" in reply.text
    assert await _counts(core) == before
    state = await core.stage.state(1)
    assert len(state.speakers) == 10


async def test_promoting_someone_without_a_ticket_is_refused(chat: Chat) -> None:
    assert not (await chat.say("alice", CREATE)).error
    assert not (await chat.say("alice", "/space start 1 confirm:yes")).error
    reply = await chat.say("alice", "/stage promote @stranger")
    assert reply.error and "no ticket" in reply.text


async def test_cancel_voids_free_tickets_once_and_tells_holders(chat: Chat, core: Core) -> None:
    assert not (await chat.say("alice", CREATE)).error
    for name in ("bob", "carol"):
        assert not (await chat.say(name, "/ticket buy 1")).error
    reply = await chat.say("alice", '/space cancel 1 reason:"Host is ill"')
    assert not reply.error and "2 ticket(s)" in reply.text
    assert any("was cancelled" in dm for dm in chat.dms("bob"))
    again = await chat.say("alice", "/space cancel 1")
    assert again.error and "cancelled" in again.text
    space = await core.spaces.get(1)
    assert space.sold == 0
    assert "no valid tickets" in (await chat.say("bob", "/ticket show")).text
