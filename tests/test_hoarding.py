"""No seat hoarding (issue 12 item 6): claim rates per person and per community, a cap on
a buyer's open unpaid holds across Spaces, and seats held shown apart from seats sold.

Everything goes through `TicketService.reserve`, the one door Discord, Slack, the shell
and the JSON API share; the API's 429 and `held` field: tests/http/test_claim_limits.py.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from adapters.shell.chat import Chat
from bot.actors import Actor
from bot.clock import ManualClock
from bot.core import Core
from bot.db import Database
from bot.encryption import load_cipher
from bot.errors import LimitExceeded, RateLimited, SoldOut
from bot.models import Hold, HoldStatus, Platform, Space
from bot.ratelimits import Buckets
from bot.services.spaces import SpaceDraft
from bot.settings import Settings
from bot.wording import full_label, seats_left, space_lines
from tests.fakes.payments import FakeGateway
from tests.test_private_data import _downgrade
from tests.test_private_data import empty_db as empty_db  # a fixture

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestCollectionWarning")


def member(user_id: str, guild: str = "guild1") -> Actor:
    return Actor(Platform.DISCORD, guild, user_id, user_id.title())


async def paid_space(core: Core, *, capacity: int = 5, limit: int = 1, title: str = "Paid") -> int:
    space = await core.spaces.create(
        member("host"),
        SpaceDraft(
            title=title,
            starts_at=core.clock.now() + timedelta(days=2),
            capacity=capacity,
            price_minor=500,
            currency="usd",
            per_buyer_limit=limit,
        ),
    )
    assert space.id is not None
    return space.id


async def free_space(core: Core, *, capacity: int = 50) -> int:
    space = await core.spaces.create(
        member("host"),
        SpaceDraft(title="Free", starts_at=core.clock.now() + timedelta(days=2), capacity=capacity),
    )
    assert space.id is not None
    return space.id


@pytest.fixture
def paid(core: Core) -> Core:
    core.use_payments(FakeGateway())
    return core


# --- claim rates --------------------------------------------------------------------------


async def test_a_person_claiming_too_fast_is_told_when_to_try_again(
    core: Core, clock: ManualClock
) -> None:
    space_id = await free_space(core)
    bob = member("bob")
    await core.tickets.reserve(bob, space_id)
    for _ in range(4):  # the per-buyer limit answers, but each try takes a token
        with pytest.raises(LimitExceeded) as refused:
            await core.tickets.reserve(bob, space_id)
        assert not isinstance(refused.value, RateLimited)  # the limit, not the rate
    with pytest.raises(RateLimited) as limited:
        await core.tickets.reserve(bob, space_id)
    assert limited.value.retry_after == 12  # 5 a minute: one token back every 12 s
    assert (
        limited.value.message
    ) == "You are claiming tickets faster than allowed. Try again in 12 seconds."
    # someone else in the community is not slowed down by bob
    await core.tickets.reserve(member("carol"), space_id)

    clock.advance(timedelta(seconds=11))
    with pytest.raises(RateLimited) as still:
        await core.tickets.reserve(bob, space_id)
    assert still.value.retry_after == 1
    clock.advance(timedelta(seconds=1))
    with pytest.raises(LimitExceeded) as admitted:  # through the gate, to the seat rules
        await core.tickets.reserve(bob, space_id)
    assert not isinstance(admitted.value, RateLimited)
    await core.bus.drain()


async def test_a_community_claiming_too_fast_is_slowed_but_a_refusal_costs_nothing(
    settings: Settings, sqlite_db: Database, clock: ManualClock
) -> None:
    core = Core.build(
        settings.model_copy(update={"claims_per_minute_community": 3}), db=sqlite_db, clock=clock
    )
    try:
        space_id = await free_space(core)
        for name in ("a", "b", "c"):
            await core.tickets.reserve(member(name), space_id)
        with pytest.raises(RateLimited) as limited:
            await core.tickets.reserve(member("d"), space_id)
        assert limited.value.retry_after == 20
        assert limited.value.message.startswith("This community is claiming tickets very fast")
        # another community has its own bucket
        other = await core.spaces.create(
            member("host", "guild2"),
            SpaceDraft(title="Elsewhere", starts_at=clock.now() + timedelta(days=2), capacity=5),
        )
        assert other.id is not None
        await core.tickets.reserve(member("d", "guild2"), other.id)
        # d's refused claim took no token of d's own: after the community refills, d gets 5
        clock.advance(timedelta(seconds=20))
        await core.tickets.reserve(member("d"), space_id)
        assert core.tickets.limits.people.wait(member("d").key, clock.now().timestamp()) == 0
    finally:
        await core.tickets.claims.close()
        await core.bus.drain()
        await core.bus.close()


def test_full_buckets_are_forgotten() -> None:
    buckets = Buckets(per_minute=60)
    for i in range(100):
        buckets.take(f"person-{i}", now=0.0)
    assert len(buckets) == 100
    buckets.forget_full(now=0.5)
    assert len(buckets) == 100  # half a token back each: not full yet
    buckets.forget_full(now=1.0)
    assert len(buckets) == 0
    assert Buckets(per_minute=0).wait("anyone", now=0.0) == 0  # 0 turns the limit off


# --- open holds across Spaces ------------------------------------------------------------


async def test_a_buyer_may_keep_only_two_unpaid_holds_open(paid: Core, clock: ManualClock) -> None:
    core = paid
    a, b, c = [await paid_space(core, title=t) for t in "ABC"]
    bob = member("bob")
    first = await core.tickets.reserve(bob, a)
    await core.tickets.reserve(bob, b)
    with pytest.raises(LimitExceeded) as refused:
        await core.tickets.reserve(bob, c)
    assert refused.value.message == (
        "You have 2 unpaid ticket holds open, the most allowed. Pay for one (or let it lapse) "
        "before holding more. The first lapses in 30m."
    )
    # free Spaces leave no hold open: they are not capped
    await core.tickets.reserve(bob, await free_space(core))
    clock.advance(timedelta(minutes=1))  # bob's claim rate (5 a minute) is not the subject

    await core.tickets.confirm(first.hold.id, reference="pi_1")  # paid: no longer open
    third = await core.tickets.reserve(bob, c)
    with pytest.raises(LimitExceeded) as again:
        await core.tickets.reserve(bob, await paid_space(core, title="D"))
    assert type(again.value) is LimitExceeded and "lapses in 29m" in again.value.message

    clock.advance(timedelta(minutes=30))  # both open holds lapse (before any sweep)
    await core.tickets.reserve(bob, await paid_space(core, title="E"))
    assert await core.tickets.expire_holds() == 2
    assert (await core.tickets.get_hold(third.hold.id)).status == HoldStatus.EXPIRED
    await core.bus.drain()


async def test_held_seats_are_counted_apart_from_sold_ones(paid: Core, clock: ManualClock) -> None:
    core = paid
    space_id = await paid_space(core, capacity=3, limit=2)

    async def seats() -> tuple[int, int, int]:
        space = await core.spaces.get(space_id)
        return space.sold, space.held, space.tickets_left

    bob = await core.tickets.reserve(member("bob"), space_id, 2)
    carol = await core.tickets.reserve(member("carol"), space_id)
    assert await seats() == (0, 3, 0)
    space = await core.spaces.get(space_id)
    assert seats_left(space) == "0 of 3 (3 held, awaiting payment)"
    assert full_label(space) == "All held, try later"
    host = await core.identities.get(space.host_id)
    lines = space_lines(space, host, ZoneInfo("UTC"), clock.now())
    assert "Seats: 0 sold, 3 held (awaiting payment), 0 left of 3" in lines
    with pytest.raises(SoldOut) as full:
        await core.tickets.reserve(member("dave"), space_id)
    assert "held for a buyer who has not paid yet" in full.value.message

    [ticket, _] = (await core.tickets.confirm(bob.hold.id, reference="pi_bob")).tickets
    assert await seats() == (2, 1, 0)
    await core.tickets.release(carol.hold.id, expired=True)
    assert await seats() == (2, 0, 1)
    await core.tickets.refund(ticket, reason="test")
    assert await seats() == (1, 0, 2)
    # carol pays after her hold lapsed: her seat is taken again, as sold
    late = await core.tickets.confirm(carol.hold.id, reference="pi_carol")
    assert late.newly_issued and await seats() == (2, 0, 1)
    space = await core.spaces.get(space_id)
    assert seats_left(space) == "1 of 3" and full_label(space) is None
    erin = await core.tickets.reserve(member("erin"), space_id)
    await core.tickets.confirm(erin.hold.id, reference="pi_erin")
    space = await core.spaces.get(space_id)
    assert (space.sold, space.held) == (3, 0) and seats_left(space) == "Sold out"
    await core.bus.drain()


# --- racing claims by one buyer, from two processes' worth of cores ----------------------

BUYERS, SPACES, CAP = 12, 8, 2


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def racing_db(request: pytest.FixtureRequest) -> Database:
    db: Database = request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")
    return db


async def test_racing_claims_by_one_buyer_never_pass_the_cap(
    racing_db: Database, settings: Settings, clock: ManualClock
) -> None:
    """Two cores, each with its own connections and claim batcher (as two processes have),
    take every buyer's claims at the same moment, each for its own half of the paid
    Spaces (so no Space's lock orders them): the open-holds count is read under the
    buyer's lock, so no buyer ends with more than the cap."""
    only_the_cap = settings.model_copy(
        update={"claims_per_minute_person": 0, "claims_per_minute_community": 0}
    )
    other_db = Database(racing_db.url, pool_size=20)
    cores = [
        Core.build(only_the_cap, db=db, clock=clock, payments=FakeGateway())
        for db in (racing_db, other_db)
    ]
    try:
        spaces: list[int] = []
        for i in range(SPACES):
            space = await cores[0].spaces.create(
                member(f"host{i}"),
                SpaceDraft(
                    title=f"Paid {i}",
                    starts_at=clock.now() + timedelta(days=2),
                    capacity=BUYERS,
                    price_minor=500,
                    currency="usd",
                ),
            )
            assert space.id is not None
            spaces.append(space.id)
        for core in cores:  # known buyers: a new one's insert would serialise the batches
            for b in range(BUYERS):
                await core.identities.ensure(member(f"buyer{b}"))
        claims = [
            cores[s % 2].tickets.reserve(member(f"buyer{b}"), space_id)  # apart Spaces
            for s, space_id in enumerate(spaces)
            for b in range(BUYERS)
        ]
        results = await asyncio.gather(*claims, return_exceptions=True)
        kinds = Counter(type(r).__name__ for r in results)
        assert kinds == {"Reservation": BUYERS * CAP, "LimitExceeded": BUYERS * (SPACES - CAP)}
        # decided in the same batch as the holds they count, they still say when one lapses
        refusals = {str(r) for r in results if isinstance(r, LimitExceeded)}
        assert all(r.endswith("The first lapses in 30m.") for r in refusals), refusals
        async with racing_db.session() as session:
            rows = await session.exec(
                select(Hold.buyer_id, sa.func.count())
                .where(Hold.status == HoldStatus.ACTIVE.value)
                .group_by(col(Hold.buyer_id))
            )
            per_buyer = dict(rows.all())
            held = {s.id: s.held for s in await session.exec(select(Space))}
        assert sorted(per_buyer.values()) == [CAP] * BUYERS
        assert sum(held.values()) == BUYERS * CAP
    finally:
        for core in cores:
            await core.tickets.claims.close()
            await core.bus.drain()
            await core.bus.close()
        await other_db.dispose()


# --- the attack from the issue ------------------------------------------------------------


async def test_fifty_fake_buyers_holding_two_seats_each_cannot_sell_out_every_paid_space(
    paid: Core, clock: ManualClock
) -> None:
    """50 throwaway accounts in one community each try to hold 2 seats in each of its 3
    paid Spaces of 100 seats, all at once (before: all three "sold out" for 30 minutes).
    Now each account can keep 2 unpaid holds open, the community's claims are slowed past
    120 a minute, and held seats show as held: at most two Spaces are all held, none is
    sold out, the third stays on sale, and a real buyer gets a seat there. When the holds
    lapse, the same accounts wait 30 minutes before they may hold that Space again."""
    core = paid
    spaces = [await paid_space(core, capacity=100, limit=2, title=t) for t in "ABC"]
    fakes = [member(f"fake{i}") for i in range(50)]
    outcomes: list[Counter[str]] = []
    for space_id in spaces:  # the script goes Space by Space
        results = await asyncio.gather(
            *(core.tickets.reserve(fake, space_id, 2) for fake in fakes), return_exceptions=True
        )
        outcomes.append(Counter(type(r).__name__ for r in results))
    assert outcomes[0] == outcomes[1] == {"Reservation": 50}
    assert outcomes[2] == {"LimitExceeded": 20, "RateLimited": 30}  # cap, then community rate

    a, b, c = [await core.spaces.get(s) for s in spaces]
    for space in (a, b):
        assert (space.sold, space.held) == (0, 100)
        assert seats_left(space) == "0 of 100 (100 held, awaiting payment)"
        assert full_label(space) == "All held, try later"  # not "Sold out"
    assert (c.sold, c.held, seats_left(c)) == (0, 0, "100 of 100")

    with pytest.raises(RateLimited) as slowed:  # the community's bucket is empty just now
        await core.tickets.reserve(member("real"), c.id or 0)
    clock.advance(timedelta(seconds=slowed.value.retry_after))
    bought = await core.tickets.reserve(member("real"), c.id or 0)
    await core.tickets.confirm(bought.hold.id, reference="pi_real")
    c = await core.spaces.get(c.id or 0)
    assert (c.sold, c.held) == (1, 0)

    # the holds lapse unpaid: every held seat is back on sale
    clock.advance(timedelta(minutes=31))
    assert await core.tickets.expire_holds() == 100
    for space_id in spaces[:2]:
        space = await core.spaces.get(space_id)
        assert (space.sold, space.held, space.tickets_left) == (0, 0, 100)

    # ... and the same accounts cannot take them straight back, hold after hold
    clock.advance(timedelta(minutes=1))
    again = await asyncio.gather(
        *(core.tickets.reserve(fake, spaces[0], 2) for fake in fakes), return_exceptions=True
    )
    assert Counter(type(r).__name__ for r in again) == {"LimitExceeded": 50}
    assert isinstance(again[0], LimitExceeded) and again[0].message.startswith(
        f"Your last hold on Space #{spaces[0]} lapsed unpaid, so its seats went back to other "
        "buyers. You can hold seats of it again in 2"  # 30 minutes after it lapsed
    )
    a = await core.spaces.get(spaces[0])
    assert (a.held, a.tickets_left) == (0, 100)
    clock.advance(timedelta(minutes=1))  # a fresh minute of the community's claim rate
    await core.tickets.reserve(member("real2"), spaces[0], 2)  # others buy meanwhile
    clock.advance(timedelta(minutes=29))  # the cool-down is over: a buyer like any other
    await core.tickets.reserve(fakes[0], spaces[0], 2)
    assert (await core.spaces.get(spaces[0])).held == 4
    await core.bus.drain()


# --- migration 0009 --------------------------------------------------------------------------


async def test_migration_splits_sold_into_sold_and_held(
    empty_db: Database,
    settings: Settings,
) -> None:
    """A Space from before 0009 counted its active holds in `sold`: 2 tickets paid and 1
    seat held read sold=3. After: sold=2, held=1; the downgrade puts sold=3 back."""
    db = empty_db
    await db.migrate("0008")
    at = datetime(2030, 1, 1, tzinfo=UTC)
    rows = [
        ("communities", {"id": "shell:local", "platform": "shell", "external_id": "local",
                         "name": "", "created_at": at}),
        ("identities", {"id": 1, "platform": "shell", "community_id": "shell:local",
                        "user_id": "bob", "display_name": "Bob", "tz": "UTC", "created_at": at}),
        ("spaces", {"id": 1, "community_id": "shell:local", "host_id": 1, "title": "Old",
                    "description": "", "starts_at": at, "duration_minutes": 60,
                    "status": "scheduled", "price_minor": 500, "currency": "usd", "capacity": 5,
                    "sold": 3, "per_buyer_limit": 3, "manual_start": False, "created_at": at,
                    "updated_at": at}),
        *(("holds", {"id": hold_id, "space_id": 1, "buyer_id": 1, "quantity": n,
                     "amount_minor": 500 * n, "currency": "usd", "status": status,
                     "expires_at": at, "created_at": at})
          for hold_id, n, status in (("paid", 2, "confirmed"), ("open", 1, "active"),
                                     ("gone", 1, "expired"))),
    ]  # fmt: skip
    async with db.engine.begin() as conn:
        for table, row in rows:
            columns = ", ".join(row)
            values = ", ".join(f":{k}" for k in row)
            await conn.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)

    async def seats() -> tuple[int, ...]:
        async with db.engine.connect() as conn:
            columns = "sold, held" if await _has_held(conn) else "sold"
            row = (await conn.execute(sa.text(f"SELECT {columns} FROM spaces"))).one()
        return tuple(row)

    await db.migrate()
    assert await seats() == (2, 1)
    await _downgrade(db, "0008", load_cipher(None, settings.data_dir))
    assert await seats() == (3,)


async def _has_held(conn: AsyncConnection) -> bool:
    columns = await conn.run_sync(lambda sync: sa.inspect(sync).get_columns("spaces"))
    return any(c["name"] == "held" for c in columns)


async def test_in_chat_a_refusal_says_when_to_try_again_and_info_shows_held_seats(
    chat: Chat, core: Core
) -> None:
    core.use_payments(FakeGateway())
    reply = await chat.say(
        "alice", '/space create title:"Talk" starts:"tomorrow 18:00" tickets:3 price:5'
    )
    assert not reply.error, reply.text
    held = await chat.say("bob", "/ticket buy 1")
    assert not held.error and "held for you until" in held.text, held.text
    for _ in range(4):
        assert "at most 1 ticket" in (await chat.say("bob", "/ticket buy 1")).text
    refused = await chat.say("bob", "/ticket buy 1")
    assert refused.error and refused.text.endswith("Try again in 12 seconds."), refused.text

    info = await chat.say("alice", "/space info 1")
    assert "Tickets left: 2 of 3 (1 held, awaiting payment)" in info.text, info.text
    assert "Seats: 0 sold, 1 held (awaiting payment), 2 left of 3" in info.text
    await core.bus.drain()
