"""Matrix <-> core without a homeserver: which messages are commands, how replies and DMs
look, and what the settings must say."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

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


class _Connection:
    """What `Commands.actor` reads of the connection: power levels and display names."""

    def __init__(self, levels: dict[str, int]) -> None:
        self.levels = levels
        self.client = type("Client", (), {"rooms": {}})()

    def power_level(self, room_id: str, user_id: str) -> int:
        return self.levels.get(user_id, 0)

    def display_name(self, room_id: str, user_id: str) -> str:
        return user_id.split(":")[0].lstrip("@").title()


@pytest.mark.parametrize(("level", "moderator"), [(100, True), (50, True), (49, False), (0, False)])
def test_moderators_are_members_at_the_moderator_power_level(level: int, moderator: bool) -> None:
    from typing import Any, cast

    from adapters.matrix.commands import Commands

    commands = Commands(
        cast(Any, None),
        cast(Any, None),
        cast(Any, _Connection({"@ann:example.org": level})),
        cast(Any, None),
        room_id="!room:example.org",
        moderator_level=50,
    )
    actor = commands.actor("@ann:example.org")
    assert actor.is_moderator is moderator
    assert actor.key == "matrix:!room:example.org:@ann:example.org"
    assert actor.display_name == "Ann"
