"""The fake Discord's interactions: INTERACTION_CREATE payloads built from the commands
the bot synced, the callback endpoint (with Discord's 3-second limit), and the webhook
endpoints for the original response and follow-ups."""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import Any

from aiohttp import web

from tests.waiting import PATIENCE

from .interactions import (
    CHOICES,
    DEFERRED_MESSAGE,
    DEFERRED_UPDATE,
    LOADING,
    MESSAGE,
    MESSAGE_COMPONENT,
    MODAL,
    SUB_COMMAND,
    UPDATE,
    FakeInteraction,
    option_values,
)
from .rest import Call, DiscordError, Handler, RestAPI, json_response
from .state import TEXT, Channel, Guild, Json, Member, Message


class InteractionAPI(RestAPI):
    #: How long an interaction waits for its first callback. Discord waits 3 s
    #: (`ANSWER_WITHIN`); the fake waits longer, since a loaded machine can delay any
    #: answer past 3 s and a test must not hang on wall time. That the bot defers slow
    #: work is tested without a clock (`ack_within=0`).
    answer_within = PATIENCE

    def _route_table(self) -> list[tuple[str, str, Handler]]:
        tok = r"(?P<token>[^/]+)"
        return [
            *super()._route_table(),
            ("POST", rf"/interactions/(?P<interaction>\d+)/{tok}/callback", self._callback),
            ("GET", rf"/webhooks/\d+/{tok}/messages/@original", self._get_original),
            ("PATCH", rf"/webhooks/\d+/{tok}/messages/@original", self._edit_original),
            ("DELETE", rf"/webhooks/\d+/{tok}/messages/@original", self._delete_original),
            ("POST", rf"/webhooks/\d+/{tok}", self._followup),
        ]

    def _command_data(
        self, guild: Guild, command: str, values: dict[str, Any], *, focused: str | None = None
    ) -> Json:
        words = command.split()
        registered = self.commands.get(guild.id, {})
        if words[0] not in registered:
            raise AssertionError(
                f"/{words[0]} is not registered in {guild.name}: {sorted(registered)}"
            )
        top = registered[words[0]]
        data: Json = {"id": top["id"], "name": top["name"], "type": 1, "guild_id": str(guild.id)}
        if len(words) == 1:
            options, resolved = option_values(top, values, focused=focused)
            data["options"] = options
        else:
            sub = next(
                (
                    o
                    for o in top.get("options", [])
                    if o["name"] == words[1] and o["type"] == SUB_COMMAND
                ),
                None,
            )
            if sub is None:
                raise AssertionError(f"/{command} is not registered")
            options, resolved = option_values(sub, values, focused=focused)
            data["options"] = [{"type": SUB_COMMAND, "name": words[1], "options": options}]
        if resolved:
            data["resolved"] = resolved
        return data

    async def _interact(
        self,
        kind: int,
        guild: Guild,
        member: Member,
        data: Json,
        channel: Channel | None,
        *,
        message: Message | None = None,
    ) -> FakeInteraction:
        if channel is None:
            channel = next(c for c in guild.channels.values() if c.type == TEXT)
        interaction = FakeInteraction(
            self.ids.next(), secrets.token_urlsafe(24), kind, guild, channel, member.user
        )
        self.interactions[interaction.token] = interaction
        payload: Json = {
            "id": str(interaction.id),
            "application_id": str(self.app_id),
            "type": kind,
            "data": data,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "channel_id": str(channel.id),
            "channel": channel.payload(),
            "member": {**member.payload(), "permissions": str(guild.permissions(member.user.id))},
            "token": interaction.token,
            "version": 1,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": str(guild.permissions(self.bot.id)),
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": 26214400,
        }
        if message is not None:
            payload["message"] = message.payload()
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction

    def _interaction(self, token: str) -> FakeInteraction:
        found = self.interactions.get(token)
        if found is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        return found

    async def _callback(self, call: Call, interaction: str, token: str) -> web.Response:
        found = self._interaction(token)
        if found.callbacks:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - found.created > self.answer_within:
            found.late = True
            raise DiscordError(404, 10062, "Unknown interaction")
        kind, data = call.body["type"], call.body.get("data") or {}
        found.callbacks.append(call.body)
        message = None
        if kind in (MESSAGE, DEFERRED_MESSAGE):
            message = self._message_from(
                data, found.channel, flags=LOADING if kind == DEFERRED_MESSAGE else 0
            )
            message.interaction_id = found.id
            found.original = message
            if not message.ephemeral:
                self.messages[found.channel.id].append(message)
        elif kind == UPDATE and found.type == MESSAGE_COMPONENT:
            raise DiscordError(400, 50035, "the fake does not update messages from components")
        elif kind not in (DEFERRED_UPDATE, CHOICES, MODAL):
            raise DiscordError(400, 50035, f"Invalid Form Body: callback type {kind}")
        if "with_response" not in call.query:
            return web.Response(status=204)
        result: Json = {
            "interaction": {
                "id": str(found.id),
                "type": found.type,
                "response_message_loading": kind == DEFERRED_MESSAGE,
                "response_message_ephemeral": bool(message and message.ephemeral),
            }
        }
        if message is not None:
            result["interaction"]["response_message_id"] = str(message.id)
            result["resource"] = {"type": kind, "message": message.payload()}
        return json_response(result)

    def _original(self, token: str) -> Message:
        found = self._interaction(token)
        if found.original is None or found.original_deleted:
            raise DiscordError(404, 10008, "Unknown Message")
        return found.original

    async def _get_original(self, call: Call, token: str) -> web.Response:
        return json_response(self._original(token).payload())

    async def _edit_original(self, call: Call, token: str) -> web.Response:
        message = self._original(token)
        was_loading = bool(message.flags & LOADING)
        self._apply_edit(message, call.body)
        if (
            was_loading
            and not message.ephemeral
            and message not in self.messages[message.channel_id]
        ):
            self.messages[message.channel_id].append(message)
        return json_response(message.payload())

    async def _delete_original(self, call: Call, token: str) -> web.Response:
        message = self._original(token)
        self._interaction(token).original_deleted = True
        with contextlib.suppress(ValueError):
            self.messages[message.channel_id].remove(message)
        return web.Response(status=204)

    async def _followup(self, call: Call, token: str) -> web.Response:
        found = self._interaction(token)
        if not found.callbacks:
            raise DiscordError(404, 10015, "Unknown Webhook")
        original = found.original
        if original is not None and not found.original_deleted and original.flags & LOADING:
            # Discord: the first follow-up after a deferral edits the "thinking" message
            self._apply_edit(original, call.body)
            return json_response(original.payload())
        message = self._message_from(call.body, found.channel)
        message.interaction_id = found.id
        found.followups.append(message)
        if not message.ephemeral:
            self.messages[found.channel.id].append(message)
        return json_response(message.payload())
