"""The bot's Matrix session: an `nio.AsyncClient` logged in with the configured token, or
with the token a one-time password login stored (a private file in the data directory),
with nio's end-to-end encryption store beside it when the crypto extra is installed."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import structlog
from nio import AsyncClient, AsyncClientConfig, LoginResponse, WhoamiResponse

from adapters.matrix.config import MatrixConfig
from bot.errors import ConfigError

log = structlog.get_logger(__name__)


def _crypto() -> bool:
    """Whether nio can encrypt: its e2e extra (vodozemac) is installed."""
    try:
        from nio.crypto import ENCRYPTION_ENABLED as enabled
    except ImportError:  # pragma: no cover - the extra is a project dependency
        return False
    return bool(enabled)


ENCRYPTION_ENABLED: bool = _crypto()

CREDENTIALS = "credentials.json"
DEVICE_NAME = "Stagepass"


def _save(path: Path, credentials: dict[str, str]) -> None:
    """Write the login so only the bot's own user may read it (0600 from the start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(credentials, out)
    path.chmod(0o600)


def _client(config: MatrixConfig) -> AsyncClient:
    store = config.store_dir / "store"
    store.mkdir(parents=True, exist_ok=True, mode=0o700)
    options = AsyncClientConfig(
        encryption_enabled=ENCRYPTION_ENABLED,
        store_sync_tokens=True,  # a restart does not answer old commands again
        max_timeouts=None,
    )
    if ENCRYPTION_ENABLED:
        from adapters.matrix.store import Store  # needs the crypto extra (peewee)

        options = replace(options, store=Store)
    return AsyncClient(config.homeserver, config.user_id, store_path=str(store), config=options)


async def open_session(config: MatrixConfig) -> AsyncClient:
    """A logged-in client; a `ConfigError` when the homeserver refuses the credentials."""
    config.store_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    saved = config.store_dir / CREDENTIALS
    client = _client(config)
    if config.access_token:
        client.access_token = config.access_token
        who = await client.whoami()
        if not isinstance(who, WhoamiResponse) or who.user_id != config.user_id:
            await client.close()
            raise ConfigError(
                "Setting MATRIX_ACCESS_TOKEN: the homeserver does not accept it for "
                f"{config.user_id} ({getattr(who, 'status_code', '') or 'another user'})"
            )
        client.restore_login(config.user_id, who.device_id or "", config.access_token)
        return client
    if saved.exists():
        stored = json.loads(saved.read_text())
        if stored.get("user_id") == config.user_id and stored.get("homeserver") == (
            config.homeserver
        ):
            client.restore_login(stored["user_id"], stored["device_id"], stored["access_token"])
            return client
    assert config.password is not None
    response = await client.login(config.password, device_name=DEVICE_NAME)
    if not isinstance(response, LoginResponse):
        await client.close()
        raise ConfigError(
            f"Setting MATRIX_PASSWORD: the homeserver refused the login of {config.user_id} "
            f"({getattr(response, 'status_code', 'no answer')})"
        )
    _save(
        saved,
        {
            "homeserver": config.homeserver,
            "user_id": response.user_id,
            "device_id": response.device_id,
            "access_token": response.access_token,
        },
    )
    log.info("matrix: logged in; the token is kept for the next start", device=response.device_id)
    return client
