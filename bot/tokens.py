"""Signed ticket tokens: Ed25519, verifiable with the public key alone.

A token is `base64url(payload) "." base64url(signature)` where the payload is compact
JSON naming the ticket (`t`), the Space (`s`), the holder (`h`), the role it admits
(`r`) and an expiry (`e`, unix seconds); a token of another kind than a ticket (`k`:
"desk", the host's desk link; "manage", a holder's manage-my-ticket link) is refused where
a ticket is asked for, and the reverse.
Any edge can check the signature offline; revocation is a separate database check
(`TicketService.verify_token`).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from bot.errors import ConfigError, UserError
from bot.files import secret_file
from bot.logs import add_secrets

TOKEN_VERSION = 1
TICKET_KIND = "ticket"
DESK_KIND = "desk"
MANAGE_KIND = "manage"


class InvalidToken(UserError):
    """The token is malformed, forged or expired."""


@dataclass(frozen=True, slots=True)
class TicketClaims:
    ticket_id: str
    space_id: int
    holder_key: str  # the holder's identity id
    role: str
    expires_at: datetime
    kind: str = TICKET_KIND


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Signs tokens (needs the private key)."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key
        self.verifier = TokenVerifier(key.verify_key)

    def sign(self, claims: TicketClaims) -> str:
        payload = json.dumps(
            {
                "v": TOKEN_VERSION,
                "t": claims.ticket_id,
                "s": claims.space_id,
                "h": claims.holder_key,
                "r": claims.role,
                "e": int(claims.expires_at.timestamp()),
                **({"k": claims.kind} if claims.kind != TICKET_KIND else {}),
            },
            separators=(",", ":"),
        ).encode()
        return f"{_b64e(payload)}.{_b64e(self._key.sign(payload).signature)}"


class TokenVerifier:
    """Verifies tokens with the public key only."""

    def __init__(self, key: VerifyKey) -> None:
        self._key = key

    @property
    def public_key(self) -> str:
        return _b64e(bytes(self._key))

    def verify(self, token: str, *, now: datetime, kind: str = TICKET_KIND) -> TicketClaims:
        """The claims of a well-signed, unexpired token of `kind`; `InvalidToken` else."""
        try:
            body, sig = token.strip().split(".")
            payload = _b64d(body)
            self._key.verify(payload, _b64d(sig))
            data = json.loads(payload)
            if data.get("v") != TOKEN_VERSION:
                raise InvalidToken("This ticket token has an unknown format.")
            claims = TicketClaims(
                ticket_id=str(data["t"]),
                space_id=int(data["s"]),
                holder_key=str(data["h"]),
                role=str(data["r"]),
                expires_at=datetime.fromtimestamp(int(data["e"]), UTC),
                kind=str(data.get("k", TICKET_KIND)),
            )
            if claims.kind != kind:
                raise InvalidToken("This link is not valid here.")
        except InvalidToken:
            raise
        except (ValueError, KeyError, TypeError, binascii.Error, BadSignatureError):
            raise InvalidToken("This ticket token is not valid.") from None
        if claims.expires_at <= now:
            raise InvalidToken("This ticket token has expired.")
        return claims


def load_signing_key(configured: str | None, data_dir: Path) -> SigningKey:
    """The configured key (base64 of the 32-byte seed) or the one stored in the data
    directory — generated there, readable by the owner only, on first run (race-free)."""
    if configured:
        try:
            seed = _b64d(configured.strip())
            return SigningKey(seed)
        except (ValueError, binascii.Error, TypeError):
            raise ConfigError(
                "Setting STAGEPASS_SIGNING_KEY: expected the base64 of a 32-byte Ed25519 seed"
            ) from None
    stored = secret_file(data_dir / "signing.key", lambda: _b64e(bytes(SigningKey.generate())))
    add_secrets(stored)
    return SigningKey(_b64d(stored))


def load_api_token(configured: str | None, data_dir: Path) -> str:
    """The configured operator API token, or one generated into the data directory."""
    if configured:
        return configured
    token = secret_file(data_dir / "api-token", lambda: _b64e(os.urandom(24)))
    add_secrets(token)
    return token
