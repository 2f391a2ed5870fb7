"""The core's trust rules, through the in-memory chat: refusals that say what to do next,
a live Space cancelled only when confirmed, early starts confirmed, one stage-seat rule
(removal, undo, revoked speakers), and changes told to every ticket holder."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import sqlalchemy as sa

from adapters.shell.chat import Chat
from bot.clock import ManualClock
from bot.core import Core
from bot.events import SpaceCancelled, SpaceUpdated
from bot.models import AuditEntry, SpaceStatus, TicketStatus
from bot.services.stage import SeatRole

# two days after the test clock's now (2030-01-01 12:00 UTC), in UTC (the shell's zone)
CREATE = '/space create title:"Show" starts:"2030-01-03 18:00" tickets:20'


async def _ok(chat: Chat, who: str, text: str) -> str:
    reply = await chat.say(who, text)
    assert not reply.error, reply.text
    return reply.text


async def _live_with_listeners(chat: Chat, clock: ManualClock, *listeners: str) -> None:
    await _ok(chat, "alice", CREATE)
    for name in listeners:
        await _ok(chat, name, "/ticket buy 1")
    clock.set(clock.now().replace(day=3, hour=17, minute=55))
    await _ok(chat, "alice", "/space start 1")


async def _audit_count(core: Core) -> int:
    async with core.db.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(AuditEntry)
        return int((await conn.execute(query)).scalar_one())


# --- refusals ---------------------------------------------------------------------------


async def test_a_live_space_is_cancelled_only_with_confirm_and_refunds_once(
    chat: Chat, core: Core, clock: ManualClock
) -> None:
    cancelled: list[SpaceCancelled] = []

    async def seen(event: SpaceCancelled) -> None:
        cancelled.append(event)

    core.bus.subscribe(SpaceCancelled, seen)
    await _live_with_listeners(chat, clock, "bob", "carol")
    before = await _audit_count(core)

    refused = await chat.say("alice", '/space cancel 1 reason:"Power cut"')
    assert refused.error
    assert refused.text == (
        "Space #1 is live, so it can't be cancelled; use /space end 1, or add confirm:yes "
        "to end it and refund every ticket."
    )
    assert (await core.spaces.get(1)).status == SpaceStatus.LIVE
    assert await _audit_count(core) == before

    done = await _ok(chat, "alice", '/space cancel 1 reason:"Power cut" confirm:yes')
    assert done.startswith("Space #1 is cancelled. It was live and has ended. 2 ticket(s)")
    space = await core.spaces.get(1)
    assert space.status == SpaceStatus.CANCELLED and space.ended_at is not None
    assert [(e.reason, e.was_live) for e in cancelled] == [("Power cut", True)]
    for name in ("bob", "carol"):
        holder = await core.identities.ensure(chat.actor(name))
        assert holder.id is not None
        tickets = await core.tickets.tickets_of(holder.id, 1, valid_only=False)
        assert [t.status for t in tickets] == [TicketStatus.REVOKED]  # free: voided, once
        assert any("Power cut" in dm for dm in chat.dms(name)), chat.dms(name)
    assert "Cancelled: #1 Show (Power cut)" in chat.channel
    info = await _ok(chat, "bob", "/space info 1")
    assert "Status: cancelled (Power cut)" in info

    again = await chat.say("alice", "/space cancel 1 confirm:yes")
    assert again.error and again.text == (
        "Space #1 was cancelled, so it can't be cancelled; announce a new one with /space create."
    )
    assert len(cancelled) == 1


async def test_state_refusals_say_what_to_do_next(
    chat: Chat, core: Core, clock: ManualClock
) -> None:
    await _ok(chat, "alice", CREATE)
    for command, expected in [
        (
            "/space end 1",
            "Space #1 has not started yet, so it can't be ended; start it with "
            "/space start 1, or cancel it with /space cancel 1.",
        ),
        (
            "/stage promote @bob space:1",
            "Space #1 has not started yet, so its stage can't be run; the stage opens when "
            "it starts (/space start 1).",
        ),
    ]:
        reply = await chat.say("alice", command)
        assert reply.error and reply.text == expected
    clock.set(clock.now().replace(day=3, hour=17, minute=50))
    await _ok(chat, "alice", "/space start 1")
    reply = await chat.say("alice", '/space edit 1 starts:"2030-01-04 18:00"')
    assert reply.error and "/space end 1" in reply.text
    await _ok(chat, "alice", "/space end 1")
    reply = await chat.say("alice", '/space edit 1 title:"Encore"')
    assert reply.error and reply.text == (
        "Space #1 has ended, so it can't be edited; announce a new one with /space create."
    )
    for who, command, expected in [
        (
            "bob",
            "/ticket buy 1",
            "Space #1 has ended, so its tickets are not on sale; see what is coming up with "
            "/space list.",
        ),
        (
            "bob",
            "/remind on 1",
            "Space #1 has ended, so there is nothing to be reminded of; see what is coming "
            "up with /space list.",
        ),
        (
            "alice",
            "/stage queue",
            "No Space is live here right now; name one, e.g. space:12.",
        ),
    ]:
        reply = await chat.say(who, command)
        assert reply.error and reply.text == expected, reply.text


async def test_starting_long_before_the_announced_time_needs_confirm(
    chat: Chat, core: Core, clock: ManualClock
) -> None:
    await _ok(chat, "alice", CREATE)
    await _ok(chat, "bob", "/ticket buy 1")
    await _ok(chat, "alice", "/space cohost add 1 @carol")
    clock.set(clock.now().replace(day=3, hour=17, minute=0))  # an hour early

    refused = await chat.say("carol", "/space start 1")
    assert refused.error and refused.text == (
        "Space #1 is announced to start in 1h; starting now tells every ticket holder it "
        "started early. To go ahead, use /space start 1 confirm:yes."
    )
    assert (await core.spaces.get(1)).status == SpaceStatus.SCHEDULED
    assert (await chat.say("mallory", "/space start 1")).text.startswith("Only ")

    await _ok(chat, "carol", "/space start 1 confirm:yes")
    assert (await core.spaces.get(1)).status == SpaceStatus.LIVE
    [early] = [dm for dm in chat.dms("bob") if "started early" in dm]
    assert "announced for" in early and "(1h from now)" in early
    # the host hears that a co-host started (and, later, ended) their Space
    assert "carol started your Space Show (#1)." in chat.dms("alice")
    await _ok(chat, "carol", "/space end 1")
    assert "carol ended your Space Show (#1)." in chat.dms("alice")
    assert "Show (#1) has ended. Thanks for listening!" in chat.dms("bob")


async def test_within_fifteen_minutes_no_confirmation_is_asked(
    chat: Chat, core: Core, clock: ManualClock
) -> None:
    await _ok(chat, "alice", CREATE)
    await _ok(chat, "bob", "/ticket buy 1")
    clock.set(clock.now().replace(day=3, hour=17, minute=45))
    await _ok(chat, "alice", "/space start 1")
    assert not [dm for dm in chat.dms("bob") if "started early" in dm]
    assert not [dm for dm in chat.dms("alice") if "started your Space" in dm]


# --- changes reach ticket holders -------------------------------------------------------


async def test_a_new_time_and_title_are_told_to_every_holder_in_their_zone(
    chat: Chat, core: Core
) -> None:
    updates: list[SpaceUpdated] = []

    async def seen(event: SpaceUpdated) -> None:
        updates.append(event)

    core.bus.subscribe(SpaceUpdated, seen)
    await _ok(chat, "alice", CREATE)
    await _ok(chat, "bob", "/ticket buy 1")
    await _ok(chat, "bob", "/tz set Europe/Berlin")
    await _ok(chat, "carol", "/ticket buy 1")

    reply = await _ok(chat, "alice", '/space edit 1 title:"Late show" starts:"2030-01-03 20:00"')
    assert reply.startswith("Updated:\nTitle: Show → Late show\nStarts: ")
    [event] = updates
    assert {(c.name, c.old, c.new) for c in event.changes if c.name == "title"} == {
        ("title", "Show", "Late show")
    }
    starts = next(c for c in event.changes if c.name == "starts_at")
    assert starts.new - starts.old == timedelta(hours=2)

    [bob] = [dm for dm in chat.dms("bob") if "changed" in dm]
    assert bob.startswith("Late show (#1), which you have a ticket for, changed:")
    assert "Title: Show → Late show" in bob and "19:00" in bob and "21:00" in bob  # Berlin
    [carol] = [dm for dm in chat.dms("carol") if "changed" in dm]
    assert "18:00" in carol and "20:00" in carol  # UTC
    assert not [dm for dm in chat.dms("alice") if "changed" in dm]  # she made the change

    # a change holders need not hear of (more tickets) is not DMed
    await _ok(chat, "alice", "/space edit 1 tickets:30")
    assert len([dm for dm in chat.dms("bob") if "changed" in dm]) == 1


# --- one stage-seat rule ----------------------------------------------------------------


async def test_a_removed_listener_shows_as_removed_until_allowed_back(
    chat: Chat, core: Core, clock: ManualClock
) -> None:
    await _live_with_listeners(chat, clock, "bob")
    await _ok(chat, "alice", "/stage remove @bob")

    shown = await chat.say("bob", "/ticket show")
    assert "removed from the stage by a moderator" in shown.text
    assert "/stage allow" in shown.text
    assert [b.label[:6] for b in shown.buttons] == ["Manage"]  # no join link while removed
    space = await core.spaces.get(1)
    bob = await core.identities.ensure(chat.actor("bob"))
    seat = await core.stage.seat(space, bob)
    assert (seat.removed, seat.may_listen, seat.may_speak) == (True, False, False)
    refused = await chat.say("bob", "/stage request")
    assert refused.error and "/stage allow" in refused.text
    refused = await chat.say("alice", "/stage promote @bob")
    assert refused.error and "let them back in with /stage allow" in refused.text

    assert await _ok(chat, "alice", "/stage allow @bob") == "bob may join the Space's stage again."
    assert any("let you back into Show" in dm for dm in chat.dms("bob"))
    seat = await core.stage.seat(space, bob)
    assert (seat.removed, seat.may_listen, seat.role) == (False, True, SeatRole.LISTENER)
    shown = await chat.say("bob", "/ticket show")
    assert "removed" not in shown.text and [b.label[:6] for b in shown.buttons] == [
        "Join #",
        "Manage",
    ]
    again = await chat.say("alice", "/stage allow @bob")
    assert again.error and "nothing to undo" in again.text


async def test_a_speaker_whose_ticket_is_revoked_leaves_the_speaker_list(
    chat: Chat, core: Core, clock: ManualClock
) -> None:
    await _live_with_listeners(chat, clock, "bob", "carol")
    await _ok(chat, "alice", "/stage promote @bob")
    await _ok(chat, "alice", "/stage promote @carol")
    assert [s.identity.user_id for s in (await core.stage.state(1)).speakers] == ["bob", "carol"]

    bob = await core.identities.ensure(chat.actor("bob"))
    assert bob.id is not None
    [ticket] = await core.tickets.tickets_of(bob.id, 1)
    await _ok(chat, "alice", f"/ticket refund {ticket.id}")
    again = await chat.say("alice", f"/ticket refund {ticket.id}")
    assert again.error and again.text == (
        f"Ticket {ticket.id} is already revoked; there is nothing left to refund."
    )

    assert [s.identity.user_id for s in (await core.stage.state(1)).speakers] == ["carol"]
    seat = await core.stage.seat(await core.spaces.get(1), bob)
    assert (seat.role, seat.may_speak, seat.may_listen) == (SeatRole.LISTENER, False, False)
    queue = await _ok(chat, "alice", "/stage queue")
    assert "Speakers: carol" in queue


async def test_hosts_and_moderators_are_seated_by_the_same_rule(chat: Chat, core: Core) -> None:
    await _ok(chat, "alice", CREATE)
    await _ok(chat, "alice", "/space cohost add 1 @carol")
    space = await core.spaces.get(1)
    alice = await core.identities.ensure(chat.actor("alice"))
    carol = await core.identities.ensure(chat.actor("carol"))
    mo = await core.identities.ensure(chat.actor("mo"))
    host, cohost = await core.stage.seat(space, alice), await core.stage.seat(space, carol)
    assert (host.role, host.may_speak, host.may_listen) == (SeatRole.HOST, True, True)
    assert (cohost.role, cohost.may_speak) == (SeatRole.COHOST, True)
    stranger = await core.stage.seat(space, mo)
    assert (stranger.may_listen, stranger.may_speak) == (False, False)
    moderator = await core.stage.seat(space, mo, moderator=True)
    assert (moderator.role, moderator.may_listen, moderator.may_speak) == (
        SeatRole.LISTENER,
        True,
        False,
    )


async def test_everyone_on_a_stage_is_seated_at_once_by_the_same_rule(
    chat: Chat, core: Core, clock: ManualClock
) -> None:
    """`seats_of` (the Discord Stage's re-check of everyone on it) answers as `seat_of`
    does for each person, in their order, in the seat rule's three queries for all."""
    await _live_with_listeners(chat, clock, "bob")
    await _ok(chat, "alice", "/space cohost add 1 @carol")
    space = await core.spaces.get(1)
    names = ("alice", "bob", "carol", "dave", "mo")
    actors = [chat.actor(n) for n in names]
    actors[-1] = replace(actors[-1], is_moderator=True)
    one_by_one = [await core.stage.seat_of(a, space) for a in actors]
    statements: list[str] = []

    def on_statement(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    engine = core.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", on_statement)
    try:
        at_once = await core.stage.seats_of(actors, space)
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_statement)
    assert at_once == one_by_one
    assert [(s.role, s.may_listen) for s in at_once] == [
        (SeatRole.HOST, True),
        (SeatRole.LISTENER, True),  # a ticket
        (SeatRole.COHOST, True),
        (SeatRole.LISTENER, False),  # no ticket
        (SeatRole.LISTENER, True),  # a moderator
    ]
    assert len(statements) == 3
