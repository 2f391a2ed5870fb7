"""Slots: one-off and weekly series, created ahead; overlaps, horizon and limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from adapters.shell.chat import Chat
from bot.clock import ManualClock
from bot.core import Core
from bot.errors import NUL_MESSAGE
from bot.models import MAX_ID, Space, SpaceStatus, TicketStatus, Visibility
from scheduler.models import SlotSeries, SlotStatus
from scheduler.service import Scheduling
from tests.scheduler.helpers import at, say_ok

BERLIN = ZoneInfo("Europe/Berlin")


async def spaces(core: Core) -> list[Space]:
    async with core.db.session() as session:
        return list(await session.exec(select(Space).order_by(col(Space.starts_at))))


async def test_one_off_slot_creates_its_space(room: Chat, core: Core) -> None:
    text = await say_ok(
        room, "alice", '/slot add title:"AMA" starts:"2030-01-10 18:00" tickets:10 price:0'
    )
    assert text.splitlines()[0] == "Slot S1 booked: AMA, once, Thu 10 Jan 2030 at 18:00 (UTC)."
    assert "Spaces: #1 Thu 10 Jan 2030, 18:00 UTC." in text
    [space] = await spaces(core)
    assert space.title == "AMA" and space.capacity == 10


async def test_weekly_series_is_created_ahead_and_finishes(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    await say_ok(room, "alice", "/tz set Europe/Berlin")
    text = await say_ok(
        room,
        "alice",
        '/slot add title:"Weekly" starts:"2030-01-07 18:00" tickets:10 every:week '
        "days:mon,thu count:6",
    )
    assert "every week on Mon, Thu at 18:00 (Europe/Berlin), 6 times" in text
    made = await spaces(core)
    # 14 days ahead of Mon 7 Jan 09:00 UTC: Jan 7, 10, 14, 17 (Jan 21 18:00 is past it)
    assert [s.starts_at.astimezone(BERLIN).strftime("%a %d %H:%M") for s in made] == [
        "Mon 07 18:00",
        "Thu 10 18:00",
        "Mon 14 18:00",
        "Thu 17 18:00",
    ]
    # each materialised Space has its jobs
    assert set(await scheduling.jobs_of(made[0].id or 0)) >= {"remind:30", "start"}

    await at(clock, scheduling, clock.now() + timedelta(days=7))
    made = await spaces(core)
    assert len(made) == 6
    assert made[-1].starts_at.astimezone(BERLIN).strftime("%a %d %H:%M") == "Thu 24 18:00"
    async with core.db.session() as session:
        series = await session.get(SlotSeries, 1)
    assert series is not None and series.status == SlotStatus.FINISHED
    await at(clock, scheduling, clock.now() + timedelta(days=7))
    assert len(await spaces(core)) == 6


async def test_an_invite_only_slot_makes_invite_only_spaces(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    """`visibility:` was read by the grammar and dropped: the slot's Spaces were listed."""
    weekly = 'title:"Inner circle" starts:"2030-01-08 18:00" tickets:10 every:week'
    booked = (await say_ok(room, "alice", f"/slot add {weekly} visibility:invite")).splitlines()
    assert booked[0] == (
        "Slot S1 booked: Inner circle, every week on Tue at 18:00 (UTC), invite-only."
    )
    assert booked[-1] == "Its Spaces are not listed: share each with /space invite ID uses:N."
    await say_ok(room, "alice", '/slot add title:"Open" starts:"2030-01-09 18:00" tickets:10')
    await at(clock, scheduling, clock.now() + timedelta(days=7))  # the next ones, made later
    made = {(s.title, s.visibility) for s in await spaces(core)}
    assert made == {("Inner circle", Visibility.INVITE), ("Open", Visibility.PUBLIC)}
    assert len(await spaces(core)) == 4
    listed = await core.spaces.list_spaces(None, upcoming_only=False, listed_only=True)
    assert {s.title for s in listed} == {"Open"}
    refused = await room.say("alice", '/slot add title:"X" starts:"2030-01-11 18:00" visibility:x')
    assert refused.error and refused.text == "visibility: is public or invite."
    huge = await room.say("alice", f"/slot remove S{MAX_ID + 1}")  # past an INTEGER column
    assert huge.error and huge.text.startswith("Name the slot by its number"), huge.text
    nul = await room.say("alice", '/slot add title:"X\x00" starts:"2030-01-20 20:00" tickets:5')
    assert nul.error and nul.text == f"title: {NUL_MESSAGE}"  # as /space create's options


