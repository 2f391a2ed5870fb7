"""Invite links (issue 16 item 3): a host makes a link good for N tickets; people redeem it
in chat (`/ticket redeem`); uses are taken in the claim's transaction, so racing
redeemers never get more than N. Invite-only Spaces take no other claims. Hosts list
their links (`/space invites`) and withdraw one (`/space invite SPACE revoke:ID`): a
redemption racing the revoke either took its use before the revoke committed or is
refused, and none is counted after it.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from adapters.shell.chat import Chat
from bot.actors import Actor
from bot.clock import ManualClock
from bot.commands.times import format_when
from bot.core import Core
from bot.db import Database
from bot.errors import UserError
from bot.models import (
    Hold,
    HoldStatus,
    InviteLink,
    InviteRedemption,
    Platform,
    Space,
    Visibility,
)
from bot.services.invites import WITHDRAWN
from bot.services.tickets import Reservation
from bot.settings import Settings
from tests.fakes.payments import FakeGateway
from tests.racing import HOST, outcome, person, racing

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestCollectionWarning")


async def link(core: Core) -> InviteLink:
    async with core.db.session() as session:
        return (await session.exec(select(InviteLink))).one()


async def test_an_invite_link_gets_a_ticket_until_its_uses_are_gone(
    chat: Chat, core: Core, clock: ManualClock
) -> None:
    core.use_payments(FakeGateway())
    made = await chat.say(
        "alice",
        '/space create title:"Secret" starts:"in 2 days" tickets:10 price:5 visibility:invite',
    )
    assert not made.error, made.text
    refused = await chat.say("bob", "/ticket buy 1")
    assert (refused.error, refused.text) == (
        True,
        "Space #1 is invite-only: ask its host for an invite link.",
    )
    assert (await chat.say("bob", "/space invite 1 uses:2")).text == (
        "Only the host and co-hosts can make invite links."
    )
    invite = await chat.say("alice", "/space invite 1 uses:2")
    assert not invite.error, invite.text
    command = invite.text.splitlines()[-1]
    assert command.startswith("/ticket redeem ")
    token = command.split()[-1]

    got = await chat.say("bob", command)
    assert not got.error and "held for you" in got.text, got.text
    assert got.buttons[0].label == "Pay now"
    assert not (await chat.say("carol", f"/ticket redeem {token}")).error
    used = await chat.say("dave", f"/ticket redeem {token}")
    assert (used.error, used.text) == (True, "This invite link to Space #1 is used up.")
    forged = await chat.say("dave", f"/ticket redeem {token[:-3]}abc")
    assert forged.error and "not valid" in forged.text

    # an unpaid hold gives its use back
    clock.advance(timedelta(minutes=core.settings.hold_minutes + 1))
    assert await core.tickets.expire_holds() == 2
    assert (await link(core)).uses == 0
    assert not (await chat.say("dave", f"/ticket redeem {token}")).error
    # invite-only Spaces are not listed
    assert "Secret" not in (await chat.say("bob", "/space list")).text


# --- an invite and a promo code in one claim ---------------------------------------------------


async def test_a_claim_refused_for_its_promo_code_keeps_its_invites_use(
    chat: Chat, core: Core
) -> None:
    """All or nothing: an invite's use taken for a claim whose code is then refused goes
    back in the same transaction, so the link still gets its N tickets."""
    core.use_payments(FakeGateway())
    made = await chat.say(
        "alice",
        '/space create title:"Secret" starts:"in 2 days" tickets:10 price:10 limit:4 '
        "visibility:invite",
    )
    assert not made.error, made.text
    assert not (await chat.say("alice", "/space promo 1 code:ONCE percent:50 uses:1")).error
    assert not (await chat.say("alice", "/space promo 1 code:OFF percent:50 uses:5")).error
    assert not (await chat.say("alice", "/space promo 1 code:OFF off")).error
    invite = await core.invites.create(chat.actor("alice"), 1, 2)
    bob, dave = chat.actor("bob"), chat.actor("dave")

    for code, quantity, why in (
        ("NOPE", 1, "There is no code NOPE for Space #1."),
        ("OFF", 1, "OFF is turned off for Space #1."),
        ("ONCE", 2, "ONCE has only 1 use left; buy at most 1 ticket with it (2 asked)."),
    ):
        with pytest.raises(UserError) as refused:
            await core.tickets.reserve(bob, 1, quantity, code=code, invite=invite.link.id)
        assert refused.value.message == why
        assert (await link(core)).uses == 0, code
    assert await held_by(core, "bob") == []
    async with core.db.session() as session:
        assert list(await session.exec(select(InviteRedemption))) == []
    space = await core.spaces.get(1)
    assert (space.sold, space.held) == (0, 0)

    got = await core.tickets.reserve(bob, 1, code="ONCE", invite=invite.link.id)
    assert (got.hold.amount_minor, (await link(core)).uses) == (500, 1)
    assert not (await chat.say("carol", f"/ticket redeem {invite.token}")).error
    with pytest.raises(UserError, match="used up"):  # both of the link's uses are held
        await core.tickets.reserve(dave, 1, invite=invite.link.id)
    assert (await link(core)).uses == 2


# --- listing and withdrawing -----------------------------------------------------------------

LINE = re.compile(r"^([0-9a-f]{8}) — (\d+) of (\d+) tickets taken — expires (.+) — (open|used up)$")


async def made_link(chat: Chat, space_id: int, uses: int) -> str:
    """The token of a new link from the host's `/space invite` reply."""
    made = await chat.say("alice", f"/space invite {space_id} uses:{uses}")
    assert not made.error, made.text
    return made.text.splitlines()[-1].split()[-1]


