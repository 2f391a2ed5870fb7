"""`RequestContext`: the one middleware every HTTP request passes through.

It gives the request an id (a sane incoming `X-Request-ID`, else a fresh one), binds it
to structlog's context and echoes it in the response, counts the request by its route
template and status, and answers an exception no handler took with a logged, generic
500 in the error envelope. A NUL character in the path or query is a 422 before any
route sees it. The framework's own plain-text 413 (a body over its route's
`max_body_size`, refused while it is read) becomes the envelope too. It sits inside
Starlette's `ServerErrorMiddleware` and outside the handlers of `bot.http.errors`, so core
errors arrive here already as responses.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.http.errors import INTERNAL_MESSAGE, error_response, too_large_response
from bot.http.metrics import UNMATCHED_ROUTE, CoreMetrics

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _is_plain_text(message: Message) -> bool:
    return Headers(raw=message.get("headers", [])).get("content-type", "").startswith("text/plain")


def route_template(scope: Scope, root_path: str) -> str:
    """The template of the route that answered, read after the app ran: the router leaves
    the matched route in the (shared) scope. Inside a mount, the route's path is relative
    and the mount's matched prefix was appended to `root_path` (concrete, which is fine:
    mounts here have no parameters in their own path)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    mount_prefix = str(scope.get("root_path", ""))[len(root_path) :]
    return mount_prefix + path


def _has_nul(scope: Scope) -> bool:
    """A NUL character in the path or the query: no link of ours has one, and PostgreSQL
    stores none (it failed deep in the work, a 500)."""
    query = bytes(scope.get("query_string", b"")).lower()
    return "\x00" in str(scope.get("path", "")) or b"%00" in query or b"\x00" in query


NUL_IN_ADDRESS = "The address has a NUL character (%00) in it; no Stagepass link does."


class RequestContext:
    def __init__(self, app: ASGIApp, *, metrics: CoreMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        root_path = str(scope.get("root_path", ""))
        status = 500
        started = False
        replaced = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started, replaced
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                if status == 413 and _is_plain_text(message):
                    replaced = True
                    await too_large(scope, receive, send_with_request_id)
                    return
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            elif replaced:
                return  # the framework's plain-text body: the envelope was sent instead
            await send(message)

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        too_large = too_large_response()
        # a response of its own each time: the headers it sends are appended to in place
        app = error_response(422, "invalid_input", NUL_IN_ADDRESS) if _has_nul(scope) else self.app

        began = time.perf_counter()
        self.metrics.http_in_flight.inc()
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                try:
                    await app(scope, receive, send_with_id)
                except Exception as exc:
                    self._unhandled(scope, route_template(scope, root_path), request_id, exc)
                    if started:
                        raise  # too late for a response: let the server drop the connection
                    response = error_response(
                        500, "internal_error", INTERNAL_MESSAGE, request_id=request_id
                    )
                    await response(scope, receive, send_with_id)
        finally:
            self.metrics.http_in_flight.dec()
            self.metrics.observe_request(
                scope["method"],
                route_template(scope, root_path),
                status,
                time.perf_counter() - began,
            )

    def _unhandled(self, scope: Scope, route: str, request_id: str, exc: Exception) -> None:
        self.metrics.http_unhandled.inc()
        fields: dict[str, Any] = {
            "method": scope["method"],
            "route": route,
            "path": scope.get("path", ""),
            "request_id": request_id,
        }
        log.error("unhandled error in HTTP request", exc_info=exc, **fields)
