"""A local Slack Web API that records every call: the real `AsyncWebClient` talks to it
through `base_url`, and `response_url`s point at it too.

It answers the methods Stagepass uses with payloads shaped like Slack's, from a small
in-memory workspace (users, user groups, installed tokens). `fail(method, error)` makes
the next call of a method answer `{"ok": false, "error": ...}`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.waiting import PATIENCE

TEAM = "T0ACME"
SITE = "https://acme.slack.com/"  # the workspace's web address (auth.test, permalinks)
BOT_TOKEN = "xoxb-acme"
BOT_USER = "UBOT"
BOT_ID = "BBOT"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str | None = None

    def json(self, key: str) -> Any:
        """A parameter that Slack takes as JSON (blocks, view), decoded if it was sent
        form-encoded."""
        value = self.params.get(key)
        return json.loads(value) if isinstance(value, str) else value


@dataclass
class FakeSlack:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # id -> handle, users
    tokens: dict[str, str] = field(default_factory=lambda: {BOT_TOKEN: TEAM})  # token -> team
    oauth_access: dict[str, Any] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ts = itertools.count(1)
        self._views = itertools.count(1)
        self._failures: dict[str, str] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_open = asyncio.Event()

    # --- the server ------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        for ws in self.sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/respond/{name}"

    # --- what the tests look at ------------------------------------------------------------

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def responses(self, name: str | None = None) -> list[Call]:
        """Messages posted to response URLs (all, or the one named `name`)."""
        prefix = "response_url:" + (name or "")
        return [c for c in self.calls if c.method.startswith(prefix)]

    def dms_to(self, user_id: str) -> list[Call]:
        posts = self.called("chat.postMessage")
        return [c for c in posts if c.params.get("channel") == "D" + user_id]

    async def wait_for(
        self, method: str, count: int = 1, *, within: float = PATIENCE
    ) -> list[Call]:
        """The calls whose method starts with `method`, once there are `count` of them."""

        async def until() -> list[Call]:
            while len(found := [c for c in self.calls if c.method.startswith(method)]) < count:
                self._changed.clear()
                await self._changed.wait()
            return found

        return await asyncio.wait_for(until(), within)

    def fail(self, method: str, error: str) -> None:
        self._failures[method] = error

    async def push(self, envelope: dict[str, Any]) -> None:
        """Send a Socket Mode envelope to every connected app; its ack is recorded as the
        call `socket:<envelope_id>`."""
        for ws in self.sockets:
            await ws.send_json(envelope)

    # --- handlers ----------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        body = await request.read()
        if body:
            if request.content_type == "application/json":
                params.update(json.loads(body))
            else:
                params.update(parse_qsl(body.decode(), keep_blank_values=True))
        return params

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._changed.set()

    async def _respond(self, request: web.Request) -> web.Response:
        self._record(Call("response_url:" + request.match_info["name"], await request.json()))
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0STAGE"}}
        )
        self.socket_open.set()
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                data = json.loads(message.data)
                self._record(Call("socket:" + str(data.get("envelope_id")), data))
        return ws

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        if auth.startswith("Basic "):  # oauth.v2.access: the app's client id and secret
            params["basic_auth"] = base64.b64decode(auth.removeprefix("Basic ")).decode()
        self._record(Call(method, params, token))
        if method in self._failures:
            return web.json_response({"ok": False, "error": self._failures.pop(method)})
        if method != "oauth.v2.access" and token not in self.tokens:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response(self._answer(method, params, token))

    def _answer(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        ok: dict[str, Any] = {"ok": True}
        match method:
            case "auth.test":
                team = self.tokens.get(token or "", TEAM)
                return ok | {
                    "team_id": team,
                    "team": "Acme",
                    "user_id": BOT_USER,
                    "bot_id": BOT_ID,
                    "user": "stagepass",
                    "url": SITE,
                    "is_enterprise_install": False,
                }
            case "users.info":
                user = self.users.get(str(params.get("user")))
                return ok | {"user": user} if user else {"ok": False, "error": "user_not_found"}
            case "usergroups.list":
                with_users = str(params.get("include_users")).lower() in ("1", "true")
                return ok | {
                    "usergroups": [
                        {"id": gid, "handle": handle, **({"users": users} if with_users else {})}
                        for gid, (handle, users) in self.groups.items()
                    ]
                }
            case "usergroups.users.list":
                group = self.groups.get(str(params.get("usergroup")))
                if group is None:
                    return {"ok": False, "error": "no_such_subteam"}
                return ok | {"users": group[1]}
            case "conversations.open":
                return ok | {"channel": {"id": "D" + str(params.get("users"))}}
            case "chat.postMessage":
                ts = f"1700000000.{next(self._ts):06d}"
                return ok | {"channel": params.get("channel"), "ts": ts}
            case "chat.update":
                return ok | {"channel": params.get("channel"), "ts": params.get("ts")}
            case "chat.getPermalink":
                ts = str(params.get("message_ts", "")).replace(".", "")
                channel = params.get("channel")
                return ok | {"channel": channel, "permalink": f"{SITE}archives/{channel}/p{ts}"}
            case "views.open" | "views.publish" | "views.update":
                return ok | {"view": {"id": params.get("view_id") or f"V{next(self._views):04d}"}}
            case "apps.connections.open":
                return ok | {"url": f"ws://127.0.0.1:{self.port}/socket"}
            case "oauth.v2.access":
                return self.oauth_access or {"ok": False, "error": "invalid_code"}
        return ok
