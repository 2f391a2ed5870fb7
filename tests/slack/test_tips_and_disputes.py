"""Money news in a workspace: a public tip is thanked under the Space's announcement, a
private one is not; a disputed payment reaches the host and each moderator by DM."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.slack.models import SlackAnnouncement
from bot.actors import Actor, UserRef
from bot.events import PaymentDisputed, TipReceived
from bot.models import Platform
from tests.slack.conftest import (
    ANNOUNCE,
    BOB,
    CAROL,
    DAVE,
    EVE,
    HOST,
    USERS,
    Slack,
    slack_user,
)
from tests.slack.fake_slack import TEAM, FakeSlack
from tests.slack.test_story import create_space

OWNER = "UOWNER01"  # the workspace's owner: a moderator too
GONE = "UGONE001"  # a deactivated admin: nobody to tell


class Workspace(FakeSlack):
    """The Slack fake, answering `users.list` two members a page, as Slack pages it."""

    def _answer(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        if method != "users.list":
            return super()._answer(method, params, token)
        members = list(self.users.values())
        start = int(params.get("cursor") or 0)
        page = members[start : start + 2]
        more = start + 2 < len(members)
        return {
            "ok": True,
            "members": page,
            "response_metadata": {"next_cursor": str(start + 2) if more else ""},
        }


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    users = {uid: slack_user(uid, **info) for uid, info in USERS.items()}
    users[OWNER] = slack_user(OWNER, "olga", is_owner=True)
    users[GONE] = slack_user(GONE, "gone", is_admin=True, deleted=True)
    users["UBOTADMN"] = slack_user("UBOTADMN", "helper", is_admin=True, is_bot=True)
    workspace = Workspace(users=users, groups={"S0MODS": ("stage-mods", [DAVE])})
    await workspace.start()
    yield workspace
    await workspace.stop()


def key(user: str) -> str:
    return f"slack:{TEAM}:{user}"


async def tip(slack: Slack, *, public: bool, space_id: int) -> None:
    """What billing publishes once Stripe says bob's tip to the host was paid."""
    await slack.core.identities.ensure(Actor(Platform.SLACK, TEAM, BOB, "Bob"))
    slack.core.bus.publish(
        TipReceived(
            community_id=f"slack:{TEAM}",
            host_key=key(HOST),
            tipper_key=key(BOB),
            amount_minor=500,
            currency="usd",
            message="Great <show> & more",
            public=public,
            space_id=space_id,
        )
    )
    await slack.settle()


def posts_in(slack: Slack, channel: str) -> list[Any]:
    return [c for c in slack.fake.called("chat.postMessage") if c.params["channel"] == channel]


async def test_a_public_tip_is_thanked_under_the_announcement(slack: Slack) -> None:
    space_id = await create_space(slack, "Tip jar")
    assert len(posts_in(slack, ANNOUNCE)) == 1
    await tip(slack, public=True, space_id=space_id)

    [_, thanks] = posts_in(slack, ANNOUNCE)
    assert thanks.params["text"] == (
        f'Thank you <@{BOB}> for tipping <@{HOST}> $5.00: "Great &lt;show&gt; &amp; more"'
    )
    async with slack.core.db.session() as session:
        row = await session.get(SlackAnnouncement, (space_id, TEAM))
    assert row is not None and thanks.params["thread_ts"] == row.ts  # in its thread
    [to_host] = slack.fake.dms_to(HOST)
    assert "Bob tipped you $5.00 for Tip jar" in to_host.params["text"]


async def test_a_private_tip_is_only_a_dm(slack: Slack) -> None:
    space_id = await create_space(slack, "Quiet tips")
    await tip(slack, public=False, space_id=space_id)

    assert len(posts_in(slack, ANNOUNCE)) == 1  # the announcement, and no thanks
    [to_host] = slack.fake.dms_to(HOST)
    assert "Bob tipped you $5.00 for Quiet tips" in to_host.params["text"]


async def test_a_dispute_reaches_the_host_and_each_moderator(slack: Slack) -> None:
    space_id = await create_space(slack, "Disputed <b>")
    response, _ = await slack.click(BOB, "run:0", f"/ticket buy {space_id}")
    assert response.status_code == 200
    await slack.settle()
    bob = await slack.core.identities.by_key(key(BOB))
    assert bob is not None and bob.id is not None
    [ticket] = await slack.core.tickets.tickets_of(bob.id)
    sent_before = {user: len(slack.fake.dms_to(user)) for user in USERS}

    slack.core.bus.publish(
        PaymentDisputed(
            space_id=space_id,
            community_id=f"slack:{TEAM}",
            holder_key=key(BOB),
            ticket_ids=(ticket.id,),
            amount_minor=1500,
            currency="usd",
            reason="fraudulent",
        )
    )
    await slack.settle()

    alert = (
        f"Moderators: a payment for #{space_id} Disputed &lt;b&gt; was disputed with the "
        f"buyer's bank (fraudulent): $15.00 from <@{BOB}>. Ticket(s) {ticket.id} were revoked."
    )
    # admins (carol), owners (olga) and the moderator group (dave), each by DM
    for moderator in (CAROL, OWNER, DAVE):
        [dm] = slack.fake.dms_to(moderator)
        assert dm.params["text"] == alert
    # the host has the core's own DM; the buyer and plain members hear nothing of it
    new_to_host = slack.fake.dms_to(HOST)[sent_before[HOST] :]
    assert [c.params["text"] for c in new_to_host if "disputed" in c.params["text"]] == [
        f"A payment of $15.00 for Disputed &lt;b&gt; (#{space_id}) was disputed with the buyer's "
        f"bank (fraudulent). Ticket(s) {ticket.id} were revoked. Stripe will ask for "
        "evidence by email; the platform operator has the details."
    ]
    for nobody in (BOB, EVE, GONE, "UBOTADMN"):
        assert not any("Moderators:" in c.params["text"] for c in slack.fake.dms_to(nobody))
    # every page of the member list was read
    cursors = [c.params.get("cursor") for c in slack.fake.called("users.list")]
    assert cursors == [None, "2", "4", "6"]


async def test_a_host_or_cohost_who_moderates_gets_one_dm_about_a_dispute(
    slack: Slack, fake: FakeSlack
) -> None:
    fake.users[HOST]["is_admin"] = True
    space_id = await create_space(slack, "Own show")
    await slack.core.spaces.set_cohost(  # dave moderates too (the moderators' group)
        Actor(Platform.SLACK, TEAM, HOST, "Host"), space_id, UserRef(DAVE), True
    )
    slack.core.bus.publish(
        PaymentDisputed(
            space_id=space_id,
            community_id=f"slack:{TEAM}",
            holder_key=key(BOB),
            ticket_ids=("T1",),
            amount_minor=1500,
            currency="usd",
        )
    )
    await slack.settle()
    about_it = [c for c in fake.dms_to(HOST) if "disputed" in c.params["text"]]
    assert len(about_it) == 1 and about_it[0].params["text"].startswith("A payment of $15.00")
    assert [c.params["text"][:12] for c in fake.dms_to(CAROL)] == ["Moderators: "]
    about_it = [c for c in fake.dms_to(DAVE) if "disputed" in c.params["text"]]
    assert len(about_it) == 1 and about_it[0].params["text"].startswith("A payment of $15.00")
