"""The fake Discord's REST API: users, application commands, messages, DMs, roles,
members, channel overwrites, scheduled events, Stage instances and voice states, with
Discord's permission checks and error codes; every call is recorded."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from . import permissions as P
from .gateway import GUILD_MEMBERS, GUILD_SCHEDULED_EVENTS, GUILD_VOICE_STATES, GUILDS, Gateway
from .interactions import LOADING
from .state import (
    DM,
    STAGE,
    Channel,
    Guild,
    Json,
    Member,
    Message,
    Overwrite,
    Role,
    ScheduledEvent,
    StageInstance,
    VoiceState,
)

API = "/api/v10"
Handler = Callable[..., Awaitable[web.Response]]


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any
    status: int = 0


class DiscordError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def json_response(data: Any, status: int = 200) -> web.Response:
    """discord.py only parses JSON sent as exactly `application/json`."""
    return web.Response(
        status=status, body=json.dumps(data).encode(), headers={"Content-Type": "application/json"}
    )


class RestAPI(Gateway):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.calls: list[Call] = []
        self.unknown: list[Call] = []
        self.dms_closed: set[int] = set()
        self.dms_unavailable: set[int] = set()  # a 503 for DMs to these users
        self._routes = [(m, re.compile(p), h) for m, p, h in self._route_table()]

    def _route_table(self) -> list[tuple[str, str, Handler]]:
        """(method, path pattern, handler); subclasses add theirs."""
        g, u, c, m, r, e = (
            r"(?P<guild>\d+)",
            r"(?P<user>\d+)",
            r"(?P<channel>\d+)",
            r"(?P<message>\d+)",
            r"(?P<role>\d+)",
            r"(?P<event>\d+)",
        )
        return [
            ("GET", "/users/@me", self._me),
            ("GET", "/oauth2/applications/@me", self._application),
            ("GET", "/gateway/bot", self._gateway_bot),
            ("GET", "/users/@me/guilds", self._my_guilds),
            ("GET", f"/users/{u}", self._user),
            ("POST", "/users/@me/channels", self._open_dm),
            ("PUT", rf"/applications/\d+/guilds/{g}/commands", self._put_commands),
            ("GET", rf"/applications/\d+/guilds/{g}/commands", self._get_commands),
            ("PUT", r"/applications/\d+/commands", self._put_global_commands),
            ("POST", f"/channels/{c}/messages", self._post_message),
            ("GET", f"/channels/{c}/messages/{m}", self._get_message),
            ("PATCH", f"/channels/{c}/messages/{m}", self._edit_message),
            ("PUT", rf"/channels/{c}/permissions/(?P<target>\d+)", self._put_overwrite),
            ("DELETE", rf"/channels/{c}/permissions/(?P<target>\d+)", self._delete_overwrite),
            ("GET", f"/guilds/{g}/roles", self._get_roles),
            ("POST", f"/guilds/{g}/roles", self._create_role),
            ("DELETE", f"/guilds/{g}/roles/{r}", self._delete_role),
            ("GET", f"/guilds/{g}/members/{u}", self._get_member),
            ("PATCH", f"/guilds/{g}/members/{u}", self._edit_member),
            ("PUT", f"/guilds/{g}/members/{u}/roles/{r}", self._add_member_role),
            ("DELETE", f"/guilds/{g}/members/{u}/roles/{r}", self._remove_member_role),
            ("POST", f"/guilds/{g}/scheduled-events", self._create_event),
            ("GET", f"/guilds/{g}/scheduled-events/{e}", self._get_event),
            ("PATCH", f"/guilds/{g}/scheduled-events/{e}", self._edit_event),
            ("GET", f"/guilds/{g}/scheduled-events/{e}/users", self._event_users),
            ("POST", "/stage-instances", self._create_stage),
            ("GET", f"/stage-instances/{c}", self._get_stage),
            ("DELETE", f"/stage-instances/{c}", self._delete_stage),
            ("PATCH", f"/guilds/{g}/voice-states/{u}", self._edit_voice),
            ("PATCH", f"/guilds/{g}/voice-states/(?P<user>@me)", self._edit_voice),
        ]

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        call = Call(request.method, path, dict(request.query), body)
        public = path.startswith(("/interactions/", "/webhooks/"))
        if not public and request.headers.get("Authorization") != f"Bot {self.token}":
            return self._record(
                call, json_response({"message": "401: Unauthorized", "code": 0}, 401)
            )
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match and method == request.method:
                try:
                    response = await handler(call, **match.groupdict())
                except DiscordError as exc:
                    response = json_response({"message": exc.message, "code": exc.code}, exc.status)
                return self._record(call, response)
        self.unknown.append(call)
        return self._record(call, json_response({"message": "404: Not Found", "code": 0}, 404))

    def _record(self, call: Call, response: web.Response) -> web.Response:
        self.calls.append(Call(call.method, call.path, call.query, call.body, response.status))
        return response

    # lookups that fail the way Discord does
    def _guild(self, guild: str) -> Guild:
        found = self.guilds.get(int(guild))
        if found is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        return found

    def _channel(self, channel: str) -> Channel:
        found = self.channels.get(int(channel))
        if found is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return found

    def _member(self, guild: Guild, user: str) -> Member:
        found = guild.members.get(int(user))
        if found is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return found

    def _role(self, guild: Guild, role: str) -> Role:
        found = guild.roles.get(int(role))
        if found is None:
            raise DiscordError(404, 10011, "Unknown Role")
        return found

    def _require(self, guild: Guild, bits: int) -> None:
        if guild.permissions(self.bot.id) & bits != bits:
            raise DiscordError(403, 50013, "Missing Permissions")

    # users, application, gateway
    async def _me(self, call: Call) -> web.Response:
        return json_response(
            {**self.bot.payload(), "verified": True, "mfa_enabled": False, "flags": 0}
        )

    async def _application(self, call: Call) -> web.Response:
        return json_response(
            {
                "id": str(self.app_id),
                "name": "Stagepass",
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.operator.payload(),
                "verify_key": "00" * 32,
                "flags": 0,
                "team": None,
                "summary": "",
                "rpc_origins": [],
            }
        )

    async def _gateway_bot(self, call: Call) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return json_response({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _my_guilds(self, call: Call) -> web.Response:
        return json_response(
            [
                {
                    "id": str(g.id),
                    "name": g.name,
                    "icon": None,
                    "owner": False,
                    "permissions": str(g.permissions(self.bot.id)),
                    "features": [],
                }
                for g in self.guilds.values()
            ]
        )

    async def _user(self, call: Call, user: str) -> web.Response:
        found = self.users.get(int(user))
        if found is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(found.payload())

    async def _open_dm(self, call: Call) -> web.Response:
        recipient = self.users.get(int(call.body["recipient_id"]))
        if recipient is None:
            raise DiscordError(404, 10013, "Unknown User")
        for channel in self.channels.values():
            if channel.type == DM and channel.recipient is recipient:
                return json_response(channel.payload())
        channel = Channel(self.ids.next(), "", DM, recipient=recipient)
        self.channels[channel.id] = channel
        self.messages[channel.id] = []
        return json_response(channel.payload())

    # application commands
    async def _put_commands(self, call: Call, guild: str) -> web.Response:
        found = self._guild(guild)
        registered = {}
        for command in call.body:
            registered[command["name"]] = {
                "id": str(self.ids.next()),
                "application_id": str(self.app_id),
                "guild_id": str(found.id),
                "version": str(self.ids.next()),
                "type": command.get("type", 1),
                "default_member_permissions": command.get("default_member_permissions"),
                "nsfw": command.get("nsfw", False),
                **command,
            }
        self.commands[found.id] = registered
        return json_response(list(registered.values()))

    async def _get_commands(self, call: Call, guild: str) -> web.Response:
        return json_response(list(self.commands.get(int(guild), {}).values()))

    async def _put_global_commands(self, call: Call) -> web.Response:
        self.commands[0] = {c["name"]: c for c in call.body}
        return json_response(
            [
                {
                    **c,
                    "id": str(self.ids.next()),
                    "application_id": str(self.app_id),
                    "version": "1",
                }
                for c in call.body
            ]
        )

    # messages
    async def _post_message(self, call: Call, channel: str) -> web.Response:
        found = self._channel(channel)
        if found.type == DM:
            assert found.recipient is not None
            if found.recipient.id in self.dms_closed:
                raise DiscordError(403, 50007, "Cannot send messages to this user")
            if found.recipient.id in self.dms_unavailable:
                raise DiscordError(503, 0, "Service Unavailable")
        else:
            self._require(self.guilds[found.guild_id or 0], P.VIEW_CHANNEL | P.SEND_MESSAGES)
        message = self._message_from(call.body, found)
        self.messages[found.id].append(message)
        return json_response(message.payload())

    def _message_from(self, body: Json, channel: Channel, *, flags: int = 0) -> Message:
        return Message(
            self.ids.next(),
            channel.id,
            self.bot,
            content=body.get("content") or "",
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            flags=int(body.get("flags") or 0) | flags,
            guild_id=channel.guild_id,
        )

    async def _get_message(self, call: Call, channel: str, message: str) -> web.Response:
        return json_response(self._find(channel, message).payload())

    def _find(self, channel: str, message: str) -> Message:
        for found in self.messages.get(int(channel), []):
            if found.id == int(message):
                return found
        raise DiscordError(404, 10008, "Unknown Message")

    async def _edit_message(self, call: Call, channel: str, message: str) -> web.Response:
        found = self._find(channel, message)
        self._apply_edit(found, call.body)
        return json_response(found.payload())

    @staticmethod
    def _apply_edit(message: Message, body: Json) -> None:
        if "content" in body:
            message.content = body["content"] or ""
        if "embeds" in body:
            message.embeds = body["embeds"] or []
        if "components" in body:
            message.components = body["components"] or []
        message.flags &= ~LOADING
        message.edited = datetime.now(UTC)

    async def _put_overwrite(self, call: Call, channel: str, target: str) -> web.Response:
        found = self._channel(channel)
        guild = self.guilds[found.guild_id or 0]
        self._require(guild, P.MANAGE_ROLES)
        found.overwrites[int(target)] = Overwrite(
            int(target),
            int(call.body.get("type", 0)),
            int(call.body.get("allow", 0)),
            int(call.body.get("deny", 0)),
        )
        await self.dispatch("CHANNEL_UPDATE", found.payload(), GUILDS)
        return web.Response(status=204)

    async def _delete_overwrite(self, call: Call, channel: str, target: str) -> web.Response:
        found = self._channel(channel)
        self._require(self.guilds[found.guild_id or 0], P.MANAGE_ROLES)
        found.overwrites.pop(int(target), None)
        await self.dispatch("CHANNEL_UPDATE", found.payload(), GUILDS)
        return web.Response(status=204)

    # roles and members
    async def _get_roles(self, call: Call, guild: str) -> web.Response:
        return json_response([r.payload() for r in self._guild(guild).roles.values()])

    async def _create_role(self, call: Call, guild: str) -> web.Response:
        found = self._guild(guild)
        if (why := found.can_manage_role(self.bot.id, None)) is not None:
            raise DiscordError(403, 50013, why)
        body = call.body or {}
        for role in found.roles.values():
            if role.id != found.id and role.position >= 1:
                role.position += 1
        role = Role(
            self.ids.next(),
            body.get("name", "new role"),
            int(body.get("permissions", 0)),
            1,
            mentionable=bool(body.get("mentionable", False)),
        )
        found.roles[role.id] = role
        await self.dispatch(
            "GUILD_ROLE_CREATE", {"guild_id": str(found.id), "role": role.payload()}, GUILDS
        )
        return json_response(role.payload())

    async def _delete_role(self, call: Call, guild: str, role: str) -> web.Response:
        found = self._guild(guild)
        target = self._role(found, role)
        if (why := found.can_manage_role(self.bot.id, target)) is not None:
            raise DiscordError(403, 50013, why)
        del found.roles[target.id]
        for member in found.members.values():
            member.roles.discard(target.id)
        for channel in found.channels.values():
            channel.overwrites.pop(target.id, None)
        await self.dispatch(
            "GUILD_ROLE_DELETE", {"guild_id": str(found.id), "role_id": str(target.id)}, GUILDS
        )
        return web.Response(status=204)

    async def _get_member(self, call: Call, guild: str, user: str) -> web.Response:
        found = self._guild(guild)
        return json_response(self._member(found, user).payload())

    async def _add_member_role(self, call: Call, guild: str, user: str, role: str) -> web.Response:
        return await self._member_role(guild, user, role, add=True)

    async def _remove_member_role(
        self, call: Call, guild: str, user: str, role: str
    ) -> web.Response:
        return await self._member_role(guild, user, role, add=False)

    async def _member_role(self, guild: str, user: str, role: str, *, add: bool) -> web.Response:
        found = self._guild(guild)
        target = self._role(found, role)
        member = self._member(found, user)
        if (why := found.can_manage_role(self.bot.id, target)) is not None:
            raise DiscordError(403, 50013, why)
        if add:
            member.roles.add(target.id)
        else:
            member.roles.discard(target.id)
        data = {"guild_id": str(found.id), **member.payload()}
        await self.dispatch("GUILD_MEMBER_UPDATE", data, GUILD_MEMBERS)
        return web.Response(status=204)

    async def _edit_member(self, call: Call, guild: str, user: str) -> web.Response:
        found = self._guild(guild)
        member = self._member(found, user)
        body = call.body or {}
        state = found.voice.get(member.user.id)
        if "mute" in body:
            self._require(found, P.MUTE_MEMBERS)
            member.mute = bool(body["mute"])
        if "channel_id" in body:
            self._require(found, P.MOVE_MEMBERS)
            if state is None or state.channel_id is None:
                raise DiscordError(400, 40032, "Target user is not connected to voice.")
            state.channel_id = int(body["channel_id"]) if body["channel_id"] else None
        if state is not None:
            await self._voice_update(found, state)
        return json_response(member.payload())

    # scheduled events
    async def _create_event(self, call: Call, guild: str) -> web.Response:
        found = self._guild(guild)
        perms = found.permissions(self.bot.id)
        if not perms & (P.MANAGE_EVENTS | P.CREATE_EVENTS):
            raise DiscordError(403, 50013, "Missing Permissions")
        body = call.body
        kind = int(body["entity_type"])
        channel_id = int(body["channel_id"]) if body.get("channel_id") else None
        if kind == 1 and (channel_id is None or self.channels[channel_id].type != STAGE):
            raise DiscordError(400, 50035, "Invalid Form Body: channel_id must be a stage channel")
        location = (body.get("entity_metadata") or {}).get("location")
        if kind == 3 and (not location or not body.get("scheduled_end_time")):
            raise DiscordError(
                400, 50035, "Invalid Form Body: external events need a location and an end"
            )
        event = ScheduledEvent(
            self.ids.next(),
            found.id,
            body["name"],
            body["scheduled_start_time"],
            kind,
            self.bot,
            channel_id=channel_id,
            end=body.get("scheduled_end_time"),
            description=body.get("description"),
            location=location,
            privacy_level=int(body.get("privacy_level", 2)),
        )
        found.events[event.id] = event
        await self.dispatch("GUILD_SCHEDULED_EVENT_CREATE", event.payload(), GUILD_SCHEDULED_EVENTS)
        return json_response(event.payload())

    def _event(self, guild: Guild, event: str) -> ScheduledEvent:
        found = guild.events.get(int(event))
        if found is None:
            raise DiscordError(404, 10070, "Unknown Guild Scheduled Event")
        return found

    async def _get_event(self, call: Call, guild: str, event: str) -> web.Response:
        return json_response(self._event(self._guild(guild), event).payload())

    async def _edit_event(self, call: Call, guild: str, event: str) -> web.Response:
        found = self._guild(guild)
        target = self._event(found, event)
        body = call.body
        if "status" in body:
            allowed = {(1, 2), (1, 4), (2, 3)}
            if (target.status, int(body["status"])) not in allowed:
                raise DiscordError(400, 50035, "Invalid Form Body: status transition")
            target.status = int(body["status"])
        for key, attr in (
            ("name", "name"),
            ("description", "description"),
            ("scheduled_start_time", "start"),
            ("scheduled_end_time", "end"),
        ):
            if key in body:
                setattr(target, attr, body[key])
        await self.dispatch(
            "GUILD_SCHEDULED_EVENT_UPDATE", target.payload(), GUILD_SCHEDULED_EVENTS
        )
        return json_response(target.payload())

    async def _event_users(self, call: Call, guild: str, event: str) -> web.Response:
        found = self._guild(guild)
        target = self._event(found, event)
        ids = sorted(target.interested)
        if "before" in call.query:
            ids = [i for i in ids if i < int(call.query["before"])]
        if "after" in call.query:
            ids = [i for i in ids if i > int(call.query["after"])]
        limit = int(call.query.get("limit", 100))
        ids = ids[-limit:] if "before" in call.query or "after" not in call.query else ids[:limit]
        return json_response(
            [
                {"guild_scheduled_event_id": str(target.id), "user": self.users[i].payload()}
                for i in ids
            ]
        )

    # Stage instances and voice
    async def _create_stage(self, call: Call) -> web.Response:
        body = call.body
        channel = self._channel(body["channel_id"])
        guild = self.guilds[channel.guild_id or 0]
        self._require(guild, P.STAGE_MODERATOR)
        if channel.type != STAGE:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        if channel.id in guild.stages:
            raise DiscordError(400, 150006, "A stage instance already exists for this channel")
        event_id = (
            int(body["guild_scheduled_event_id"]) if body.get("guild_scheduled_event_id") else None
        )
        stage = StageInstance(
            self.ids.next(),
            guild.id,
            channel.id,
            body["topic"],
            event_id,
            int(body.get("privacy_level", 2)),
        )
        guild.stages[channel.id] = stage
        await self.dispatch("STAGE_INSTANCE_CREATE", stage.payload(), GUILDS)
        if event_id is not None and guild.events[event_id].status == 1:
            guild.events[event_id].status = 2
            await self.dispatch(
                "GUILD_SCHEDULED_EVENT_UPDATE",
                guild.events[event_id].payload(),
                GUILD_SCHEDULED_EVENTS,
            )
        return json_response(stage.payload())

    async def _get_stage(self, call: Call, channel: str) -> web.Response:
        found = self._channel(channel)
        stage = self.guilds[found.guild_id or 0].stages.get(found.id)
        if stage is None:
            raise DiscordError(404, 10067, "Unknown Stage Instance")
        return json_response(stage.payload())

    async def _delete_stage(self, call: Call, channel: str) -> web.Response:
        found = self._channel(channel)
        guild = self.guilds[found.guild_id or 0]
        self._require(guild, P.STAGE_MODERATOR)
        stage = guild.stages.pop(found.id, None)
        if stage is None:
            raise DiscordError(404, 10067, "Unknown Stage Instance")
        await self.dispatch("STAGE_INSTANCE_DELETE", stage.payload(), GUILDS)
        if stage.event_id is not None and guild.events[stage.event_id].status == 2:
            guild.events[stage.event_id].status = 3
            await self.dispatch(
                "GUILD_SCHEDULED_EVENT_UPDATE",
                guild.events[stage.event_id].payload(),
                GUILD_SCHEDULED_EVENTS,
            )
        return web.Response(status=204)

    async def _edit_voice(self, call: Call, guild: str, user: str) -> web.Response:
        found = self._guild(guild)
        self._require(found, P.MUTE_MEMBERS)
        state = found.voice.get(self.bot.id if user == "@me" else int(user))
        body = call.body
        if state is None or state.channel_id is None:
            raise DiscordError(400, 10065, "Unknown Voice State")
        if body.get("channel_id") is not None and int(body["channel_id"]) != state.channel_id:
            raise DiscordError(400, 50035, "Invalid Form Body: channel_id")
        if "suppress" in body:
            state.suppress = bool(body["suppress"])
            state.request_to_speak = None
        await self._voice_update(found, state)
        return web.Response(status=204)

    async def server_mute(self, guild: Guild, member: Member, mute: bool) -> None:
        """A moderator server-mutes (or unmutes) someone in Discord's own UI: the member's
        ``mute`` flag, pushed as a VOICE_STATE_UPDATE while they are in voice."""
        member.mute = mute
        state = guild.voice.get(member.user.id)
        if state is not None:
            await self._voice_update(guild, state)

    async def leave_voice(self, guild: Guild, member: Member) -> None:
        """A member leaves the voice channel they are in."""
        state = guild.voice[member.user.id]
        state.channel_id = None
        await self._voice_update(guild, state)

    async def _voice_update(self, guild: Guild, state: VoiceState) -> None:
        await self.dispatch("VOICE_STATE_UPDATE", guild.voice_payload(state), GUILD_VOICE_STATES)
