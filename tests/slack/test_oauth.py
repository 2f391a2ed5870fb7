"""Many workspaces: the OAuth install keeps each workspace's bot token in our database,
requests from that workspace use it, and uninstalling forgets it."""

from __future__ import annotations

import asyncio
import io
import re
import urllib.parse
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import select

from adapters.slack.models import SlackInstallation, SlackOAuthState
from bot.db import Database
from bot.logs import configure
from tests.conftest import leaks
from tests.slack.conftest import HOST, Slack
from tests.slack.fake_slack import BOT_USER

pytestmark = [
    # slack-sdk sends the client secret with aiohttp's BasicAuth, which aiohttp 3.14 deprecates
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
]

TEAM2 = "T0TWO"
TOKEN2 = "xoxb-two"
COOKIE = "slack-app-oauth-state"


OAUTH_SETTINGS: dict[str, Any] = {
    "slack_bot_token": None,
    "slack_client_id": "1234.5678",
    "slack_client_secret": SecretStr("oauth-client-secret"),
    "slack_state_secret": SecretStr("a-long-random-state-secret"),
    "slack_announce_channel": None,
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def oauth_db(request: pytest.FixtureRequest) -> Database | None:
    """Installations are kept in the database: SQLite (the default), then PostgreSQL."""
    return request.getfixturevalue("pg_db") if request.param == "postgres" else None


@pytest.fixture
async def oauth(make_slack: Any, oauth_db: Database | None) -> Slack:
    slack: Slack = await make_slack(database=oauth_db, **OAUTH_SETTINGS)
    slack.team = TEAM2
    slack.fake.tokens = {TOKEN2: TEAM2}
    slack.fake.oauth_access = {
        "ok": True,
        "app_id": "A0STAGE",
        "authed_user": {"id": HOST},
        "scope": "commands,chat:write,chat:write.public,im:write,users:read",
        "token_type": "bot",
        "access_token": TOKEN2,
        "bot_user_id": BOT_USER,
        "team": {"id": TEAM2, "name": "Team Two"},
        "enterprise": None,
        "is_enterprise_install": False,
        "incoming_webhook": {
            "channel": "#shows",
            "channel_id": "CSHOWS",
            "configuration_url": "https://two.slack.com/services/B1",
            "url": "https://hooks.slack.com/services/T0TWO/B1/x",
        },
    }
    return slack


async def installations(slack: Slack) -> list[SlackInstallation]:
    async with slack.core.db.session() as session:
        return list(await session.exec(select(SlackInstallation)))


async def install(slack: Slack) -> str:
    page = await slack.http.get("/slack/install")
    assert page.status_code == 200
    [url] = re.findall(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page.text)
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url.replace("&amp;", "&")).query)
    assert query["client_id"] == ["1234.5678"]
    assert "incoming-webhook" in query["scope"][0].split(",")
    assert query["redirect_uri"] == ["http://stagepass.test/slack/oauth_redirect"]
    state = str(query["state"][0])
    assert f"{COOKIE}={state}" in page.headers["set-cookie"]
    done = await slack.http.get(
        "/slack/oauth_redirect",
        params={"code": "the-code", "state": state},
        headers={"Cookie": f"{COOKIE}={state}"},
    )
    assert done.status_code == 200, done.text
    return state


async def test_install_use_and_uninstall(oauth: Slack) -> None:
    state = await install(oauth)
    [access] = oauth.fake.called("oauth.v2.access")
    assert access.params["code"] == "the-code"
    assert access.params["basic_auth"] == "1234.5678:oauth-client-secret"
    [row] = await installations(oauth)
    assert (row.team_id, row.announce_channel_id) == (TEAM2, "CSHOWS")
    assert TOKEN2 not in row.bot_token  # encrypted at rest
    assert oauth.core.cipher.decrypt(row.bot_token) == TOKEN2
    assert row.installer_user_id == HOST and row.team_name == "Team Two"

    # the state is used up: the same redirect again is refused
    again = await oauth.http.get(
        "/slack/oauth_redirect",
        params={"code": "the-code", "state": state},
        headers={"Cookie": f"{COOKIE}={state}"},
    )
    assert again.status_code == 401
    # a forged state never reaches the database
    forged = await oauth.http.get(
        "/slack/oauth_redirect",
        params={"code": "x", "state": "nonce.sig"},
        headers={"Cookie": f"{COOKIE}=nonce.sig"},
    )
    assert forged.status_code == 401
    async with oauth.core.db.session() as session:
        assert list(await session.exec(select(SlackOAuthState))) == []

    # a command from the new workspace runs with its own token
    response, name = await oauth.command(
        HOST, "/space", 'create title:"Team two" starts:"2030-01-05 18:00" tickets:5'
    )
    reply = await oauth.answer(response, name)
    assert "Space #1 is announced." in reply["text"]
    await oauth.settle()
    [post] = [c for c in oauth.fake.called("chat.postMessage") if c.params["channel"] == "CSHOWS"]
    assert post.token == TOKEN2
    assert all(c.token == TOKEN2 for c in oauth.fake.calls if c.method != "oauth.v2.access")

    # uninstalled: the token is forgotten, and the workspace gets no more answers
    response = await oauth.event({"type": "app_uninstalled"})
    assert response.status_code == 200
    await oauth.settle()
    assert await installations(oauth) == []
    response, name = await oauth.command(HOST, "/space", "list")
    assert response.status_code == 200
    [told] = await oauth.fake.wait_for("response_url:" + name)
    assert "no longer available" in told.params["text"]