async def test_materialising_twice_at_once_creates_each_space_once(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    await say_ok(
        room,
        "alice",
        '/slot add title:"Weekly" starts:"2030-01-08 18:00" tickets:10 every:week',
    )
    assert len(await spaces(core)) == 2
    clock.advance(timedelta(days=7))
    await asyncio.gather(*(scheduling.slots.materialise_all() for _ in range(3)))
    await core.bus.drain()
    starts = [s.starts_at for s in await spaces(core)]
    assert len(starts) == 3 and len(set(starts)) == 3


async def test_overlap_with_a_space_is_refused_naming_it(room: Chat, core: Core) -> None:
    await say_ok(room, "alice", '/space create title:"Panel" starts:"2030-01-17 18:30" tickets:5')
    reply = await room.say(
        "alice",
        '/slot add title:"Weekly" starts:"2030-01-10 18:00" tickets:10 every:week days:thu',
    )
    assert reply.error
    assert reply.text == (
        "The Thu 17 Jan 2030, 18:00 UTC occurrence overlaps your Space #1 Panel "
        "(Thu 17 Jan 2030, 18:30 UTC–19:30). Pick another time or other days."
    )
    assert len(await spaces(core)) == 1
    # back to back is fine
    await say_ok(
        room,
        "alice",
        '/slot add title:"Weekly" starts:"2030-01-10 17:30" tickets:10 every:week days:thu '
        "duration:60",
    )


async def test_overlap_with_a_future_occurrence_of_another_series(room: Chat) -> None:
    await say_ok(
        room, "alice", '/slot add title:"Mondays" starts:"2030-01-07 18:00" tickets:5 every:week'
    )
    # three weeks out: Mondays' occurrence there is not a Space yet, but it is booked
    reply = await room.say(
        "alice", '/slot add title:"Late" starts:"2030-01-28 18:30" tickets:5 every:2weeks'
    )
    assert reply.error and "overlaps your slot S1 Mondays" in reply.text
    reply = await room.say(
        "alice", '/space create title:"One-off" starts:"2030-01-28 18:15" tickets:5'
    )
    assert reply.error and "That overlaps your slot S1 Mondays" in reply.text
    # another host may use the time
    await say_ok(room, "bob", '/space create title:"Bob" starts:"2030-01-28 18:15" tickets:5')


async def test_moving_a_space_onto_another_is_refused(room: Chat) -> None:
    await say_ok(room, "alice", '/space create title:"A" starts:"2030-01-10 18:00" tickets:5')
    await say_ok(room, "alice", '/space create title:"B" starts:"2030-01-11 18:00" tickets:5')
    reply = await room.say("alice", '/space edit 2 starts:"2030-01-10 18:45"')
    assert reply.error and "overlaps your Space #1 A" in reply.text
    await say_ok(room, "alice", "/space edit 1 duration:30")
    await say_ok(room, "alice", '/space edit 2 starts:"2030-01-10 18:45"')


async def test_horizon(room: Chat, core: Core) -> None:
    days = core.settings.slot_horizon_days
    assert days == 30
    reply = await room.say("alice", '/slot add title:"Far" starts:"2030-02-07 10:00" tickets:5')
    assert reply.error and "within 30 days" in reply.text
    reply = await room.say("alice", '/space create title:"Far" starts:"2030-02-07 10:00" tickets:5')
    assert reply.error and "at most 30 days ahead" in reply.text
    # a long series is fine: its Spaces are created as they come within reach
    await say_ok(
        room,
        "alice",
        '/slot add title:"Long" starts:"2030-01-08 10:00" tickets:5 every:week until:2030-12-31',
    )


async def test_per_host_limit(room: Chat, core: Core) -> None:
    assert core.settings.max_scheduled_per_host == 10
    reply = await room.say(
        "alice",
        '/slot add title:"Daily" starts:"2030-01-08 10:00" tickets:5 every:week '
        "days:mon,tue,wed,thu,fri,sat,sun",
    )
    assert reply.error
    assert reply.text == (
        "That would make 13 scheduled Spaces in the next 14 days; the limit is 10 per host."
    )
    for day in range(8, 18):
        await say_ok(
            room, "alice", f'/space create title:"S{day}" starts:"2030-01-{day} 10:00" tickets:5'
        )
    reply = await room.say(
        "alice", '/space create title:"Eleven" starts:"2030-01-20 10:00" tickets:5'
    )
    assert reply.error and "limit is 10" in reply.text


async def test_slot_list_in_the_viewers_zone(room: Chat) -> None:
    await say_ok(room, "alice", "/tz set America/New_York")
    await say_ok(
        room,
        "alice",
        '/slot add title:"Standup" starts:"2030-01-08 09:00" tickets:5 every:week count:3',
    )
    text = (await room.say("alice", "/slot list")).text
    assert text.splitlines() == [
        "S1 Standup — every week on Tue at 09:00 (America/New_York), 3 times",
        "    #1 Tue 8 Jan 2030, 09:00 EST",
        "    #2 Tue 15 Jan 2030, 09:00 EST",
        "    next to be created: Tue 22 Jan 2030, 09:00 EST",
    ]
    assert "no slots" in (await room.say("bob", "/slot list")).text


async def test_slot_list_says_which_slots_are_invite_only(room: Chat) -> None:
    await say_ok(
        room,
        "alice",
        '/slot add title:"Inner" starts:"2030-01-08 18:00" tickets:5 visibility:invite',
    )
    await say_ok(
        room, "alice", '/slot add title:"Open" starts:"2030-01-09 18:00" tickets:5 every:week'
    )
    heads = [
        line
        for line in (await room.say("alice", "/slot list")).text.splitlines()
        if line.startswith("S")
    ]
    assert heads == [
        "S1 Inner — once, Tue 8 Jan 2030 at 18:00 (UTC), invite-only (finished)",
        "S2 Open — every week on Wed at 18:00 (UTC)",
    ]


async def test_slot_remove_cancels_the_future_spaces_and_refunds(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    await say_ok(
        room, "alice", '/slot add title:"Weekly" starts:"2030-01-07 12:00" tickets:10 every:week'
    )
    await say_ok(room, "bob", "/ticket buy 2")
    await say_ok(room, "bob", "/ticket buy 1")
    await at(clock, scheduling, datetime(2030, 1, 7, 12, 0, tzinfo=UTC))  # #1 goes live
    refused = await room.say("bob", "/slot remove S1")
    assert refused.error and "Only the host" in refused.text
    text = await say_ok(room, "alice", "/slot remove S1")
    assert text == (
        "Slot S1 is removed. Cancelled 2 upcoming Space(s) (#2, #3); "
        "1 ticket(s) refunded or voided."
    )
    states = {s.id: s.status for s in await spaces(core)}
    assert states == {1: SpaceStatus.LIVE, 2: SpaceStatus.CANCELLED, 3: SpaceStatus.CANCELLED}
    tickets = await core.tickets.tickets_of(2, valid_only=False)
    assert [t.status for t in tickets if t.space_id == 2] == [TicketStatus.REVOKED]
    assert await scheduling.jobs_of(2) == {}
    await at(clock, scheduling, clock.now() + timedelta(days=21))
    assert len(await spaces(core)) == 3  # nothing more is created
    assert (await room.say("alice", "/slot remove S1")).error


async def test_a_later_clash_skips_the_occurrence_and_tells_the_host(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    await say_ok(
        room, "alice", '/slot add title:"Weekly" starts:"2030-01-07 18:00" tickets:5 every:week'
    )
    # a Space that got there outside the rules (made before the scheduler was installed)
    async with core.db.write() as session:
        session.add(
            Space(
                community_id="shell:local",
                host_id=1,
                title="Imported",
                starts_at=datetime(2030, 1, 21, 18, 0, tzinfo=UTC),
                duration_minutes=60,
                status=SpaceStatus.SCHEDULED,
                price_minor=0,
                currency="usd",
                capacity=5,
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
    await at(clock, scheduling, clock.now() + timedelta(days=7))
    [dm] = [m for m in room.dms("alice") if "could not be scheduled" in m]
    assert dm.startswith(
        "Your recurring slot Weekly could not be scheduled for Mon 21 Jan 2030, 18:00 UTC: "
        "That overlaps your Space #3 Imported"
    )


async def test_series_keeps_its_wall_clock_across_dst(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    clock.set(datetime(2030, 3, 20, 9, 0, tzinfo=UTC))
    await say_ok(room, "alice", "/tz set Europe/Berlin")
    await say_ok(
        room,
        "alice",
        '/slot add title:"Sunday" starts:"2030-03-24 18:00" tickets:5 every:week count:3',
    )
    await at(clock, scheduling, clock.now() + timedelta(days=7))
    made = await spaces(core)
    assert [s.starts_at.strftime("%d %H:%M") for s in made] == ["24 17:00", "31 16:00", "07 16:00"]
    assert {s.starts_at.astimezone(BERLIN).strftime("%H:%M %Z") for s in made} == {
        "18:00 CET",
        "18:00 CEST",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("every:day", "Slots repeat weekly"),
        ("days:funday", "funday is not a weekday"),
        ("until:2030-01-20 count:3", "not both"),
        ("count:0", "count: must be a whole number"),
        ("until:2030-01-01", "until: is before the first start"),
    ],
)
async def test_bad_rules_say_what_to_write(room: Chat, options: str, message: str) -> None:
    reply = await room.say(
        "alice", f'/slot add title:"X" starts:"2030-01-08 10:00" tickets:5 {options}'
    )
    assert reply.error and message in reply.text, reply.text
