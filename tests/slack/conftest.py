"""A running Stagepass HTTP app with the Slack adapter mounted, served by uvicorn on
loopback, talking to the local Slack Web API fake; and a `Slack` client that posts
correctly signed requests to `/slack/events` the way Slack does."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from adapters.slack import SlackAdapter, SlackConfig
from bot.clock import ManualClock
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.db import Database
from bot.http import create_app
from bot.notices import EventMessenger
from bot.settings import Settings
from tests.slack.fake_slack import BOT_TOKEN, TEAM, FakeSlack
from tests.waiting import PATIENCE, eventually

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ANNOUNCE = "CANNOUNCE"
CHANNEL = "CGENERAL"

HOST, BOB, CAROL, DAVE, EVE = "UHOST01", "UBOB0001", "UCAROL01", "UDAVE001", "UEVE0001"
USERS: dict[str, dict[str, Any]] = {
    HOST: {"name": "alice", "tz": "Europe/Berlin"},
    BOB: {"name": "bob"},
    CAROL: {"name": "carol", "is_admin": True},  # a workspace admin: moderator
    DAVE: {"name": "dave"},  # in the stage-mods user group: moderator
    EVE: {"name": "eve"},
}


def slack_user(user_id: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": user_id,
        "team_id": TEAM,
        "name": name,
        "real_name": name.title(),
        "tz": extra.pop("tz", "America/New_York"),
        "profile": {"display_name": name.title(), "email": f"{name}@acme.test"},
        **extra,
    }


class GatedDatabase(Database):
    """A database that can be made slow: while `gate` is clear, every session and write
    transaction waits for it. `stalled` says some work is waiting there."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.gate = asyncio.Event()
        self.gate.set()
        self.stalled = asyncio.Event()

    async def _pass(self) -> None:
        if not self.gate.is_set():
            self.stalled.set()
            await self.gate.wait()

    def session(self) -> AsyncSession:
        return _GatedSession(self, super().session())  # type: ignore[return-value]  # a gated stand-in for the session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        await self._pass()
        async with super().write() as session:
            yield session

    @asynccontextmanager
    async def write_conn(self) -> AsyncIterator[AsyncConnection]:
        await self._pass()
        async with super().write_conn() as conn:
            yield conn


class _GatedSession:
    def __init__(self, db: GatedDatabase, session: AsyncSession) -> None:
        self._db = db
        self._session = session

    async def __aenter__(self) -> AsyncSession:
        await self._db._pass()
        return await self._session.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self._session.__aexit__(*exc)


@dataclass
class Slack:
    """Posts what Slack would post, signed with the app's signing secret."""

    http: httpx.AsyncClient
    fake: FakeSlack
    adapter: SlackAdapter
    db: GatedDatabase
    core: Core
    team: str = TEAM
    secret: str = SECRET
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- raw ---------------------------------------------------------------------------------

    def signed_headers(self, body: str, *, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(self.secret).generate_signature(timestamp=ts, body=body)
        assert signature is not None
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}

    async def post(
        self, body: str, content_type: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        if headers is None:
            headers = self.signed_headers(body)
        return await self.http.post(
            "/slack/events",
            content=body.encode(),
            headers={"Content-Type": content_type, **headers},
        )

    # --- what people do ------------------------------------------------------------------

    def command_body(self, user: str, command: str, text: str = "") -> tuple[str, str]:
        n = next(self._seq)
        name = f"c{n}"
        fields = {
            "token": "legacy-token",
            "team_id": self.team,
            "team_domain": "acme",
            "channel_id": CHANNEL,
            "channel_name": "general",
            "user_id": user,
            "user_name": USERS.get(user, {}).get("name", user),
            "command": command,
            "text": text,
            "api_app_id": "A0STAGE",
            "is_enterprise_install": "false",
            "response_url": self.fake.response_url(name),
            "trigger_id": f"trigger.{n}",
        }
        return urllib.parse.urlencode(fields), name

    async def command(self, user: str, command: str, text: str = "") -> tuple[httpx.Response, str]:
        """Run a slash command; returns Slack's HTTP response and the response_url's name."""
        body, name = self.command_body(user, command, text)
        return await self.post(body, "application/x-www-form-urlencoded"), name

    def _user(self, user: str) -> dict[str, Any]:
        name = USERS.get(user, {}).get("name", user)
        return {"id": user, "username": name, "name": name, "team_id": self.team}

    async def interaction(self, payload: dict[str, Any]) -> httpx.Response:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded")

    async def click(
        self,
        user: str,
        action_id: str,
        value: str | None = None,
        *,
        in_home: bool = False,
    ) -> tuple[httpx.Response, str]:
        """Click a button in a channel message (or in the App Home)."""
        n = next(self._seq)
        name = f"b{n}"
        action = {
            "type": "button",
            "action_id": action_id,
            "block_id": "b",
            "action_ts": f"{time.time():.6f}",
        }
        if value is not None:
            action["value"] = value
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": self.team, "domain": "acme"},
            "user": self._user(user),
            "api_app_id": "A0STAGE",
            "token": "legacy-token",
            "trigger_id": f"trigger.{n}",
            "actions": [action],
        }
        if in_home:
            payload["container"] = {"type": "view", "view_id": "VHOME"}
            payload["view"] = {"id": "VHOME", "type": "home", "callback_id": ""}
        else:
            payload["container"] = {
                "type": "message",
                "message_ts": "1700000000.000001",
                "channel_id": ANNOUNCE,
            }
            payload["channel"] = {"id": ANNOUNCE, "name": "announcements"}
            payload["response_url"] = self.fake.response_url(name)
        return await self.interaction(payload), name

    async def submit(
        self, user: str, view: dict[str, Any], values: dict[str, dict[str, Any]]
    ) -> httpx.Response:
        """Submit a modal the adapter opened (`view`, as sent to views.open) with `values`
        (block id -> the element's state)."""
        submitted = {
            "id": "VMODAL01",
            "type": "modal",
            "callback_id": view["callback_id"],
            "private_metadata": view.get("private_metadata", ""),
            "hash": "1700000000.abc",
            "state": {"values": {block: {"value": element} for block, element in values.items()}},
        }
        payload = {
            "type": "view_submission",
            "team": {"id": self.team, "domain": "acme"},
            "user": self._user(user),
            "api_app_id": "A0STAGE",
            "token": "legacy-token",
            "trigger_id": f"trigger.{next(self._seq)}",
            "view": submitted,
        }
        return await self.interaction(payload)

    async def event(self, event: dict[str, Any], **extra: Any) -> httpx.Response:
        body = json.dumps(
            {
                "token": "legacy-token",
                "team_id": self.team,
                "api_app_id": "A0STAGE",
                "type": "event_callback",
                "event_id": f"Ev{next(self._seq):06d}",
                "event_time": int(time.time()),
                "event": event,
                **extra,
            }
        )
        return await self.post(body, "application/json")

    async def answer(self, response: httpx.Response, name: str) -> dict[str, Any]:
        """The reply to a slash command: on the acknowledgement when the work was quick,
        else what the adapter posted to the command's response_url afterwards."""
        assert response.status_code == 200, response.text
        if response.content:
            body: dict[str, Any] = response.json()
            return body
        [call] = await self.fake.wait_for("response_url:" + name)
        return call.params

    async def settle(self) -> None:
        """Wait (bounded) until every consequence of what was posted has happened."""
        await asyncio.wait_for(self.adapter.settle(), 10)


