"""Slack's request signature, checked over the raw bytes before anything reads the body.

Slack signs `v0:<X-Slack-Request-Timestamp>:<body>` with HMAC-SHA256 and the app's
signing secret and sends `X-Slack-Signature: v0=<hex>`. A request that is unsigned,
wrongly signed, or signed more than five minutes from now (a replay) is refused with
`Unsigned` (401) here, whatever its body holds: nothing decodes, parses or logs it first.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

#: How far a request's timestamp may be from our clock (Slack's documented five minutes).
MAX_AGE_SECONDS = 5 * 60

_VERSION = "v0"
_DIGITS = frozenset("0123456789")


class Unsigned(Exception):
    """Slack did not sign this request (or signed it too long ago). Never says which
    part failed to the caller: the reason is for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Signatures:
    def __init__(self, secret: str, *, now: Callable[[], float] = time.time) -> None:
        self._key = secret.encode()
        self._now = now

    def sign(self, timestamp: str, body: bytes) -> str:
        """`X-Slack-Signature` for `body` sent at `timestamp` (tests and tools)."""
        base = b"%s:%s:%s" % (_VERSION.encode(), timestamp.encode("ascii"), body)
        return f"{_VERSION}=" + hmac.new(self._key, base, hashlib.sha256).hexdigest()

    def check(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise `Unsigned` unless Slack signed exactly these bytes in the last five
        minutes. `headers` is read case-insensitively by the caller's mapping."""
        timestamp = headers.get("x-slack-request-timestamp") or ""
        signature = headers.get("x-slack-signature") or ""
        # digits only: int() alone would take " 12", "1_000" and "+5"
        if not timestamp or len(timestamp) > 12 or not set(timestamp) <= _DIGITS:
            raise Unsigned("missing or malformed X-Slack-Request-Timestamp")
        if abs(self._now() - int(timestamp)) > MAX_AGE_SECONDS:
            raise Unsigned("stale X-Slack-Request-Timestamp")
        if not signature.isascii() or not hmac.compare_digest(
            signature.encode("ascii"), self.sign(timestamp, body).encode("ascii")
        ):
            raise Unsigned("bad X-Slack-Signature")
