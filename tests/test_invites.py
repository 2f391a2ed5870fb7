"""Invite links (issue 16 item 3): a host makes a link good for N tickets; people redeem it
in chat (`/ticket redeem`); uses are taken in the claim's transaction, so racing
redeemers never get more than N. Invite-only Spaces take no other claims.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlmodel import select

from adapters.shell.chat import Chat
from bot.clock import ManualClock
from bot.core import Core
from bot.db import Database
from bot.models import Hold, HoldStatus, InviteLink, Space, Visibility
from bot.services.tickets import Reservation
from bot.settings import Settings
from tests.http.test_api import FakeGateway
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


# --- the race ------------------------------------------------------------------------------

PEOPLE, USES = 50, 10


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
        async with db.session() as session:
            row = (await session.exec(select(InviteLink))).one()
            holds = list(
                await session.exec(select(Hold).where(Hold.status == HoldStatus.ACTIVE.value))
            )
            space = await session.get(Space, race.space_id)
        assert row.uses == USES and len(holds) == USES
        assert space is not None and (space.sold, space.held) == (0, USES)


@pytest.mark.timeout(120)
async def test_50_racing_redemptions_of_a_10_use_link_give_exactly_10_sqlite(
    settings: Settings, sqlite_db: Database
) -> None:
    await race(settings, sqlite_db)


@pytest.mark.postgres
@pytest.mark.timeout(180)
async def test_50_racing_redemptions_of_a_10_use_link_give_exactly_10_postgres(
    settings: Settings, pg_db: Database
) -> None:
    await race(settings, pg_db)


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
