"""Waitlists (issue 16 item 1): people get in line for a sold-out Space; a seat that comes
back (a lapsed hold, a refund, a bigger Space) is held for the next in line, who is told
by DM with the pay link; an offer that lapses passes on.

The commands go through the shell (`Chat`), the core grammar every adapter shares; the
race goes through `TicketService.reserve`, `WaitlistService.join` and
`TicketService.expire_holds` on two cores, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from adapters.shell.chat import Chat
from bot.clock import ManualClock
from bot.core import Core
from bot.db import Database
from bot.errors import SoldOut, UserError
from bot.models import (
    Hold,
    HoldStatus,
    OutboxMessage,
    Space,
    Ticket,
    TicketStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from bot.services.tickets import Reservation
from bot.settings import Settings
from bot.wording import space_buttons
from tests.fakes.payments import FakeGateway
from tests.racing import outcome, person, racing

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestCollectionWarning")


@pytest.fixture
def paid(core: Core) -> Core:
    core.use_payments(FakeGateway())
    return core


async def announce(chat: Chat, price: str = "10", tickets: int = 1) -> None:
    reply = await chat.say(
        "alice", f'/space create title:"Launch" starts:"in 2 days" tickets:{tickets} price:{price}'
    )
    assert not reply.error, reply.text


async def dms(core: Core, user: str) -> list[OutboxMessage]:
    await core.bus.drain()
    async with core.db.session() as session:
        rows = await session.exec(
            select(OutboxMessage)
            .where(col(OutboxMessage.identity_key).endswith(f":{user}"))
            .order_by(col(OutboxMessage.id))
        )
        return list(rows)


async def entries(core: Core) -> list[WaitlistEntry]:
    async with core.db.session() as session:
        return list(await session.exec(select(WaitlistEntry).order_by(col(WaitlistEntry.id))))


async def test_a_lapsed_hold_goes_to_the_first_in_line_and_then_the_next(
    chat: Chat, paid: Core, clock: ManualClock
) -> None:
    await announce(chat)
    assert not (await chat.say("bob", "/ticket buy 1")).error
    sold_out = await chat.say("carol", "/ticket buy 1")
    assert sold_out.error and "/ticket waitlist 1" in sold_out.text, sold_out.text
    space = await paid.spaces.get(1)
    assert [b.label for b in space_buttons(space)][-1] == "Join the waitlist"

    joined = await chat.say("carol", "/ticket waitlist 1")
    assert joined.text.startswith("You are number 1 in line for Space #1."), joined.text
    assert (await chat.say("dave", "/ticket waitlist 1")).text.startswith("You are number 2")
    again = await chat.say("carol", "/ticket waitlist 1")
    assert (again.error, again.text) == (
        True,
        "You are already on the waitlist of Space #1, number 1 in line.",
    )
    holder = await chat.say("bob", "/ticket waitlist 1")
    assert holder.error and "already have a ticket (or a seat held)" in holder.text

    # bob's hold lapses: his seat is held for carol, who hears of it with the pay link
    clock.advance(timedelta(minutes=paid.settings.hold_minutes + 1))
    assert await paid.tickets.expire_holds() == 1
    [offer] = await dms(paid, "carol")
    assert offer.text.startswith("A seat of Launch (#1) came free and is held for you until ")
    assert offer.links[0][0] == "Pay now" and offer.links[0][1].startswith("https://pay.test/")
    space = await paid.spaces.get(1)
    assert (space.sold, space.held) == (0, 1)
    # a newcomer cannot take the seat past the line
    assert (await chat.say("erin", "/ticket buy 1")).error

    # carol does not pay: the seat passes on to dave
    clock.advance(timedelta(minutes=paid.settings.hold_minutes + 1))
    assert await paid.tickets.expire_holds() == 1
    assert len(await dms(paid, "dave")) == 1
    line = await entries(paid)
    assert [e.status for e in line] == [WaitlistStatus.OFFERED, WaitlistStatus.OFFERED]

    # dave pays: he has the ticket, and the line is empty
    async with paid.db.session() as session:
        hold = (
            await session.exec(select(Hold).where(Hold.status == HoldStatus.ACTIVE.value))
        ).one()
    confirmed = await paid.tickets.confirm(hold.id, reference="pi_test")
    assert len(confirmed.tickets) == 1
    space = await paid.spaces.get(1)
    assert (space.sold, space.held) == (1, 0)


async def test_a_refund_and_a_bigger_space_serve_the_line(
    chat: Chat, core: Core, clock: ManualClock
) -> None:
    await announce(chat, price="free", tickets=1)
    assert not (await chat.say("bob", "/ticket buy 1")).error
    for user in ("carol", "dave", "erin"):
        assert not (await chat.say(user, "/ticket waitlist 1")).error
    assert not (await chat.say("erin", "/ticket waitlist 1 leave")).error
    assert (await chat.say("erin", "/ticket waitlist 1 leave")).text == (
        "You are not on the waitlist of Space #1."
    )

    # a free Space's offer is a ticket at once
    async with core.db.session() as session:
        ticket = (await session.exec(select(Ticket))).one()
    assert not (await chat.say("alice", f"/ticket refund {ticket.id}")).error
    [issued] = await dms(core, "carol")
    assert issued.text.startswith("Your ticket for Launch (#1)")

    edited = await chat.say("alice", "/space edit 1 tickets:3")
    assert not edited.error, edited.text
    await core.bus.drain()
    assert [m.text[:22] for m in await dms(core, "dave")] == ["Your ticket for Launch"]
    async with core.db.session() as session:
        valid = await session.exec(
            select(Ticket.holder_id).where(Ticket.status == TicketStatus.VALID.value)
        )
        assert len(list(valid)) == 2
    space = await core.spaces.get(1)
    assert (space.sold, space.held) == (2, 0)
    # the line is empty now: the third seat is anyone's
    assert not (await chat.say("frank", "/ticket buy 1")).error


async def test_space_info_shows_the_line_to_the_host_only(chat: Chat, paid: Core) -> None:
    await announce(chat)
    await chat.say("bob", "/ticket buy 1")
    await chat.say("carol", "/ticket waitlist 1")
    await chat.say("dave", "/ticket waitlist 1")
    shown = await chat.say("alice", "/space info 1")
    assert "Waitlist: 2 waiting: carol, dave" in shown.text, shown.text
    assert "Waitlist" not in (await chat.say("bob", "/space info 1")).text
    assert (await chat.say("carol", "/space info 1")).text.count("You are number 1 in line") == 1


async def test_refusals(chat: Chat, paid: Core) -> None:
    await announce(chat, tickets=5)
    seats = await chat.say("bob", "/ticket waitlist 1")
    assert seats.text == "Space #1 has seats left: get one with /ticket buy 1."
    assert (await chat.say("alice", "/ticket waitlist 1")).text == (
        "You are the host of this Space; you don't need a ticket."
    )
    assert "say leave or nothing" in (await chat.say("bob", "/ticket waitlist 1 now")).text
    assert (await chat.say("bob", "/ticket waitlist 9")).text == "There is no Space #9."


# --- the race ------------------------------------------------------------------------------

BUYERS, SEATS, LINE, PAID = 2_000, 100, 300, 40


async def race(settings: Settings, db: Database) -> None:
    """Two cores on one database. 2,000 buyers race for 100 seats; 300 of those turned
    away get in line at the same moment. 40 holders pay; the other 60 holds lapse, and
    both cores expire holds at once while newcomers keep claiming: each freed seat must be
    held for the next in line exactly once. Offers lapse in turn until the line is empty."""
    async with racing(settings, db, capacity=SEATS) as race:
        cores, clock, space_id = race.cores, race.clock, race.space_id

        async def buy(n: int) -> object:
            got = await outcome(race.core(n).tickets.reserve(person(n), space_id))
            if isinstance(got, UserError) and n >= BUYERS - LINE:
                # the last 300 get in line when turned away
                return await race.core(n).waitlist.join(person(n), space_id)
            return got

        outcomes = await asyncio.gather(*(buy(n) for n in range(BUYERS)))
        held = [o for o in outcomes if isinstance(o, Reservation)]
        late_holders = sum(1 for o in outcomes[BUYERS - LINE :] if isinstance(o, Reservation))
        kinds = Counter(type(o).__name__ for o in outcomes)
        assert kinds == {
            "Reservation": SEATS,
            "int": LINE - late_holders,
            "SoldOut": BUYERS - LINE - SEATS + late_holders,
        }, kinds
        line = [e.identity_id for e in await waiting(db, space_id)]
        assert len(line) == LINE - late_holders and len(set(line)) == len(line)

        for reservation in held[:PAID]:
            await cores[0].tickets.confirm(reservation.hold.id, reference="pi")
        offered: list[int] = []
        freed, rounds = SEATS - PAID, 0
        while len(offered) < len(line):
            rounds += 1
            clock.advance(timedelta(minutes=settings.hold_minutes + 1))
            left = len(line) - len(offered)
            newcomers = [
                cores[n % 2].tickets.reserve(person(BUYERS + rounds * 100 + n), space_id)
                for n in range(50)
            ]
            results = await asyncio.gather(
                cores[0].tickets.expire_holds(),
                cores[1].tickets.expire_holds(),
                *newcomers,
                return_exceptions=True,
            )
            released = results[:2]
            assert all(isinstance(n, int) for n in released), released
            assert sum(n for n in released if isinstance(n, int)) == freed
            won = sum(1 for r in results[2:] if isinstance(r, Reservation))
            assert all(isinstance(r, (Reservation, SoldOut)) for r in results[2:]), results
            if left >= freed:
                assert won == 0  # nobody takes a seat past the line
            new = [i for i in await offers(db, space_id) if i not in offered]
            assert new == line[len(offered) : len(offered) + freed]  # first come, first served
            offered += new
            s = await get_space(db, space_id)
            assert s.sold == PAID and s.held == len(new) + won
            assert s.held == await active_holds(db, space_id)
            freed = len(new) + won
        assert offered == line and rounds >= len(line) // (SEATS - PAID)
        held_holds = await holds_per_person(db, space_id)
        assert max(held_holds.values()) == 1  # no seat offered twice to anyone


async def waiting(db: Database, space_id: int) -> list[WaitlistEntry]:
    async with db.session() as session:
        return list(
            await session.exec(
                select(WaitlistEntry)
                .where(WaitlistEntry.space_id == space_id)
                .order_by(col(WaitlistEntry.id))
            )
        )


async def offers(db: Database, space_id: int) -> list[int]:
    """Who was offered a seat, in line order."""
    return [
        e.identity_id
        for e in await waiting(db, space_id)
        if e.status == WaitlistStatus.OFFERED and e.hold_id is not None
    ]


async def get_space(db: Database, space_id: int) -> Space:
    async with db.session() as session:
        s = await session.get(Space, space_id)
    assert s is not None
    return s


async def holds_per_person(db: Database, space_id: int) -> Counter[int]:
    async with db.session() as session:
        rows = await session.exec(select(Hold.buyer_id).where(Hold.space_id == space_id))
        return Counter(rows)


async def active_holds(db: Database, space_id: int) -> int:
    async with db.session() as session:
        count = await session.scalar(
            sa.select(sa.func.count())
            .select_from(Hold)
            .where(col(Hold.space_id) == space_id, col(Hold.status) == HoldStatus.ACTIVE.value)
        )
        return int(count or 0)


async def test_2000_buyers_100_seats_300_in_line_sqlite(
    settings: Settings, sqlite_db: Database
) -> None:
    await race(settings, sqlite_db)


@pytest.mark.postgres
@pytest.mark.timeout(300)
async def test_2000_buyers_100_seats_300_in_line_postgres(
    settings: Settings, pg_db: Database
) -> None:
    await race(settings, pg_db)
