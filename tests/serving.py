"""Serving an ASGI app for a test: uvicorn on 127.0.0.1, an ephemeral port, no signal
handlers (the test runner owns Ctrl-C). One helper for the Stripe fake and the browser
tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn

from tests.waiting import eventually


class QuietServer(uvicorn.Server):
    """uvicorn without signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # leave pytest's Ctrl-C handling alone
        yield


@contextlib.asynccontextmanager
async def serve_asgi(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1, an ephemeral port; yields its base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        http="h11",
        timeout_graceful_shutdown=2,
    )
    server = QuietServer(config)
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started or task.done(), what="uvicorn started")
        if task.done():
            task.result()
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
