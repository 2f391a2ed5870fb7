"""Matrix <-> core without a homeserver: which messages are commands, how replies and DMs
look, and what the settings must say."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
import structlog
from nio import AsyncClient, MatrixRoom, RoomMessageText, SyncResponse
from pydantic import SecretStr

from adapters.matrix.client import Connection
from adapters.matrix.commands import Commands
from adapters.matrix.config import MatrixConfig
from adapters.matrix.messages import command_line, dm_content, in_thread, reply_content
from bot.actors import split_key
from bot.commands.syntax import mention
from bot.errors import ConfigError
from bot.events import DirectMessage
from bot.replies import Button, Reply
from bot.settings import Settings


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("!space list", "/space list"),
        ("/ticket buy 12", "/ticket buy 12"),
        ("  !Space info 3 ", "/Space info 3"),
        ("!help", "/help"),
        ("!nothing here", None),
        ("hello !space list", None),
        ("!", None),
        ("great show", None),
    ],
)
def test_which_messages_are_commands(body: str, line: str | None) -> None:
    assert command_line(body) == line


def test_a_mention_pill_becomes_the_user_id() -> None:
    formatted = (
        '!stage promote <a href="https://matrix.to/#/@ann:example.org">Ann &amp; co</a> space:1'
    )
    line = command_line("!stage promote Ann & co space:1", formatted)
    assert line == "/stage promote @ann:example.org space:1"


def test_matrix_user_ids_are_mentions_and_keys() -> None:
    ref = mention("@ann:example.org:8448")
    assert ref is not None and ref.user_id == "@ann:example.org:8448"
    assert split_key("matrix:!room:example.org:@ann:example.org") == (
        "matrix:!room:example.org",
        "@ann:example.org",
    )
    assert split_key("slack:T1:U2") == ("slack:T1", "U2")


def test_replies_errors_and_buttons() -> None:
    reply = Reply(
        "Try /space list or <b>",
        title="Spaces",
        buttons=(Button("Get ticket", command="/ticket buy 1"), Button("Pay", url="https://p/x")),
    )
    content = reply_content(reply)
    assert content["msgtype"] == "m.text"
    assert content["body"] == (
        "Spaces\nTry !space list or <b>\nGet ticket: !ticket buy 1\nPay: https://p/x"
    )
    assert "Try !space list or &lt;b&gt;" in content["formatted_body"]
    assert '<a href="https://p/x">Pay</a>' in content["formatted_body"]
    assert reply_content(Reply("No.", error=True))["msgtype"] == "m.notice"
    threaded = in_thread(content, "$root")
    assert threaded["m.relates_to"]["rel_type"] == "m.thread"
    assert threaded["m.relates_to"]["m.in_reply_to"] == {"event_id": "$root"}


def test_a_dm_lists_its_links() -> None:
    message = DirectMessage(identity_key="k", text="Your ticket", links=(("Join", "https://r"),))
    content = dm_content(message)
    assert content["body"] == "Your ticket\nJoin: https://r"


def _settings(settings: Settings, **values: object) -> Settings:
    return settings.model_copy(update=values)


def test_settings(settings: Settings) -> None:
    assert MatrixConfig.from_settings(settings) is None  # Matrix is off
    full = {
        "matrix_homeserver": "https://matrix.example.org/",
        "matrix_user_id": "@stagepass:example.org",
        "matrix_access_token": SecretStr("syt_secret"),
        "matrix_announce_room": "#stagepass:example.org",
    }
    config = MatrixConfig.from_settings(_settings(settings, **full))
    assert config is not None
    assert config.homeserver == "https://matrix.example.org"
    assert config.store_dir == settings.data_dir / "matrix"
    for name, bad, words in [
        ("matrix_homeserver", "matrix.example.org", "MATRIX_HOMESERVER"),
        ("matrix_user_id", "stagepass", "MATRIX_USER_ID"),
        ("matrix_access_token", None, "MATRIX_ACCESS_TOKEN"),
        ("matrix_announce_room", "general", "MATRIX_ANNOUNCE_ROOM"),
    ]:
        with pytest.raises(ConfigError, match=words):
            MatrixConfig.from_settings(_settings(settings, **{**full, name: bad}))
    room_v12 = {**full, "matrix_announce_room": "!O-aCAmWyLwEa1-X5ShUuYXnbw9mOM7lneyIjhXVBgxs"}
    assert MatrixConfig.from_settings(_settings(settings, **room_v12)) is not None


ROOM = "!room:example.org"


def _event(kind: str, sender: str, content: dict[str, Any], at: int, **more: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "sender": sender,
        "content": content,
        "event_id": f"${kind}-{sender}-{at}",
        "origin_server_ts": at,
        "unsigned": {},
        **more,
    }


def _member(user_id: str, at: int, prev: str | None = None) -> dict[str, Any]:
    unsigned = {"prev_content": {"membership": prev}} if prev else {}
    return {
        **_event("m.room.member", user_id, {"membership": "join"}, at, state_key=user_id),
        "unsigned": unsigned,
    }


def _sync(state: list[dict[str, Any]], timeline: list[dict[str, Any]]) -> SyncResponse:
    response = SyncResponse.from_dict(
        {
            "next_batch": "s1",
            "rooms": {
                "join": {
                    ROOM: {
                        "state": {"events": state},
                        "timeline": {"events": timeline, "limited": False},
                        "ephemeral": {"events": []},
                        "account_data": {"events": []},
                    }
                }
            },
        }
    )
    assert isinstance(response, SyncResponse), response
    return response


DAY = 86_400_000  # ms


@pytest.mark.parametrize("version", ["12", "11"])
async def test_actors_from_power_levels_creators_and_join_events(version: str) -> None:
    """What `Commands.actor` reads from what a sync brought: the moderator level, room
    creators (above every level from room version 12 on), and when someone joined."""
    client = AsyncClient("http://127.0.0.1:9", "@bot:example.org")
    connection = Connection(client)
    levels = {"@mod:example.org": 50, "@low:example.org": 49}
    if version == "11":
        levels["@host:example.org"] = 100
    create = {"room_version": version, "additional_creators": ["@co:example.org"]}
    response = _sync(
        [
            _event("m.room.create", "@host:example.org", create, 1, state_key=""),
            _event("m.room.power_levels", "@host:example.org", {"users": levels}, 2, state_key=""),
            *(_member(user, 3) for user in ("@host:example.org", "@co:example.org")),
            *(_member(user, 3) for user in ("@mod:example.org", "@low:example.org")),
            _member("@new:example.org", 5 * DAY, prev="join"),  # a later profile change
        ],
        [_member("@low:example.org", 9 * DAY, prev="leave")],  # left and joined again
    )
    await client.receive_response(response)
    await client.run_response_callbacks([response])
    commands = Commands(
        cast(Any, None),
        cast(Any, None),
        connection,
        cast(Any, None),
        room_id=ROOM,
        moderator_level=50,
    )
    moderators = {
        user: commands.actor(f"@{user}:example.org").is_moderator
        for user in ("host", "co", "mod", "low", "new")
    }
    assert moderators == {
        "host": True,
        "co": version == "12",  # an additional creator; listed nowhere in version 11
        "mod": True,
        "low": False,
        "new": False,
    }
    since = {
        user: commands.actor(f"@{user}:example.org").member_since for user in ("mod", "low", "new")
    }
    assert since == {
        "mod": datetime.fromtimestamp(3 / 1000, UTC),
        "low": datetime.fromtimestamp(9 * DAY / 1000, UTC),
        "new": datetime.fromtimestamp(5 * DAY / 1000, UTC),
    }
    actor = commands.actor("@mod:example.org")
    assert actor.key == "matrix:!room:example.org:@mod:example.org"
    await client.close()


async def test_a_failing_event_handler_is_logged_and_the_sync_loop_goes_on() -> None:
    from adapters.matrix.commands import _guarded

    async def broken(room: MatrixRoom, event: RoomMessageText) -> None:
        raise ValueError("a bug")

    event = RoomMessageText.from_dict(
        _event("m.room.message", "@ann:example.org", {"msgtype": "m.text", "body": "hi"}, 1)
    )
    with structlog.testing.capture_logs() as logs:
        await _guarded(broken)(MatrixRoom(ROOM, "@bot:example.org"), event)  # no raise
    [entry] = logs
    assert entry["event"] == "matrix: an event handler failed"
    assert entry["handler"] == "broken" and entry["room"] == ROOM
    assert entry["sender"] == "@ann:example.org" and entry["event_id"] == event.event_id
