"""`TicketService.closed_since`: the ticket closures a process that did not see their events
replays from the database (the Discord bot takes back the roles of refunds a web worker's
Stripe webhook made: tests/discord/test_stage_watch.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.actors import Actor
from bot.clock import ManualClock
from bot.core import Core
from bot.models import Platform, Ticket
from bot.services.spaces import SpaceDraft
from tests.test_hoarding import free_space, member


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_core(request: pytest.FixtureRequest) -> Core:
    core: Core = request.getfixturevalue("core" if request.param == "sqlite" else "pg_core")
    return core


async def _ticket(core: Core, who: Actor, space_id: int) -> Ticket:
    [ticket] = (await core.tickets.reserve(who, space_id)).tickets
    return ticket


async def test_closures_of_one_platform_in_spaces_not_over_oldest_first(
    any_core: Core, clock: ManualClock
) -> None:
    core = any_core
    talk, over = await free_space(core), await free_space(core)
    bob, carol, erin = member("bob"), member("carol"), member("erin")
    sam = Actor(Platform.SLACK, "T1", "sam", "Sam")
    draft = SpaceDraft(title="Slack", starts_at=clock.now() + timedelta(days=2), capacity=5)
    on_slack = (await core.spaces.create(Actor(Platform.SLACK, "T1", "host", "H"), draft)).id
    assert on_slack is not None
    tickets = {who.user_id: await _ticket(core, who, talk) for who in (bob, carol)}
    tickets["sam"] = await _ticket(core, sam, on_slack)
    ended = await _ticket(core, erin, over)
    await _ticket(core, member("dave"), talk)  # stays valid
    assert await core.tickets.closed_since(None, platform=Platform.DISCORD) == []

    closed_at = []
    for name in ("carol", "sam", "bob"):
        clock.advance(timedelta(minutes=1))
        assert await core.tickets.refund(tickets[name], reason=f"for {name}")
        closed_at.append(clock.now())
    clock.advance(timedelta(minutes=1))
    assert await core.tickets.refund(ended, reason="erin's")
    await core.spaces.start(None, over, confirm=True)
    await core.spaces.end(None, over)  # its closures no longer matter

    closed = await core.tickets.closed_since(None, platform=Platform.DISCORD)
    assert [(c.event.holder_key, c.event.reason, c.event.space_id) for c in closed] == [
        (carol.key, "for carol", talk),
        (bob.key, "for bob", talk),
    ]
    assert [c.at for c in closed] == [closed_at[0], closed_at[2]]
    assert [c.event.ticket_id for c in closed] == [tickets["carol"].id, tickets["bob"].id]
    assert all(c.event.community_id == bob.community_id for c in closed)
    assert not any(c.event.refunded for c in closed)  # free tickets are revoked
    later = await core.tickets.closed_since(closed_at[0], platform=Platform.DISCORD)
    assert [c.event.holder_key for c in later] == [bob.key]
    slack = await core.tickets.closed_since(None, platform=Platform.SLACK)
    assert [(c.event.holder_key, c.event.space_id) for c in slack] == [(sam.key, on_slack)]
