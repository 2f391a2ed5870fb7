"""Settings -> the Slack adapter: off unless configured, clear errors when half there,
and what `install()` adds to the app."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.shell.chat import Chat
from adapters.slack import install
from adapters.slack.app import BOT_SCOPES, INSTALL_SCOPES
from adapters.slack.config import SlackConfig
from adapters.slack.messages import COMMANDS, command_line, slack_text
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.errors import ConfigError
from bot.settings import Settings
from bot.wiring import Stagepass

SINGLE = {"slack_bot_token": SecretStr("xoxb-1"), "slack_signing_secret": SecretStr("s")}
OAUTH = {
    "slack_client_id": "1.2",
    "slack_client_secret": SecretStr("secret"),
    "slack_state_secret": SecretStr("0123456789abcdef"),
    "slack_signing_secret": SecretStr("s"),
}


def config(settings: Settings, **values: Any) -> SlackConfig | None:
    return SlackConfig.from_settings(settings.model_copy(update=values))


def test_off_unless_configured(settings: Settings) -> None:
    assert config(settings) is None
    assert config(settings, slack_bot_token=SecretStr(""), slack_signing_secret=None) is None


def test_modes(settings: Settings) -> None:
    single = config(settings, **SINGLE, slack_api_base="http://127.0.0.1:9/api")
    assert single is not None and not single.multi_workspace and single.http_events
    assert single.api_base == "http://127.0.0.1:9/api/"
    many = config(settings, **OAUTH)
    assert many is not None and many.multi_workspace and not many.socket_mode
    socket = config(
        settings, slack_bot_token=SecretStr("xoxb-1"), slack_app_token=SecretStr("xapp-1")
    )
    assert socket is not None and socket.socket_mode and not socket.http_events


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"slack_bot_token": SecretStr("xoxb-1")}, "SLACK_SIGNING_SECRET"),
        ({"slack_signing_secret": SecretStr("s")}, "SLACK_BOT_TOKEN"),
        ({**SINGLE, "slack_client_id": "1.2"}, "SLACK_BOT_TOKEN"),
        ({**OAUTH, "slack_client_secret": None}, "SLACK_CLIENT_SECRET"),
        ({**OAUTH, "slack_client_id": None}, "SLACK_CLIENT_ID"),
        ({**OAUTH, "slack_state_secret": SecretStr("short")}, "SLACK_STATE_SECRET"),
        ({**SINGLE, "slack_bot_token": SecretStr("xapp-1")}, "SLACK_BOT_TOKEN"),
        ({**SINGLE, "slack_app_token": SecretStr("xoxb-2")}, "SLACK_APP_TOKEN"),
    ],
)
def test_half_configured_is_a_clear_error(
    settings: Settings, values: dict[str, Any], names: str
) -> None:
    with pytest.raises(ConfigError, match=f"^Setting {names}: "):
        config(settings, **values)


async def test_install(settings: Settings, core: Core, dispatcher: Dispatcher) -> None:
    app = Stagepass(settings, core, dispatcher, services={"chat": Chat(core, dispatcher)})
    await install(app)
    assert (app.routers, app.background, app.modes) == ([], [], [])

    app.settings = settings.model_copy(update=OAUTH)
    await install(app)
    assert app.modes == ["slack"]
    [router] = app.routers
    assert {(r.path, *sorted(r.methods)) for r in router.routes} == {  # type: ignore[attr-defined]  # APIRoutes, typed as BaseRoute
        ("/slack/events", "POST"),
        ("/slack/install", "GET"),
        ("/slack/oauth_redirect", "GET"),
    }
    [job] = app.background
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(job(stop), 10)  # stops at once when told to

    chat = Chat(core, dispatcher)
    one = settings.model_copy(update=SINGLE)
    single = Stagepass(one, core, dispatcher, services={"chat": chat})
    await install(single)
    assert [r.path for r in single.routers[0].routes] == ["/slack/events"]  # type: ignore[attr-defined]  # APIRoutes, typed as BaseRoute


def test_command_lines() -> None:
    assert command_line("/space", ' create title:"A b" ') == '/space create title:"A b"'
    assert command_line("/reminder", "on 3") == "/remind on 3"
    assert command_line("/stagepass", "") == "/help"
    assert command_line("/stagepass", "/tz set UTC") == "/tz set UTC"
    assert command_line("/help", "") == "/help"
    assert slack_text("Use /remind on 3 or /reminder off 3; /remindme") == (
        "Use /reminder on 3 or /reminder off 3; /remindme"
    )


def test_manifest_matches_the_adapter() -> None:
    text = (Path(__file__).parents[2] / "adapters/slack/manifest.yml").read_text()
    commands = set(re.findall(r"^\s+- command: (/\S+)$", text, re.M))
    assert commands == set(COMMANDS) - {"/remind"}  # Slack's own /remind wins
    scopes = set(re.findall(r"^\s+- ([a-z.:-]+)\s+#", text, re.M))
    assert scopes == set(INSTALL_SCOPES) and set(BOT_SCOPES) < scopes
    urls = set(re.findall(r"(?:url|request_url): (\S+)$", text, re.M))
    assert urls == {"https://stagepass.example.com/slack/events"}
    assert "https://stagepass.example.com/slack/oauth_redirect" in text
    for event in ("app_home_opened", "app_uninstalled", "tokens_revoked"):
        assert f"      - {event}\n" in text
