"""The fake Discord's world and its gateway: HELLO, READY, GUILD_CREATE, heartbeat ACKs,
RESUMED, and dispatches filtered by the intents the client identified with."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .interactions import FakeInteraction
from .state import Channel, Guild, Json, Message, Snowflakes, User

# gateway intents
GUILDS, GUILD_MEMBERS, GUILD_VOICE_STATES, GUILD_SCHEDULED_EVENTS = 1, 1 << 1, 1 << 7, 1 << 16


@dataclass
class _Session:
    ws: web.WebSocketResponse
    intents: int = 0
    seq: int = 0
    identified: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Gateway:
    """Holds the world (users, servers, channels, messages, commands, interactions) and
    serves the gateway websocket."""

    def __init__(self, token: str) -> None:
        self.ids = Snowflakes()
        self.token = token
        self.bot = User(self.ids.next(), "Stagepass", bot=True)
        self.app_id = self.bot.id
        self.operator = User(self.ids.next(), "operator")
        self.users: dict[int, User] = {self.bot.id: self.bot, self.operator.id: self.operator}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, list[Message]] = {}
        self.commands: dict[int, dict[str, Json]] = {}  # guild id (0: global) -> name -> cmd
        self.interactions: dict[str, FakeInteraction] = {}
        self.connections = 0  # IDENTIFYs so far
        self.voice: Any = None  # a voice.FakeVoice while a test runs one
        self.base_url = ""
        self._sessions: list[_Session] = []
        self._session_ids = itertools.count(1)

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/gateway"

    async def close_sessions(self) -> None:
        for session in list(self._sessions):
            await session.ws.close()

    async def dispatch(self, event: str, data: Json, intent: int | None = None) -> None:
        for session in list(self._sessions):
            if not session.identified or session.ws.closed:
                continue
            if intent is not None and not session.intents & intent:
                continue
            await self._send(session, {"op": 0, "t": event, "d": data})

    async def _send(self, session: _Session, message: Json) -> None:
        async with session.lock:
            if message["op"] == 0:
                session.seq += 1
                message["s"] = session.seq
            else:
                message.setdefault("s", None)
                message.setdefault("t", None)
            await session.ws.send_str(json.dumps(message))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = _Session(ws)
        self._sessions.append(session)
        try:
            await self._send(session, {"op": 10, "d": {"heartbeat_interval": 41250}})
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                match message.get("op"):
                    case 1:
                        await self._send(session, {"op": 11})
                    case 2:
                        await self._identify(session, message["d"])
                    case 4 if self.voice is not None:
                        await self.voice.voice_state_request(message["d"])
                    case 6:
                        session.identified = True
                        await self._send(session, {"op": 0, "t": "RESUMED", "d": {}})
        finally:
            self._sessions.remove(session)
        return ws

    async def _identify(self, session: _Session, data: Json) -> None:
        if data.get("token") != self.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        session.intents = int(data.get("intents", 0))
        session.identified = True
        self.connections += 1
        user = {**self.bot.payload(), "verified": True, "mfa_enabled": False, "flags": 0}
        ready = {
            "v": 10,
            "user": user,
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
            "session_id": f"fake-session-{next(self._session_ids)}",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
        }
        await self._send(session, {"op": 0, "t": "READY", "d": ready})
        for guild in self.guilds.values():
            await self._send(session, {"op": 0, "t": "GUILD_CREATE", "d": guild.payload()})
