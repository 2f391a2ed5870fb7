"""The public page sells (issue 15 item 4) in Slack: its call to action opens the Space's
announcement by its permalink (`chat.getPermalink`, asked once), or by Slack's documented
`app_redirect` to the channel when Slack cannot say."""

from __future__ import annotations

from tests.slack.conftest import ANNOUNCE, BOB, Slack
from tests.slack.test_story import buy, create_space


async def test_the_public_page_links_to_the_slack_announcement(slack: Slack) -> None:
    space_id = await create_space(slack, "Ask me anything", tickets=3)
    [post] = [c for c in slack.fake.called("chat.postMessage") if c.params["channel"] == ANNOUNCE]
    ts = "1700000000.000001"
    assert post.params["channel"] == ANNOUNCE

    page = await slack.http.get(f"/spaces/{space_id}")
    assert page.status_code == 200
    permalink = f"https://acme.slack.com/archives/{ANNOUNCE}/p{ts.replace('.', '')}"
    assert f'<a href="{permalink}" rel="noopener noreferrer" data-platform="slack">' in page.text
    assert "Get a ticket in Slack" in page.text and f"/ticket buy {space_id}" in page.text
    await slack.http.get(f"/spaces/{space_id}")
    assert len(slack.fake.called("chat.getPermalink")) == 1  # asked once per Space

    await buy(slack, BOB, space_id)
    await slack.settle()
    assert "2 left of 3" in (await slack.http.get(f"/spaces/{space_id}")).text


async def test_without_a_permalink_the_channel_redirect(slack: Slack) -> None:
    slack.fake.fail("chat.getPermalink", "channel_not_found")
    space_id = await create_space(slack, "Ask me anything")
    [link] = await slack.core.announcements.of(space_id)
    assert link.platform == "Slack"
    assert link.url == f"https://slack.com/app_redirect?team={slack.team}&channel={ANNOUNCE}"