async def held_by(core: Core, name: str) -> list[Hold]:
    person = await core.identities.ensure(Actor(Platform.SHELL, "local", name, name))
    async with core.db.session() as session:
        return list(await session.exec(select(Hold).where(Hold.buyer_id == person.id)))


async def test_a_host_lists_and_withdraws_invite_links(
    chat: Chat, core: Core, clock: ManualClock
) -> None:
    core.use_payments(FakeGateway())
    made = await chat.say(
        "alice",
        '/space create title:"Secret" starts:"in 2 days" tickets:10 price:5 visibility:invite',
    )
    assert not made.error, made.text
    empty = await chat.say("alice", "/space invites 1")
    assert empty.text == "Space #1 has no invite links. Make one with /space invite 1 uses:10"
    first = await made_link(chat, 1, 2)
    second = await made_link(chat, 1, 5)
    assert not (await chat.say("bob", f"/ticket redeem {first}")).error

    listed = await chat.say("alice", "/space invites 1")
    assert not listed.error and listed.title == "Invite links of #1", listed.text
    *lines, hint = listed.text.splitlines()
    assert hint == "Withdraw one with /space invite 1 revoke:ID"
    rows = [LINE.match(line) for line in lines]
    assert all(rows), lines
    space = await core.spaces.get(1)
    expires = format_when(core.invites.expires_at(space), ZoneInfo("UTC"))
    links = {row.group(1): row.groups()[1:] for row in rows if row}
    by_token = {t: core.invites.read(t, clock.now()).ticket_id[:8] for t in (first, second)}
    assert links == {
        by_token[first]: ("1", "2", expires, "open"),
        by_token[second]: ("0", "5", expires, "open"),
    }

    # the people it concerns, and nobody else
    not_staff = "Only the host, co-hosts and moderators can see and withdraw invite links."
    assert (await chat.say("bob", "/space invites 1")).text == not_staff
    refused = await chat.say("bob", f"/space invite 1 revoke:{by_token[first]}")
    assert (refused.error, refused.text) == (True, not_staff)
    assert not (await chat.say("alice", "/space cohost add 1 @carol")).error
    assert (await chat.say("carol", "/space invites 1")).text == listed.text
    # a moderator sees the links (to stop a leaked one) but makes none
    chat.person("mo", moderator=True)
    assert (await chat.say("mo", "/space invites 1")).text == listed.text
    made_by_mo = await chat.say("mo", "/space invite 1 uses:3")
    assert (made_by_mo.error, made_by_mo.text) == (
        True,
        "Only the host and co-hosts can make invite links.",
    )

    revoked = await chat.say("carol", f"/space invite 1 revoke:{by_token[first]}")
    assert revoked.text == (
        f"Invite {by_token[first]} of Space #1 is withdrawn: it got 1 of its 2 ticket(s), "
        "and gets no more. Tickets already got through it stay."
    )
    relisted = (await chat.say("alice", "/space invites 1")).text.splitlines()
    withdrawn = format_when(clock.now(), ZoneInfo("UTC"))
    assert sorted(relisted) == sorted(
        [
            f"{by_token[first]} — 1 of 2 tickets taken — expires {expires} — withdrawn {withdrawn}",
            next(line for line in lines if line.startswith(by_token[second])),
            hint,
        ]
    )

    # redeeming the withdrawn link is refused and claims nothing; the other one works
    before = await link_row(core, by_token[first])
    used = await chat.say("dave", f"/ticket redeem {first}")
    assert (used.error, used.text) == (True, WITHDRAWN)
    assert await link_row(core, by_token[first]) == before
    assert await held_by(core, "dave") == []
    assert (await core.spaces.get(1)).held == 1  # bob's hold only
    assert not (await chat.say("dave", f"/ticket redeem {second}")).error
    leaked = core.invites.read(await made_link(chat, 1, 1), clock.now()).ticket_id[:8]
    stopped = await chat.say("mo", f"/space invite 1 revoke:{leaked}")
    assert stopped.text.startswith(f"Invite {leaked} of Space #1 is withdrawn: it got 0 of its 1")
    assert (await link_row(core, leaked)).revoked_at is not None

    # the refusals, each saying why
    again = await chat.say("alice", f"/space invite 1 revoke:{by_token[first].upper()}")
    assert again.text == f"Invite {by_token[first]} of Space #1 is already withdrawn."
    unknown = await chat.say("alice", "/space invite 1 revoke:0000000000")
    assert unknown.text == "There is no invite 0000000000: /space invites 1 lists them."
    junk = await chat.say("alice", "/space invite 1 revoke:x!y")
    assert junk.text == "'x!y' is not an invite id: /space invites 1 lists them."
    both = await chat.say("alice", f"/space invite 1 uses:3 revoke:{by_token[second]}")
    assert both.error and "not both" in both.text, both.text
    neither = await chat.say("alice", "/space invite 1")
    assert neither.error and "uses: is missing" in neither.text, neither.text
    other = await chat.say("alice", '/space create title:"Other" starts:"in 3 days" tickets:5')
    assert not other.error, other.text
    elsewhere = core.invites.read(await made_link(chat, 2, 1), clock.now()).ticket_id[:8]
    foreign = await chat.say("alice", f"/space invite 1 revoke:{elsewhere}")
    assert (
        foreign.text == f"Invite {elsewhere} is not one of Space #1's: /space invites 1 lists them."
    )
    assert (await link_row(core, elsewhere)).revoked_at is None
    assert (await link_row(core, by_token[second])).revoked_at is None

    # an unpaid hold through a withdrawn link still gives its use back; the link stays shut
    clock.advance(timedelta(minutes=core.settings.hold_minutes + 1))
    assert await core.tickets.expire_holds() == 2
    assert (await link_row(core, by_token[first])).uses == 0
    assert (await chat.say("erin", f"/ticket redeem {first}")).text == WITHDRAWN