def slack_settings(settings: Settings, fake: FakeSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": SecretStr(BOT_TOKEN),
        "slack_signing_secret": SecretStr(SECRET),
        "slack_announce_channel": ANNOUNCE,
        "slack_moderator_group": "stage-mods",
        "slack_api_base": fake.api_base,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(
        users={uid: slack_user(uid, **info) for uid, info in USERS.items()},
        groups={"S0MODS": ("stage-mods", [DAVE])},
    )
    await fake.start()
    yield fake
    await fake.stop()


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1; yields its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="uvicorn")
    try:
        await eventually(lambda: server.started or task.done(), what="uvicorn started")
        if task.done():
            await task
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


MakeSlack = Callable[..., Any]


@pytest.fixture
async def make_slack(
    settings: Settings,
    sqlite_db: Database,
    clock: ManualClock,
    fake: FakeSlack,
) -> AsyncIterator[Callable[..., Any]]:
    """`await make_slack(**settings_overrides, dispatcher=..., ack_budget=..., database=...)`
    -> a running app and the `Slack` that talks to it (SQLite unless `database` is given)."""
    stack: list[tuple[Any, ...]] = []

    async def make(
        *,
        ack_budget: float = 2.0,
        dispatcher: Callable[[Core], Dispatcher] = Dispatcher,
        database: Database | None = None,
        **overrides: Any,
    ) -> Slack:
        configured = slack_settings(settings, fake, **overrides)
        db = GatedDatabase((database or sqlite_db).url)
        core = Core.build(configured, db=db, clock=clock)
        EventMessenger(core)
        config = SlackConfig.from_settings(configured)
        assert config is not None
        adapter = SlackAdapter(core, dispatcher(core), config, ack_budget=ack_budget)
        # the reply waits for the announcement's post: 1 s in production, however long a
        # loaded machine takes here (test_trust sets 0 for the "on its way" answer)
        adapter.interactions.announce_wait = PATIENCE
        app = create_app(
            core, api_token="test-token", routers=[adapter.router()], registry=CollectorRegistry()
        )
        app.state.ready = True
        server = serving(app)
        base_url = await server.__aenter__()
        http = httpx.AsyncClient(base_url=base_url, timeout=10)
        stack.append((server, http, adapter, core, db))
        return Slack(http, fake, adapter, db, core)

    yield make
    for server, http, adapter, core, db in reversed(stack):
        db.gate.set()
        await http.aclose()
        await server.__aexit__(None, None, None)
        await adapter.tasks.close(grace=5)
        await core.bus.close()
        await db.dispose()


@pytest.fixture
async def slack(make_slack: Callable[..., Any]) -> Slack:
    slack: Slack = await make_slack()
    return slack
