"""Socket Mode (development): the same listeners, over a websocket instead of HTTP."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

from pydantic import SecretStr

from tests.slack.conftest import HOST, Slack
from tests.slack.fake_slack import TEAM

APP_TOKEN = "xapp-1-A0STAGE-test"


async def test_socket_mode_runs_commands(make_slack: Any) -> None:
    slack: Slack = await make_slack(slack_app_token=SecretStr(APP_TOKEN))
    slack.fake.tokens[APP_TOKEN] = TEAM
    stop = asyncio.Event()
    job = asyncio.create_task(slack.adapter.run(stop), name="slack-job")
    try:
        await asyncio.wait_for(slack.fake.socket_open.wait(), 10)
        [opened] = slack.fake.called("apps.connections.open")
        assert opened.token == APP_TOKEN

        body, _ = slack.command_body(HOST, "/tz", "")
        command = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        await slack.fake.push(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": command,
            }
        )
        [ack] = await slack.fake.wait_for("socket:env-1")
        assert ack.params["payload"]["text"].startswith("Your time zone is Europe/Berlin.")
    finally:
        stop.set()
        await asyncio.wait_for(job, 10)
