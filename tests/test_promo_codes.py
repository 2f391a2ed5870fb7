"""Promo codes (issue 16 item 2): hosts make, list and turn off codes; buyers enter them
with /ticket buy; uses are counted in the claim's transaction and never exceed the limit.

The commands go through the shell (`Chat`), i.e. the core grammar every adapter shares;
the racing redemptions go through `TicketService.reserve` on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from adapters.shell.chat import Chat
from bot.clock import ManualClock
from bot.core import Core
from bot.db import Database
from bot.errors import UserError
from bot.models import Hold, HoldStatus, PromoCode, Space, Ticket
from bot.services.promos import PromoDraft, unit_price
from bot.settings import Settings
from tests.fakes.payments import FakeGateway
from tests.racing import HOST, outcome, person, racing

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestCollectionWarning")


@pytest.fixture
def paid(core: Core) -> Core:
    core.use_payments(FakeGateway())
    return core


async def announce(chat: Chat, price: str = "10", tickets: int = 100, limit: int = 4) -> None:
    reply = await chat.say(
        "alice",
        f'/space create title:"Launch" starts:"in 2 days" tickets:{tickets} price:{price} '
        f"limit:{limit}",
    )
    assert not reply.error, reply.text


async def promo(core: Core, code: str = "EARLY") -> PromoCode:
    async with core.db.session() as session:
        found = (await session.exec(select(PromoCode).where(PromoCode.code == code))).one()
    return found


async def space(core: Core, space_id: int = 1) -> Space:
    return await core.spaces.get(space_id)


async def test_a_percent_code_discounts_the_hold_and_counts_its_tickets(
    chat: Chat, paid: Core
) -> None:
    await announce(chat)
    made = await chat.say("alice", '/space promo 1 code:early percent:20 uses:50 until:"in 1 day"')
    assert not made.error, made.text
    assert made.text.startswith("EARLY — 20% off — 50 of 50 uses left — until ")
    assert "/ticket buy 1 code:EARLY" in made.text

    bought = await chat.say("bob", "/ticket buy 1 quantity:2 code:Early")
    assert not bought.error, bought.text
    async with paid.db.session() as session:
        hold = (await session.exec(select(Hold))).one()
    assert (hold.amount_minor, hold.quantity, hold.status) == (1600, 2, HoldStatus.ACTIVE)
    assert (await promo(paid)).uses == 2

    listed = await chat.say("alice", "/space promo 1")
    assert listed.title == "Promo codes of #1"
    assert listed.text.startswith("EARLY — 20% off — 48 of 50 uses left — until ")


async def test_an_amount_code_is_read_in_the_spaces_currency(chat: Chat, paid: Core) -> None:
    await announce(chat, price="12.50")
    made = await chat.say("alice", "/space promo 1 code:FIVE amount:5 uses:3")
    assert made.text.startswith("FIVE — $5.00 off — 3 of 3 uses left"), made.text
    assert not (await chat.say("bob", "/ticket buy 1 code:five")).error
    async with paid.db.session() as session:
        hold = (await session.exec(select(Hold))).one()
    assert hold.amount_minor == 750


async def test_a_100_percent_code_makes_a_free_ticket_without_checkout(
    chat: Chat, paid: Core
) -> None:
    await announce(chat, tickets=3)
    await chat.say("alice", "/space promo 1 code:GUEST percent:100 uses:1")
    got = await chat.say("bob", "/ticket buy 1 code:GUEST")
    assert got.text.startswith("You're in! Ticket "), got.text
    assert not got.buttons  # no Pay now
    async with paid.db.session() as session:
        ticket = (await session.exec(select(Ticket))).one()
    assert ticket.price_minor == 0
    s = await space(paid)
    assert (s.sold, s.held) == (1, 0)
    used = await chat.say("carol", "/ticket buy 1 code:GUEST")
    assert (used.error, used.text) == (True, "GUEST is used up.")


async def test_refusals_say_what_is_wrong(chat: Chat, paid: Core, clock: ManualClock) -> None:
    await announce(chat)
    await chat.say("alice", '/space promo 1 code:EARLY percent:20 uses:2 until:"in 1 hour"')
    assert (await chat.say("bob", "/ticket buy 1 code:LATE")).text == (
        "There is no code LATE for Space #1."
    )
    few = await chat.say("bob", "/ticket buy 1 quantity:3 code:EARLY")
    assert few.text == "EARLY has only 2 uses left; buy at most 2 tickets with it (3 asked)."
    clock.advance(timedelta(hours=2))
    ended = await chat.say("bob", "/ticket buy 1 code:EARLY")
    assert ended.error and ended.text.startswith("EARLY ended "), ended.text
    await chat.say("alice", "/space promo 1 code:NOW percent:10 uses:5")
    off = await chat.say("alice", "/space promo 1 code:now off")
    assert off.text == "NOW is off for Space #1."
    assert (await chat.say("bob", "/ticket buy 1 code:NOW")).text == (
        "NOW is turned off for Space #1."
    )
    assert (await chat.say("alice", "/space promo 1")).text.splitlines()[1].endswith(" — off")
    assert not (await chat.say("alice", "/space promo 1 code:NOW on")).error
    assert not (await chat.say("bob", "/ticket buy 1 code:NOW")).error
    # a refused code leaves no hold, no seat, no use behind
    s = await space(paid)
    assert (s.sold, s.held) == (0, 1)
    assert (await promo(paid, "EARLY")).uses == 0


async def test_only_the_host_and_co_hosts_manage_codes(chat: Chat, paid: Core) -> None:
    await announce(chat)
    refused = await chat.say("bob", "/space promo 1 code:MINE percent:90 uses:5")
    assert (refused.error, refused.text) == (
        True,
        "Only the host and co-hosts can manage promo codes.",
    )
    assert (await chat.say("bob", "/space promo 1")).error
    assert not (await chat.say("alice", "/space cohost add 1 @carol")).error
    assert not (await chat.say("carol", "/space promo 1 code:CO percent:10 uses:5")).error
    again = await chat.say("alice", "/space promo 1 code:co percent:15 uses:5")
    assert (
        again.text == "CO already exists for Space #1; turn it off with /space promo 1 code:CO off."
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/space promo 1 code:EARLY uses:5", "Give either percent: or amount: (not both)."),
        ("/space promo 1 code:EARLY percent:5 amount:1 uses:5", "Give either percent: or amount:"),
        ("/space promo 1 code:EARLY percent:101 uses:5", "percent: must be within 1..100."),
        ("/space promo 1 code:EARLY percent:5", "uses: is missing"),
        ("/space promo 1 code:EARLY amount:0.001 uses:5", "USD amounts take at most 2 decimals"),
        ("/space promo 1 code:ÉARLY percent:5 uses:5", "is not a code: use letters, digits"),
        ("/space promo 1 code:" + "A" * 33 + " percent:5 uses:5", "is not a code"),
        ("/space promo 1 off", "Name the code, e.g. code:EARLY."),
        ("/space promo 1 code:EARLY off percent:5", "Turning EARLY off takes no other options."),
        ("/space promo 1 code:EARLY percent:5 uses:5 until:yesterday", "until: must be in the"),
        ("/ticket buy 1 code:no!", "is not a code"),
    ],
)
async def test_bad_input_is_refused_clearly(
    chat: Chat, paid: Core, line: str, message: str
) -> None:
    await announce(chat)
    reply = await chat.say("alice", line)
    assert reply.error and message in reply.text, reply.text


async def test_a_free_space_takes_no_codes(chat: Chat, paid: Core) -> None:
    await announce(chat, price="free")
    reply = await chat.say("alice", "/space promo 1 code:X percent:10 uses:5")
    assert reply.text == "Space #1 is free; a code would have nothing to take off."


async def test_a_lapsed_hold_gives_its_uses_back_and_a_refund_does_not(
    chat: Chat, paid: Core, clock: ManualClock
) -> None:
    await announce(chat)
    await chat.say("alice", "/space promo 1 code:EARLY percent:50 uses:2")
    assert not (await chat.say("bob", "/ticket buy 1 quantity:2 code:EARLY")).error
    assert (await chat.say("carol", "/ticket buy 1 code:EARLY")).text == "EARLY is used up."
    clock.advance(timedelta(minutes=paid.settings.hold_minutes + 1))
    assert await paid.tickets.expire_holds() == 1
    assert (await promo(paid)).uses == 0

    assert not (await chat.say("carol", "/ticket buy 1 code:EARLY")).error
    async with paid.db.session() as session:
        hold = (
            await session.exec(select(Hold).where(Hold.status == HoldStatus.ACTIVE.value))
        ).one()
    confirmed = await paid.tickets.confirm(hold.id, reference="pi_test")
    [ticket] = confirmed.tickets
    assert ticket.price_minor == 500
    assert not (await chat.say("alice", f"/ticket refund {ticket.id}")).error
    assert (await promo(paid)).uses == 1


@pytest.mark.parametrize(
    ("price", "percent", "amount", "unit"),
    [
        (1000, 20, 0, 800),
        (999, 50, 0, 499),  # 499.5 off rounds half up to 500
        (1, 50, 0, 0),
        (1000, 100, 0, 0),
        (1000, 0, 250, 750),
        (1000, 0, 5000, 0),
    ],
)
def test_unit_price(price: int, percent: int, amount: int, unit: int) -> None:
    assert unit_price(price, percent, amount) == unit


# --- racing redemptions ---------------------------------------------------------------------

BUYERS = 500
USES = 50


async def race(settings: Settings, db: Database) -> None:
    """Two cores on one database, 500 buyers split between them, all at once, for a code
    good for 50."""
    async with racing(settings, db, capacity=BUYERS) as race:
        await race.cores[0].promos.create(
            HOST, race.space_id, PromoDraft("RACE", USES, percent=100)
        )
        outcomes = await asyncio.gather(
            *(
                outcome(race.core(n).tickets.reserve(person(n), race.space_id, code="race"))
                for n in range(BUYERS)
            )
        )
        kinds = Counter(
            type(o).__name__ if isinstance(o, UserError) else "ticket" for o in outcomes
        )
        assert kinds == {"ticket": USES, "LimitExceeded": BUYERS - USES}, kinds
        assert all(o.message == "RACE is used up." for o in outcomes if isinstance(o, UserError))
        async with db.session() as session:
            code = (await session.exec(select(PromoCode))).one()
            tickets = (await session.exec(select(sa.func.count()).select_from(Ticket))).one()
            s = await session.get(Space, race.space_id)
        assert code.uses == USES
        assert tickets == USES
        assert s is not None and (s.sold, s.held) == (USES, 0)


async def test_500_racing_redemptions_of_50_uses_give_exactly_50_sqlite(
    settings: Settings, sqlite_db: Database
) -> None:
    await race(settings, sqlite_db)


@pytest.mark.postgres
async def test_500_racing_redemptions_of_50_uses_give_exactly_50_postgres(
    settings: Settings, pg_db: Database
) -> None:
    await race(settings, pg_db)


async def test_sold_out_is_still_sold_out_with_a_code(chat: Chat, paid: Core) -> None:
    await announce(chat, tickets=1)
    await chat.say("alice", "/space promo 1 code:EARLY percent:10 uses:5")
    assert not (await chat.say("bob", "/ticket buy 1")).error
    reply = await chat.say("carol", "/ticket buy 1 code:EARLY")
    assert reply.error and "Every seat of Space #1" in reply.text
    assert (await promo(paid)).uses == 0
