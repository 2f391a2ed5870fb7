"""Reminders: on time, exactly once, moved with the Space, gone when it is cancelled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.shell.chat import Chat
from bot.clock import ManualClock
from bot.core import Core
from bot.events import ReminderDue
from scheduler import jobs
from scheduler.service import Scheduling
from tests.scheduler.helpers import at, deliveries, reminders_of, say_ok

NOON = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)
CREATE = '/space create title:"Talk" starts:"2030-01-07 12:00" tickets:5'


async def test_listener_and_host_reminded_once_each(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    await say_ok(room, "alice", CREATE)
    await say_ok(room, "bob", "/ticket buy 1")  # ticket holders are subscribed
    await say_ok(room, "carol", "/remind on 1")
    due: list[ReminderDue] = []

    async def record(event: ReminderDue) -> None:
        due.append(event)

    core.bus.subscribe(ReminderDue, record)

    work = await at(clock, scheduling, NOON - timedelta(minutes=31))
    assert work.reminders_sent == 0

    work = await at(clock, scheduling, NOON - timedelta(minutes=30))
    assert work.reminders_sent == 3
    assert reminders_of(room, "bob") == [
        "Reminder: Talk (#1) starts in 30m — Mon 7 Jan 2030, 12:00 UTC."
    ]
    assert reminders_of(room, "carol") == [
        "Reminder: Talk (#1) starts in 30m — Mon 7 Jan 2030, 12:00 UTC. "
        "Get a ticket with /ticket buy 1."
    ]
    assert reminders_of(room, "alice")[0].startswith("Your Space Talk (#1) starts in 30m")
    assert "[Join the room]" in room.dms("bob")[-1]
    assert "[Open the room]" in room.dms("alice")[-1]

    # the sweep, the job function and a second sweep all find nothing left to send
    assert (await at(clock, scheduling, NOON - timedelta(minutes=29))).reminders_sent == 0
    jobs.bind(scheduling)
    try:
        await jobs.remind(1, 30)
    finally:
        jobs.unbind(scheduling)
    assert await scheduling.reminders.deliver(1, 30) == 0

    await at(clock, scheduling, NOON)
    assert len(reminders_of(room, "bob")) == 2
    assert reminders_of(room, "bob")[-1] == "Talk (#1) is live now."
    assert sorted((e.identity_key.split(":")[-1], e.minutes_before) for e in due) == [
        ("alice", 0),
        ("alice", 30),
        ("bob", 0),
        ("bob", 30),
        ("carol", 0),
        ("carol", 30),
    ]
    assert len(await deliveries(core)) == 6


async def test_reminders_in_the_readers_zone(
    room: Chat, scheduling: Scheduling, clock: ManualClock
) -> None:
    await say_ok(room, "alice", CREATE)
    await say_ok(room, "bob", "/tz set Europe/Berlin")
    await say_ok(room, "bob", "/ticket buy 1")
    await at(clock, scheduling, NOON - timedelta(minutes=30))
    assert reminders_of(room, "bob")[0].startswith(
        "Reminder: Talk (#1) starts in 30m — Mon 7 Jan 2030, 13:00 CET."
    )


async def test_edit_moves_the_reminders(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    await say_ok(room, "alice", CREATE)
    await say_ok(room, "bob", "/ticket buy 1")
    assert (await scheduling.jobs_of(1))["remind:30"] == NOON - timedelta(minutes=30)

    await say_ok(room, "alice", '/space edit 1 starts:"2030-01-07 15:00"')
    later = datetime(2030, 1, 7, 15, 0, tzinfo=UTC)
    stored = await scheduling.jobs_of(1)
    assert stored["remind:30"] == later - timedelta(minutes=30)
    assert stored["start"] == later

    # the old time passes silently; the stale job, if it ran, would do nothing
    assert (await at(clock, scheduling, NOON - timedelta(minutes=30))).reminders_sent == 0
    assert await scheduling.reminders.deliver(1, 30) == 0
    assert (await at(clock, scheduling, NOON)).lifecycle == []
    assert (await at(clock, scheduling, later - timedelta(minutes=30))).reminders_sent == 2
    assert reminders_of(room, "bob") == [
        "Reminder: Talk (#1) starts in 30m — Mon 7 Jan 2030, 15:00 UTC."
    ]


async def test_moving_after_a_reminder_makes_it_due_again(
    room: Chat, scheduling: Scheduling, clock: ManualClock
) -> None:
    await say_ok(room, "alice", CREATE)
    await say_ok(room, "bob", "/ticket buy 1")
    await at(clock, scheduling, NOON - timedelta(minutes=30))
    await say_ok(room, "alice", '/space edit 1 starts:"2030-01-07 13:00"')
    await at(clock, scheduling, NOON + timedelta(minutes=30))
    assert reminders_of(room, "bob") == [
        "Reminder: Talk (#1) starts in 30m — Mon 7 Jan 2030, 12:00 UTC.",
        "Reminder: Talk (#1) starts in 30m — Mon 7 Jan 2030, 13:00 UTC.",
    ]


async def test_cancel_removes_the_jobs_and_the_reminders(
    room: Chat, scheduling: Scheduling, clock: ManualClock
) -> None:
    await say_ok(room, "alice", CREATE)
    await say_ok(room, "bob", "/ticket buy 1")
    assert set(await scheduling.jobs_of(1)) == {"remind:30", "remind:0", "start", "abandon"}
    await say_ok(room, "alice", "/space cancel 1")
    assert await scheduling.jobs_of(1) == {}
    work = await at(clock, scheduling, NOON - timedelta(minutes=30))
    assert work.reminders_sent == 0
    assert reminders_of(room, "bob") == []


async def test_remind_off_stops_them(
    room: Chat, scheduling: Scheduling, clock: ManualClock
) -> None:
    await say_ok(room, "alice", CREATE)
    await say_ok(room, "bob", "/ticket buy 1")
    await say_ok(room, "bob", "/remind off 1")
    await at(clock, scheduling, NOON - timedelta(minutes=30))
    await at(clock, scheduling, NOON)
    assert reminders_of(room, "bob") == []
    assert len(reminders_of(room, "alice")) == 2  # the host still is


async def test_late_subscriber_gets_only_what_is_still_ahead(
    room: Chat, scheduling: Scheduling, clock: ManualClock
) -> None:
    await say_ok(room, "alice", CREATE)
    clock.set(NOON - timedelta(minutes=10))
    await say_ok(room, "bob", "/remind on 1")
    await at(clock, scheduling, NOON - timedelta(minutes=9))
    assert reminders_of(room, "bob") == []
    await at(clock, scheduling, NOON)
    assert reminders_of(room, "bob") == ["Talk (#1) is live now. Get a ticket with /ticket buy 1."]


async def test_a_reminder_past_its_grace_is_dropped(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    await say_ok(room, "alice", CREATE)
    await say_ok(room, "bob", "/remind on 1")
    grace = timedelta(seconds=core.settings.reminder_grace_seconds)
    work = await at(clock, scheduling, NOON - timedelta(minutes=30) + grace + timedelta(seconds=1))
    assert work.reminders_sent == 0
    assert reminders_of(room, "bob") == []


async def test_jobs_carry_ids_and_explicit_misfire_rules(
    room: Chat, scheduling: Scheduling
) -> None:
    await say_ok(room, "alice", CREATE)
    aps = scheduling.aps
    remind = await aps.call(aps.get_job, "space:1:remind:30")
    start = await aps.call(aps.get_job, "space:1:start")
    assert remind.func_ref == "scheduler.jobs:remind" and list(remind.args) == [1, 30]
    assert start.func_ref == "scheduler.jobs:start" and list(start.args) == [1]
    assert remind.misfire_grace_time == 600 and remind.coalesce
    assert start.misfire_grace_time is None and start.coalesce  # lifecycle runs however late
