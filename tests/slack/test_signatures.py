"""Only requests Slack signed reach the adapter: unsigned, wrongly signed and replayed
ones get 401 and change nothing."""

from __future__ import annotations

import time

from sqlmodel import select

from bot.models import Space
from tests.slack.conftest import HOST, Slack

CREATE = 'create title:"Signed only" starts:"2030-01-05 18:00" tickets:5'


async def spaces(slack: Slack) -> list[Space]:
    async with slack.core.db.session() as session:
        return list(await session.exec(select(Space)))


async def test_bad_signatures_get_401_and_change_nothing(slack: Slack) -> None:
    body, _ = slack.command_body(HOST, "/space", CREATE)
    form = "application/x-www-form-urlencoded"
    good = slack.signed_headers(body)
    old = slack.signed_headers(body, timestamp=int(time.time()) - 6 * 60)
    cases = {
        "unsigned": {},
        "no timestamp": {"X-Slack-Signature": good["X-Slack-Signature"]},
        "wrong secret": {**good, "X-Slack-Signature": "v0=" + "0" * 64},
        "other body": slack.signed_headers(body.replace("Signed", "Forged")),
        "replayed": old,  # correctly signed, but six minutes old
    }
    for name, headers in cases.items():
        response = await slack.post(body, form, headers)
        assert response.status_code == 401, name
    await slack.settle()
    assert slack.fake.calls == []  # not even auth.test: Bolt stopped at the signature
    assert await spaces(slack) == []

    # the same request, signed now, goes through
    response = await slack.post(body, form)
    assert response.status_code == 200
    await slack.settle()
    [space] = await spaces(slack)
    assert space.title == "Signed only"


async def test_bad_signatures_on_interactions_and_events(slack: Slack) -> None:
    event = (
        '{"type":"event_callback","team_id":"T0ACME","event":{"type":"app_home_opened",'
        '"user":"UHOST01","tab":"home"}}'
    )
    response = await slack.post(event, "application/json", {})
    assert response.status_code == 401
    stale = slack.signed_headers(event, timestamp=int(time.time()) - 301)
    response = await slack.post(event, "application/json", stale)
    assert response.status_code == 401
    payload = "payload=%7B%22type%22%3A%22block_actions%22%7D"
    response = await slack.post(
        payload,
        "application/x-www-form-urlencoded",
        {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=deadbeef"},
    )
    assert response.status_code == 401
    await slack.settle()
    assert slack.fake.calls == []
