"""The HTTP servers `stagepass run` starts: uvicorn, with deadlines for slow clients.

uvicorn closes an idle keep-alive connection (`timeout_keep_alive`) but waits forever for
a client that connects and sends nothing, trickles its headers, or trickles its body: a
few hundred such sockets hold the server's memory and file descriptors. `SlowClientGuard`
gives each phase of a request a deadline and closes the connection when it passes:

    headers  from the connection (or the end of the last response) to the last header line
    body     from the last header line to the end of the body

The app's own time to answer is not limited here.

When the server hangs up on a client that is still sending (a 413 for a body over its
limit, a deadline passed), closing at once would reset the connection and the client
could lose the answer; it is closed the way nginx's lingering close does: the answer is
flushed, the write side shut, and what the client still sends is read and dropped until
it hangs up, `LINGER_SECONDS` pass or `LINGER_BYTES` were dropped (a client that sends
megabytes without reading the answer gets a reset rather than our bandwidth).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any, Literal

import h11
import structlog
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from bot.settings import Settings

log = structlog.get_logger(__name__)

Phase = Literal["headers", "body"]
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024


class _LingeringTransport:
    """The connection's transport as uvicorn sees it: `close()` lingers while the client
    is still sending its body; everything else is the real transport's."""

    def __init__(self, real: asyncio.Transport, guard: SlowClientGuard) -> None:
        self._real = real
        self._guard = guard

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def is_closing(self) -> bool:
        return self._guard.lingering or self._real.is_closing()

    def close(self) -> None:
        if self._guard.lingering or self._real.is_closing():
            return
        if self._guard.conn.their_state is h11.SEND_BODY and self._real.can_write_eof():
            self._guard.linger()
        else:
            self._real.close()


class SlowClientGuard(H11Protocol):
    """uvicorn's h11 protocol with the header and body deadlines (class attributes: make a
    subclass per server with `guarded_protocol`)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase: Phase | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.lingering = False
        self._dropped = 0
        self._socket = transport
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[arg-type]  # a stand-in: the real transport's API, close() lingers
        self._watch()

    def data_received(self, data: bytes) -> None:
        if self.lingering:  # the rest of a body nobody reads
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES:
                self._set(None)
                self._socket.close()
            return
        super().data_received(data)
        self._watch()

    def eof_received(self) -> None:
        if self.lingering:
            self._set(None)
            self._socket.close()
        super().eof_received()

    def linger(self) -> None:
        """Send what is buffered, shut the write side, drop what arrives, then close."""
        self.lingering = True
        self._socket.write_eof()
        self._socket.resume_reading()
        self._set(None)
        self._deadline = self.loop.call_later(LINGER_SECONDS, self._socket.close)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._set(None)
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Arm the deadline of the phase the client is in; nothing once the request is in."""
        state = self.conn.their_state
        if self.transport.is_closing():  # closed, or lingering (with its own deadline)
            phase: Phase | None = None
        elif state is h11.IDLE:
            phase = "headers"
        elif state is h11.SEND_BODY:
            phase = "body"
        else:
            phase = None
        if phase != self._phase:
            self._set(phase)

    def _set(self, phase: Phase | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = phase
        if phase is not None:
            timeout = self.header_timeout if phase == "headers" else self.body_timeout
            self._deadline = self.loop.call_later(timeout, self._expire, phase)

    def _expire(self, phase: Phase) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        log.debug("closing a slow HTTP client", phase=phase, client=self.client)
        self.transport.close()


def guarded_protocol(*, header_timeout: float, body_timeout: float) -> type[SlowClientGuard]:
    return type(
        "SlowClientGuard",
        (SlowClientGuard,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )


class Server(uvicorn.Server):
    """uvicorn without its own signal handling: `Stagepass.run` owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server(app: FastAPI, settings: Settings, *, host: str, port: int) -> Server:
    """A server for `app` on `host:port` with the settings' deadlines for slow clients."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(
            header_timeout=settings.http_header_timeout, body_timeout=settings.http_body_timeout
        ),
        timeout_keep_alive=settings.http_keep_alive_timeout,  # type: ignore[arg-type]  # uvicorn says int; it only hands it to call_later
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    return Server(config)