async def link_row(core: Core, short: str) -> InviteLink:
    async with core.db.session() as session:
        rows = await session.exec(select(InviteLink).where(col(InviteLink.id).startswith(short)))
        return rows.one()


# --- the race ------------------------------------------------------------------------------

PEOPLE, USES = 50, 10


async def left_by(db: Database, space_id: int) -> tuple[InviteLink, list[Hold], Space]:
    """What a race left: the (one) invite link, the active holds, and the Space."""
    async with db.session() as session:
        row = (await session.exec(select(InviteLink))).one()
        holds = list(await session.exec(select(Hold).where(Hold.status == HoldStatus.ACTIVE.value)))
        space = await session.get(Space, space_id)
    assert space is not None
    return row, holds, space


async def race(settings: Settings, db: Database) -> None:
    """Two cores on one database, 50 people redeem one link good for 10, all at once."""
    async with racing(settings, db, capacity=PEOPLE, visibility=Visibility.INVITE) as race:
        invite = await race.cores[0].invites.create(HOST, race.space_id, USES)
        outcomes = await asyncio.gather(
            *(
                outcome(race.core(n).tickets.redeem(person(n, "p"), invite.token))
                for n in range(PEOPLE)
            )
        )
        kinds = Counter(type(o).__name__ for o in outcomes)
        assert kinds == {"Reservation": USES, "LimitExceeded": PEOPLE - USES}, kinds
        assert all(isinstance(o, Reservation) or "used up" in str(o) for o in outcomes)
        row, holds, space = await left_by(db, race.space_id)
        assert row.uses == USES and len(holds) == USES
        assert (space.sold, space.held) == (0, USES)


