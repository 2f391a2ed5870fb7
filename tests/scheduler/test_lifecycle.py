"""The lifecycle on the clock: auto start, manual start prompt, abandon, auto end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.shell.chat import Chat
from bot.clock import ManualClock
from bot.core import Core
from bot.models import SpaceStatus, TicketStatus
from scheduler.service import Scheduling
from tests.scheduler.helpers import at, reminders_of, say_ok

NOON = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)


async def test_goes_live_at_the_start_and_ends_after_duration_plus_grace(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    await say_ok(room, "alice", '/space create title:"Talk" starts:"2030-01-07 12:00" tickets:5')
    work = await at(clock, scheduling, NOON - timedelta(seconds=5))
    assert work.lifecycle == []
    assert (await core.spaces.get(1)).status == SpaceStatus.SCHEDULED

    work = await at(clock, scheduling, NOON)
    assert work.lifecycle == [("start", 1, "started")]
    assert (await core.spaces.get(1)).status == SpaceStatus.LIVE
    assert "Live now: #1 Talk" in room.channel
    ends = NOON + timedelta(minutes=60 + core.settings.end_grace_minutes)
    assert (await scheduling.jobs_of(1))["end"] == ends
    assert "start" not in await scheduling.jobs_of(1)

    assert (await at(clock, scheduling, ends - timedelta(seconds=5))).lifecycle == []
    work = await at(clock, scheduling, ends)
    assert work.lifecycle == [("end", 1, "ended")]
    assert (await core.spaces.get(1)).status == SpaceStatus.ENDED
    assert await scheduling.jobs_of(1) == {}


async def test_extending_a_live_space_moves_its_end(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    await say_ok(room, "alice", '/space create title:"Talk" starts:"2030-01-07 12:00" tickets:5')
    await at(clock, scheduling, NOON)
    await say_ok(room, "alice", "/space edit 1 duration:120")
    ends = NOON + timedelta(minutes=120 + core.settings.end_grace_minutes)
    assert (await scheduling.jobs_of(1))["end"] == ends
    assert (await at(clock, scheduling, ends - timedelta(minutes=60))).lifecycle == []
    assert await scheduling.lifecycle.end(1) == "early"  # the stale job does nothing
    assert (await at(clock, scheduling, ends)).lifecycle == [("end", 1, "ended")]


async def test_manual_start_prompts_the_host_and_cancels_with_refunds_if_never_started(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    await say_ok(
        room,
        "alice",
        '/space create title:"Talk" starts:"2030-01-07 12:00" tickets:5 manual:yes',
    )
    await say_ok(room, "bob", "/ticket buy 1")
    await at(clock, scheduling, NOON)
    assert (await core.spaces.get(1)).status == SpaceStatus.SCHEDULED
    assert await scheduling.lifecycle.start(1) == "prompted"  # the job: no second prompt
    prompts = [m for m in reminders_of(room, "alice") if "time to start" in m]
    assert prompts == [
        "It's time to start Space Talk (#1): /space start 1. If it isn't started by "
        "Mon 7 Jan 2030, 14:00 UTC it is cancelled and every ticket refunded."
    ]

    hours = core.settings.auto_cancel_after_hours
    assert (await at(clock, scheduling, NOON + timedelta(hours=hours, seconds=-5))).lifecycle == []
    work = await at(clock, scheduling, NOON + timedelta(hours=hours))
    assert work.lifecycle == [("abandon", 1, "cancelled")]
    space = await core.spaces.get(1)
    assert space.status == SpaceStatus.CANCELLED
    assert space.cancel_reason == "The host did not start it within 2 hours."
    [ticket] = await core.tickets.tickets_of(2, valid_only=False)
    assert ticket.status == TicketStatus.REVOKED  # free: voided; paid ones go to billing
    assert any("was cancelled" in m for m in room.dms("bob"))
    assert await scheduling.jobs_of(1) == {}


async def test_manual_start_by_the_host_stops_the_auto_cancel(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    await say_ok(
        room, "alice", '/space create title:"Talk" starts:"2030-01-07 12:00" tickets:5 manual:yes'
    )
    await at(clock, scheduling, NOON + timedelta(minutes=10))
    await say_ok(room, "alice", "/space start 1 confirm:yes")
    assert "abandon" not in await scheduling.jobs_of(1)
    # the end counts from when it really started
    ends = NOON + timedelta(minutes=10 + 60 + core.settings.end_grace_minutes)
    assert (await scheduling.jobs_of(1))["end"] == ends
    work = await at(clock, scheduling, NOON + timedelta(hours=3))
    assert work.lifecycle == [("end", 1, "ended")]  # ended, never abandoned
    assert (await core.spaces.get(1)).status == SpaceStatus.ENDED


async def test_a_space_found_long_after_its_start_is_cancelled_not_started(
    room: Chat, scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    """After a long outage the catch-up must not open a Space hours late."""
    await say_ok(room, "alice", '/space create title:"Talk" starts:"2030-01-07 12:00" tickets:5')
    work = await at(clock, scheduling, NOON + timedelta(hours=5))
    assert work.lifecycle == [("abandon", 1, "cancelled")]
    assert await scheduling.lifecycle.start(1) == "nothing"


async def test_expired_holds_are_released(
    scheduling: Scheduling, clock: ManualClock, core: Core
) -> None:
    from bot.actors import Actor
    from bot.models import Hold, HoldStatus, Platform

    await core.identities.ensure(Actor(Platform.SHELL, "local", "alice", "alice"))
    bob = await core.identities.ensure(Actor(Platform.SHELL, "local", "bob", "bob"))
    async with core.db.write() as session:
        from bot.models import Space

        session.add(
            Space(
                community_id="shell:local",
                host_id=1,
                title="Paid",
                starts_at=NOON,
                duration_minutes=60,
                status=SpaceStatus.SCHEDULED,
                price_minor=500,
                currency="usd",
                capacity=5,
                held=1,
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        await session.flush()
        session.add(
            Hold(
                id="h1",
                space_id=1,
                buyer_id=bob.id or 0,
                quantity=1,
                amount_minor=500,
                currency="usd",
                status=HoldStatus.ACTIVE,
                expires_at=clock.now() + timedelta(minutes=30),
                created_at=clock.now(),
            )
        )
    assert (await at(clock, scheduling, clock.now() + timedelta(minutes=29))).holds_released == 0
    assert (await at(clock, scheduling, clock.now() + timedelta(minutes=1))).holds_released == 1
    assert (await core.tickets.get_hold("h1")).status == HoldStatus.EXPIRED
    space = await core.spaces.get(1)
    assert (space.sold, space.held) == (0, 0)
