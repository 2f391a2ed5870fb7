"""What the Matrix adapter is told by the settings, checked once at start-up.

    MATRIX_HOMESERVER + MATRIX_USER_ID + MATRIX_ANNOUNCE_ROOM
    + MATRIX_ACCESS_TOKEN, or MATRIX_PASSWORD (one login; the token is then kept in
      STAGEPASS_DATA_DIR/matrix/credentials.json, readable by its owner only)

`MatrixConfig.from_settings` returns None when none of these is set (Matrix is off) and
raises `ConfigError` naming the variable when they are set half-way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ConfigError
from bot.settings import Settings, plain_of, secret_of

_USER_ID = re.compile(r"^@[^:\s]+:[\w.-]+(?::\d+)?$")
#: a room id (`!abc:example.org`; rooms of version 12 on have no server part) or an alias
_ROOM = re.compile(r"^(?:![^\s]+|#[^:\s]+:[\w.-]+(?::\d+)?)$")


@dataclass(frozen=True, slots=True)
class MatrixConfig:
    homeserver: str
    user_id: str
    announce_room: str  # a room id (!...) or an alias (#...), resolved at start
    store_dir: Path  # credentials and the end-to-end encryption store
    access_token: str | None = None
    password: str | None = None
    moderator_level: int = 50

    @classmethod
    def from_settings(cls, settings: Settings) -> MatrixConfig | None:
        homeserver = plain_of(settings.matrix_homeserver)
        user_id = plain_of(settings.matrix_user_id)
        token = secret_of(settings.matrix_access_token)
        password = secret_of(settings.matrix_password)
        room = plain_of(settings.matrix_announce_room)
        if not any((homeserver, user_id, token, password, room)):
            return None
        if not homeserver or not homeserver.startswith(("https://", "http://")):
            raise ConfigError(
                "Setting MATRIX_HOMESERVER: the bot's homeserver URL, e.g. "
                "https://matrix.example.org"
            )
        if not user_id or not _USER_ID.match(user_id):
            raise ConfigError(
                "Setting MATRIX_USER_ID: the bot account's full id, e.g. @stagepass:example.org"
            )
        if not token and not password:
            raise ConfigError(
                "Setting MATRIX_ACCESS_TOKEN: the bot account's access token (or set "
                "MATRIX_PASSWORD once: the bot logs in and keeps the token)"
            )
        if not room or not _ROOM.match(room):
            raise ConfigError(
                "Setting MATRIX_ANNOUNCE_ROOM: the room id (!abc:example.org) or alias "
                "(#stagepass:example.org) where Spaces are announced"
            )
        return cls(
            homeserver=homeserver.rstrip("/"),
            user_id=user_id,
            announce_room=room,
            store_dir=settings.data_dir / "matrix",
            access_token=token,
            password=password,
            moderator_level=settings.matrix_moderator_level,
        )
