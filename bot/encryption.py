"""Secrets stored in the database (Slack OAuth bot tokens) are encrypted at rest with
Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`).

The key is STAGEPASS_ENCRYPTION_KEY, or `encryption.key` in the data directory, generated
there (0600) on first use. Back that file up with the database: without it the stored
tokens cannot be read and every workspace must install the app again. Several keys,
comma-separated, rotate: the first encrypts, any of them decrypts.

A stored value is `fernet:<token>`; a value without the prefix is a plain one from before
encryption (the 0008 migration encrypts those), returned as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.errors import ConfigError
from bot.files import secret_file
from bot.logs import add_secrets

if TYPE_CHECKING:
    from bot.settings import Settings

PREFIX = "fernet:"
KEY_FILE = "encryption.key"


class Cipher:
    """Encrypts and decrypts the stored secrets with one key set."""

    def __init__(self, keys: list[str]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except (ValueError, TypeError):
            raise ConfigError(
                "Setting STAGEPASS_ENCRYPTION_KEY: expected Fernet keys (32 url-safe base64 "
                "bytes each, comma-separated); make one with `python -c 'from "
                "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            ) from None

    @staticmethod
    def is_encrypted(stored: str | None) -> bool:
        return stored is not None and stored.startswith(PREFIX)

    def encrypt(self, plain: str) -> str:
        return PREFIX + self._fernet.encrypt(plain.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        if not self.is_encrypted(stored):
            return stored
        try:
            return self._fernet.decrypt(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken:
            raise ConfigError(
                "A stored secret does not open with this encryption key: restore "
                f"{KEY_FILE} from your backup into the data directory, or set "
                "STAGEPASS_ENCRYPTION_KEY to the key it was written with."
            ) from None

    def encrypt_optional(self, plain: str | None) -> str | None:
        return None if plain is None else self.encrypt(plain)

    def decrypt_optional(self, stored: str | None) -> str | None:
        return None if stored is None else self.decrypt(stored)


def load_cipher(configured: str | None, data_dir: Path) -> Cipher:
    """The configured key(s), or the one kept in the data directory (made on first run,
    race-free when two processes start at once)."""
    if configured and configured.strip():
        keys = [part.strip() for part in configured.split(",") if part.strip()]
    else:
        keys = [secret_file(data_dir / KEY_FILE, lambda: Fernet.generate_key().decode())]
    add_secrets(*keys)
    return Cipher(keys)


def settings_cipher(settings: Settings) -> Cipher:
    """The cipher `settings` call for: how the app and the migrations get their key."""
    configured = settings.encryption_key.get_secret_value() if settings.encryption_key else None
    return load_cipher(configured, settings.data_dir)
