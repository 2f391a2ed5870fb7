"""Logging: structlog on top of the standard library, console or JSON, secrets redacted.

Secrets are kept out twice over. By name: a field called like a secret (`token`,
`authorization`, ...) is replaced whole. By value: every secret the process knows —
the configured ones (`Settings.secret_values()`, passed to `configure`) and those it
learns later (generated key files, Slack OAuth bot tokens: `add_secrets`) — is masked
wherever it shows up in a record, nested values and exception text included, and so is
any 16-character slice of one (a secret cut by a line wrap or a truncated repr).

Tracebacks are Python's plain ones, without frame locals: locals held the operator
token and Slack's `Authorization` header, and rendering them took seconds.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import structlog

from bot.files import private_dir, private_file

_SECRET_KEYS = re.compile(r"(token|secret|password|key|authorization|signature)", re.I)

MASK = "[redacted]"
#: A secret's slices this long are masked too; so are whole secrets from this length up.
SLICE = 16
MIN_SECRET = 8  # shorter values are not secrets worth the name, and masking them garbles logs
_PLAIN = (int, float, bool, type(None), datetime, date)


class Redactor:
    """Masks known secret values in text: whole occurrences of short secrets, and every
    occurrence of any `SLICE`-character slice of a longer one (one set lookup per
    position of the text, so a page of traceback costs about a millisecond)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._slices: frozenset[str] = frozenset()
        self._short: re.Pattern[str] | None = None

    def add(self, values: Iterable[str | None]) -> None:
        new = {v for v in values if v and len(v) >= MIN_SECRET} - self._secrets
        if not new:
            return
        with self._lock:
            self._secrets |= new
            slices = set(self._slices)
            for secret in new:
                slices.update(secret[i : i + SLICE] for i in range(len(secret) - SLICE + 1))
            short = sorted((s for s in self._secrets if len(s) < SLICE), key=len, reverse=True)
            self._slices = frozenset(slices)
            self._short = re.compile("|".join(map(re.escape, short))) if short else None

    def clear(self) -> None:
        with self._lock:
            self._secrets, self._slices, self._short = set(), frozenset(), None

    def mask(self, text: str) -> str:
        slices, short = self._slices, self._short
        if short is not None:
            text = short.sub(MASK, text)
        if not slices or len(text) < SLICE:
            return text
        spans: list[list[int]] = []
        for i in range(len(text) - SLICE + 1):
            if text[i : i + SLICE] in slices:
                if spans and i <= spans[-1][1]:
                    spans[-1][1] = i + SLICE
                else:
                    spans.append([i, i + SLICE])
        if not spans:
            return text
        out, last = [], 0
        for start, end in spans:
            out += [text[last:start], MASK]
            last = end
        out.append(text[last:])
        return "".join(out)

    def scrub(self, value: Any) -> Any:
        """`value` with secrets masked: strings, containers walked, other objects by their
        repr (what a renderer would print) when that holds a secret."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, dict):
            return {key: self.scrub(item) for key, item in value.items()}
        if isinstance(value, list | set | frozenset) or type(value) is tuple:
            return type(value)(self.scrub(item) for item in value)
        return self._scrub_repr(value)

    def _scrub_repr(self, value: Any) -> Any:
        text = repr(value)
        masked = self.mask(text)
        return value if masked == text else masked


#: The process's one redactor: logging is process-wide, and so is what it must not show.
redactor = Redactor()


def add_secrets(*values: str | None) -> None:
    """Secrets learned at run time (a generated key, a workspace's OAuth bot token): from
    now on the logs mask them too."""
    redactor.add(values)


def _redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Never let a secret-looking field reach a log line."""
    for key in list(event):
        if key != "event" and _SECRET_KEYS.search(key):
            event[key] = "[redacted]"
    return event


def _redact_values(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Mask every known secret in every field (run after the exception became text)."""
    return {
        key: value if key.startswith("_") else redactor.scrub(value) for key, value in event.items()
    }


def _masked(renderer: Any) -> Any:
    """The renderer, with its output masked once more: what a renderer adds (a repr of
    its own, padding) cannot bring a secret back."""

    def render(logger: Any, name: str, event: dict[str, Any]) -> str:
        return redactor.mask(str(renderer(logger, name, event)))

    return render


def configure(
    level: str = "info",
    fmt: str = "console",
    file: Path | None = None,
    *,
    secrets: Iterable[str | None] = (),
    colors: bool | None = None,
    stream: Any = None,
) -> None:
    """Set up logs once per process. With `file`, logs go there (0600) instead of stderr
    (the interactive shell keeps the terminal for the chat). `secrets` are the configured
    ones (`Settings.secret_values()`); `colors` defaults to "stderr is a terminal"."""
    redactor.add(secrets)
    if colors is None:
        colors = file is None and sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # plain traceback text, no frame locals; before the value redaction, which masks it
        structlog.processors.format_exc_info,
        _redact,
        _redact_values,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _masked(renderer)],
    )
    handler: logging.Handler
    if file is not None:
        private_dir(file.parent)
        handler = logging.FileHandler(private_file(file))
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in (
        "aiosqlite",
        "asyncio",
        "alembic.runtime.migration",
        "alembic.runtime.plugins",
        "sqlalchemy.engine",
        "aioice",
        "aiortc",
        "discord",
        "httpx",
        "stripe",
        "apscheduler",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
