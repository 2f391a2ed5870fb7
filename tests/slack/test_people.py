"""Who someone is, as Slack says: their zone (read from users.info the first time they are
seen, kept with their identity), whether they are a guest, which user groups they are in,
and how long Stagepass has known them; the host rules read all of it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.clock import ManualClock
from bot.models import Identity, Space
from tests.slack.conftest import BOB, EVE, HOST, MakeSlack, Slack, slack_user
from tests.slack.test_commands import open_create_modal

GUEST, ONE_CHANNEL = "UGUEST01", "UGUEST02"


async def spaces(slack: Slack) -> list[Space]:
    async with slack.core.db.session() as session:
        return list(await session.exec(select(Space)))


async def create(slack: Slack, user: str, starts: str = "tomorrow 18:00") -> str:
    response, name = await slack.command(
        user, "/space", f'create title:"Zones" starts:"{starts}" tickets:5'
    )
    text: str = (await slack.answer(response, name))["text"]
    await slack.settle()
    return text


async def test_tomorrow_1800_is_read_in_the_hosts_slack_zone(
    slack: Slack, clock: ManualClock
) -> None:
    """bob is in New York (users.info) and new to Stagepass: his "tomorrow 18:00" is New
    York's, and his identity keeps the zone."""
    text = await create(slack, BOB)
    assert "Space #1 is announced." in text
    [space] = await spaces(slack)
    new_york = ZoneInfo("America/New_York")
    tomorrow = clock.now().astimezone(new_york).date() + timedelta(days=1)
    assert space.starts_at == datetime.combine(
        tomorrow, datetime.min.time().replace(hour=18), tzinfo=new_york
    )
    identity = await slack.core.identities.by_key(f"slack:T0ACME:{BOB}")
    assert identity is not None and identity.tz == "America/New_York"
    # the reply's times are Slack date tokens: each reader sees their own zone
    unix = int(space.starts_at.timestamp())
    assert f"Starts: <!date^{unix}^{{date_short_pretty}} {{time}}|" in text


async def test_the_form_says_the_zone_of_someone_new_and_writes_nothing(slack: Slack) -> None:
    view, _ = await open_create_modal(slack, user=EVE)
    starts_time = next(b for b in view["blocks"] if b.get("block_id") == "starts_time")
    assert starts_time["element"]["timezone"] == "America/New_York"
    assert starts_time["hint"]["text"].startswith("In your time zone, America/New_York")
    async with slack.core.db.session() as session:
        assert list(await session.exec(select(Identity))) == []  # opening a form writes nothing


async def test_a_zone_slack_does_not_know_of_is_utc(slack: Slack) -> None:
    slack.fake.users["UODD0001"] = slack_user("UODD0001", "odd", tz="Mars/Olympus_Mons")
    response, name = await slack.command("UODD0001", "/tz")
    assert (await slack.answer(response, name))["text"].startswith("Your time zone is UTC.")


async def test_without_tz_the_offset_gives_a_fixed_zone(slack: Slack) -> None:
    slack.fake.users["UOFF0001"] = slack_user("UOFF0001", "off", tz=None, tz_offset=-5 * 3600)
    response, name = await slack.command("UOFF0001", "/tz")
    assert (await slack.answer(response, name))["text"].startswith("Your time zone is Etc/GMT+5.")


async def test_guests_never_host_by_default(make_slack: MakeSlack) -> None:
    slack: Slack = await make_slack()
    slack.fake.users[GUEST] = slack_user(GUEST, "gus", is_restricted=True)
    slack.fake.users[ONE_CHANNEL] = slack_user(ONE_CHANNEL, "una", is_ultra_restricted=True)
    for guest in (GUEST, ONE_CHANNEL):
        text = await create(slack, guest)
        assert text.startswith(":warning:") or "Guests of this workspace can't host" in text
        assert "Guests of this workspace can't host" in text
    assert await spaces(slack) == []
    assert "Space #1 is announced." in await create(slack, EVE)  # a member can


async def test_the_guests_rule_lets_them_host(make_slack: MakeSlack) -> None:
    slack: Slack = await make_slack(host_rules=["anyone", "guests"])
    slack.fake.users[GUEST] = slack_user(GUEST, "gus", is_restricted=True)
    assert "Space #1 is announced." in await create(slack, GUEST)


async def test_role_rule_means_a_user_group(make_slack: MakeSlack) -> None:
    slack: Slack = await make_slack(host_rules=["role:stage-hosts"])
    slack.fake.groups["S0HOSTS"] = ("stage-hosts", [BOB])
    refused = await create(slack, EVE)
    assert "Only members with the 'stage-hosts' role can host Spaces here." in refused
    assert "Space #1 is announced." in await create(slack, BOB)
    lookups = [c for c in slack.fake.called("usergroups.list") if "include_users" in c.params]
    assert len(lookups) == 1  # one per workspace and minute, not one per command


async def test_member_days_counts_from_the_day_stagepass_first_saw_them(
    make_slack: MakeSlack, clock: ManualClock
) -> None:
    """Slack does not say when someone joined a workspace."""
    slack: Slack = await make_slack(host_rules=["member_days:7"])
    assert "members of at least 7 days" in await create(slack, EVE)
    clock.advance(timedelta(days=6, hours=23))
    assert "members of at least 7 days" in await create(slack, EVE)
    clock.advance(timedelta(hours=2))
    assert "announced" in await create(slack, EVE, starts="in 3 days")
    assert "members of at least 7 days" in await create(slack, HOST)  # new today
