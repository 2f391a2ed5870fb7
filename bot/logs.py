"""Logging: structlog on top of the standard library, console or JSON, secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(token|secret|password|key|authorization|signature)", re.I)


def _redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Never let a secret-looking field reach a log line."""
    for key in list(event):
        if key != "event" and _SECRET_KEYS.search(key):
            event[key] = "[redacted]"
    return event


def configure(level: str = "info", fmt: str = "console", file: Path | None = None) -> None:
    """Set up logs once per process. With `file`, logs go there instead of stderr (the
    interactive shell keeps the terminal for the chat)."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=file is None and sys.stderr.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    tail: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if fmt == "json":
        tail.append(structlog.processors.format_exc_info)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared, processors=[*tail, renderer]
    )
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(file)
    else:
        handler = logging.StreamHandler(sys.stderr)
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