async def test_50_racing_redemptions_of_a_10_use_link_give_exactly_10_sqlite(
    settings: Settings, sqlite_db: Database
) -> None:
    await race(settings, sqlite_db)


@pytest.mark.postgres
async def test_50_racing_redemptions_of_a_10_use_link_give_exactly_10_postgres(
    settings: Settings, pg_db: Database
) -> None:
    await race(settings, pg_db)


REDEEMERS, BEFORE = 60, 20


async def revoke_race(settings: Settings, db: Database) -> None:
    """60 people redeem one link good for 1,000 on two cores, and the host withdraws it
    once the first of 20 has its answer, while 40 more come in, then 10 after the revoke
    returned: the uses counted when the revoke committed are all there ever are, each a
    hold; everyone else is told the link was withdrawn."""
    async with racing(settings, db, capacity=2 * REDEEMERS, visibility=Visibility.INVITE) as race:
        invite = await race.cores[0].invites.create(HOST, race.space_id, 1000)
        short = invite.link.id[:8]

        def redeem(n: int) -> asyncio.Task[object]:
            claim = race.core(n).tickets.redeem(person(n, "p"), invite.token)
            return asyncio.ensure_future(outcome(claim))

        early = [redeem(n) for n in range(BEFORE)]
        await asyncio.wait(early, return_when=asyncio.FIRST_COMPLETED)  # some are in
        revoking = asyncio.ensure_future(race.cores[1].invites.revoke(HOST, race.space_id, short))
        late = [redeem(n) for n in range(BEFORE, REDEEMERS)]
        revoked = await revoking
        after = [redeem(n) for n in range(REDEEMERS, REDEEMERS + 10)]  # once it committed
        outcomes = await asyncio.gather(*early, *late, *after)

        got = [o for o in outcomes if isinstance(o, Reservation)]
        refused = [o for o in outcomes if not isinstance(o, Reservation)]
        assert all(str(o) == WITHDRAWN for o in refused), Counter(map(str, refused))
        assert all(str(o) == WITHDRAWN for o in outcomes[REDEEMERS:])
        assert 1 <= len(got) <= REDEEMERS
        row, holds, space = await left_by(db, race.space_id)
        async with db.session() as session:
            redemptions = list(await session.exec(select(InviteRedemption)))
        assert row.revoked_at is not None
        assert row.uses == revoked.link.uses == len(got) == len(holds) == len(redemptions)
        assert (space.sold, space.held) == (0, len(got))


async def test_redemptions_racing_a_revoke_count_none_after_it_sqlite(
    settings: Settings, sqlite_db: Database
) -> None:
    await revoke_race(settings, sqlite_db)


@pytest.mark.postgres
async def test_redemptions_racing_a_revoke_count_none_after_it_postgres(
    settings: Settings, pg_db: Database
) -> None:
    await revoke_race(settings, pg_db)


async def test_a_speaker_invite_puts_someone_on_stage_when_they_join(
    chat: Chat, core: Core
) -> None:
    made = await chat.say("alice", '/space create title:"Panel" starts:"in 1 hour" tickets:10')
    assert not made.error, made.text
    refused = await chat.say("bob", "/stage invite @carol space:1")
    assert refused.error and "Only the host" in refused.text, refused.text
    invited = await chat.say("alice", "/stage invite @carol space:1")
    assert invited.text == "carol is invited to speak: a speaker on joining.", invited.text
    again = await chat.say("alice", "/stage invite @carol space:1")
    assert again.text == "carol is already a speaker."
    [dm] = [m for m in await _dms(core, "carol")]
    assert dm.startswith("You are invited to speak in Panel")

    space = await core.spaces.get(1)
    carol = await core.identities.ensure(chat.actor("carol"))
    assert not (await core.stage.seat(space, carol)).may_speak  # no ticket yet: not on stage
    assert not (await chat.say("carol", "/ticket buy 1")).error
    seat = await core.stage.seat(space, carol)
    assert seat.may_speak and seat.role.value == "speaker"


async def _dms(core: Core, user: str) -> list[str]:
    from sqlmodel import col

    from bot.models import OutboxMessage

    await core.bus.drain()
    async with core.db.session() as session:
        rows = await session.exec(
            select(OutboxMessage.text).where(col(OutboxMessage.identity_key).endswith(f":{user}"))
        )
        return list(rows)