async def test_tokens_revoked_forgets_the_bot(oauth: Slack) -> None:
    await install(oauth)
    response = await oauth.event({"type": "tokens_revoked", "tokens": {"oauth": [HOST]}})
    assert response.status_code == 200
    await oauth.settle()
    assert len(await installations(oauth)) == 1  # only a user token went: nothing of ours
    response = await oauth.event({"type": "tokens_revoked", "tokens": {"bot": [BOT_USER]}})
    await oauth.settle()
    assert await installations(oauth) == []


async def test_reinstall_updates_the_row(oauth: Slack) -> None:
    await install(oauth)
    oauth.fake.oauth_access["access_token"] = "xoxb-two-new"
    oauth.fake.tokens["xoxb-two-new"] = TEAM2
    await install(oauth)
    [row] = await installations(oauth)
    assert oauth.core.cipher.decrypt(row.bot_token) == "xoxb-two-new"


async def test_names_slack_gives_are_kept_without_nuls(oauth: Slack) -> None:
    """A workspace's and an org's names come from Slack, not from a command: a NUL in them
    is dropped (PostgreSQL refuses to store one), as the core does with people's names."""
    oauth.fake.oauth_access["team"] = {"id": TEAM2, "name": "Team\x00 Two"}
    oauth.fake.oauth_access["enterprise"] = {"id": "E0ACME", "name": "\x00Acme Org\x00"}
    await install(oauth)
    [row] = await installations(oauth)
    assert (row.enterprise_id, row.team_id) == ("E0ACME", TEAM2)
    assert (row.team_name, row.enterprise_name) == ("Team Two", "Acme Org")


async def test_a_slow_database_does_not_hold_up_the_answer(oauth: Slack) -> None:
    """Bolt looks the workspace up before any listener runs: a due cache entry is used
    when the database does not answer at once."""
    await install(oauth)
    response, name = await oauth.command(HOST, "/tz")
    answer = await oauth.answer(response, name)
    assert answer["text"].startswith("Your time zone is Europe/Berlin.")  # alice's Slack zone
    store = oauth.adapter.store
    assert store is not None
    store.cache_seconds, store.stale_after = 0, 0.1  # every lookup reads the database again
    oauth.adapter.interactions.ack_budget = 0.1

    oauth.db.gate.clear()
    # a command that must read the database (the host's identity is cached by now)
    response, name = await oauth.command(HOST, "/space", "list")
    assert response.status_code == 200 and response.content == b""
    await asyncio.wait_for(oauth.db.stalled.wait(), 10)
    assert oauth.fake.responses(name) == []
    oauth.db.gate.set()
    [reply] = await oauth.fake.wait_for("response_url:" + name)
    assert reply.params["text"].startswith("No upcoming Spaces here.")


async def test_a_failing_slack_call_logs_no_token(oauth: Slack, log_output: io.StringIO) -> None:
    """A workspace's bot token is learned at install, not configured: when a Web API call
    with it fails, the logged traceback (slack-sdk's frames held it in `headers`) shows
    neither the token nor any frame's locals."""
    long_token = "xoxb-5550001234-5550004321-TeamTwoLongBotTokenValue"
    oauth.fake.oauth_access["access_token"] = long_token
    oauth.fake.tokens = {long_token: TEAM2}
    configure(
        "info",
        "console",
        secrets=oauth.core.settings.secret_values(),
        colors=True,
        stream=log_output,
    )
    await install(oauth)
    oauth.fake.fail("views.publish", "internal_error")  # the host's App Home refresh
    response, name = await oauth.command(
        HOST, "/space", 'create title:"Team two" starts:"2030-01-05 18:00" tickets:5'
    )
    assert "Space #1 is announced." in (await oauth.answer(response, name))["text"]
    await oauth.settle()
    text = log_output.getvalue()
    assert "slack update failed" in text and "internal_error" in text
    assert "slack_sdk" in text  # the traceback went through the SDK's frames ...
    assert "Authorization" not in text  # ... and printed none of their locals
    assert leaks(text, long_token, "oauth-client-secret", "a-long-random-state-secret") == set()
