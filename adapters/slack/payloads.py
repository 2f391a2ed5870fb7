"""A signed request's body read as Slack sends it, or refused as `Malformed` (400).

Slack sends three shapes: slash commands as a form, interactivity as a form with one
`payload` field holding JSON, and events as JSON. Bolt and our listeners index into
them (`body["view"]["state"]`, `actions[0]["action_id"]`); a body whose fields have
other types would fail there as a 500. `read` checks the fields they read once, here,
so what reaches Bolt has the shape of Slack's documented payloads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

Payload = dict[str, Any]


class Malformed(Exception):
    """A signed body that is not one of Slack's payload shapes; the message says why."""


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: value is None or check(value)


def _is_dict(value: object) -> bool:
    return isinstance(value, dict)


def _is_ref(value: object) -> bool:
    """A team, user, channel or enterprise: an id, or an object with a string id."""
    if isinstance(value, str):
        return True
    return (
        isinstance(value, dict)
        and _optional(_is_str)(value.get("id"))
        and all(_optional(_is_str)(value.get(k)) for k in ("team_id", "enterprise_id", "domain"))
    )


def _is_list_of_dicts(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


#: top-level fields Bolt's context builder and our listeners read, and their types
_FIELDS: dict[str, Callable[[object], bool]] = {
    **{
        k: _optional(_is_str)
        for k in (
            "type",
            "command",
            "text",
            "trigger_id",
            "response_url",
            "user_id",
            "user_name",
            "team_id",
            "team_domain",
            "channel_id",
            "enterprise_id",
            "api_app_id",
            "challenge",
            "callback_id",
            "thread_ts",
            "function_execution_id",
            "bot_access_token",
        )
    },
    **{k: _optional(_is_ref) for k in ("team", "user", "channel", "enterprise")},
    **{
        k: _optional(_is_dict)
        for k in (
            "event",
            "view",
            "message",
            "previous_message",
            "item",
            "assistant_thread",
            "function_data",
            "container",
            "state",
        )
    },
    "authorizations": _optional(_is_list_of_dicts),
    "actions": _optional(_is_list_of_dicts),
}

_EVENT_FIELDS: dict[str, Callable[[object], bool]] = {
    **{
        k: _optional(_is_str)
        for k in (
            "type",
            "subtype",
            "tab",
            "channel_type",
            "user_team",
            "team",
            "thread_ts",
            "function_execution_id",
            "bot_access_token",
        )
    },
    "user": _optional(_is_ref),
    "channel": _optional(_is_ref),
    **{
        k: _optional(_is_dict)
        for k in ("tokens", "item", "message", "previous_message", "assistant_thread", "inputs")
    },
}


def _check(
    fields: Mapping[str, Callable[[object], bool]], body: Mapping[str, Any], where: str
) -> None:
    for name, ok in fields.items():
        if name in body and not ok(body[name]):
            raise Malformed(f"{where}{name} has the wrong type")


def _require(body: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if not isinstance(body.get(name), str) or not body[name]:
            raise Malformed(f"{name} is missing")


def _check_view(view: Mapping[str, Any]) -> None:
    _check(
        {
            k: _optional(_is_str)
            for k in (
                "id",
                "callback_id",
                "private_metadata",
                "type",
                "app_installed_team_id",
                "team_id",
            )
        },
        view,
        "view.",
    )
    state = view.get("state")
    if state is None:
        return
    values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(values, dict) or not all(
        isinstance(block, dict) and all(isinstance(element, dict) for element in block.values())
        for block in values.values()
    ):
        raise Malformed("view.state.values is not a map of blocks to elements")


def _check_kind(body: Payload) -> None:
    """What the listener of each kind reads without asking first."""
    if "command" in body:
        _require(body, "command", "user_id", "team_id", "trigger_id")
        if not body["command"].startswith("/"):
            raise Malformed("command must start with /")
        return
    kind = body.get("type")
    interactive = kind in (
        "block_actions",
        "view_submission",
        "view_closed",
        "shortcut",
        "message_action",
        "block_suggestion",
    )
    user = body.get("user")
    if interactive and not (isinstance(user, dict) and _is_str(user.get("id"))):
        raise Malformed("user.id is missing")
    if kind == "block_actions":
        _require(body, "trigger_id")
        actions = body.get("actions")
        if not actions or not all(
            _is_str(a.get("action_id")) and _optional(_is_str)(a.get("value")) for a in actions
        ):
            raise Malformed("actions must name an action_id each")
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if (
            not isinstance(view, dict)
            or not _is_str(view.get("id"))
            or not _is_str(view.get("callback_id"))
        ):
            raise Malformed("view.id and view.callback_id are missing")
    if isinstance(body.get("view"), dict):
        _check_view(body["view"])
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, dict) or not _is_str(event.get("type")):
            raise Malformed("event.type is missing")
        _check(_EVENT_FIELDS, event, "event.")
        if event["type"] == "app_home_opened":
            _require(event, "user")
    if kind == "url_verification":
        _require(body, "challenge")


def _parse(text: str, content_type: str) -> object:
    """As Bolt parses it (slack_bolt.request.internals.parse_body), but every failure is
    `Malformed`."""
    if content_type == "application/json" or text.startswith("{"):
        return json.loads(text)
    params = dict(parse_qsl(text, keep_blank_values=True, strict_parsing=False))
    if "payload" in text:
        payload = params.get("payload")
        return json.loads(payload) if payload is not None else {}
    return params


def read(body: bytes, content_type: str | None) -> Payload:
    """The payload of a signed request; `Malformed` when it is not one Slack sends."""
    if not body:
        raise Malformed("the body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("the body is not UTF-8") from None
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        payload = _parse(text, kind)
    except (ValueError, RecursionError):
        raise Malformed("the body is not valid JSON or form data") from None
    if not isinstance(payload, dict):
        raise Malformed("the body is not a JSON object")
    _check(_FIELDS, payload, "")
    _check_kind(payload)
    return payload
