"""Cross-origin access to a room's origin, for room pages served by an audio edge.

A room page loaded from an edge sends hosts, co-hosts, speakers and moderators (and a
listener promoted while there) to the room's origin: after the edge's 409 it posts the same
offer to the origin's ``/rooms/{id}/offer``, then polls the origin's ``/state`` (and a host
records through its ``/recording``). Those are the only cross-origin routes, and the rule
is narrow:

* only the web origins (scheme, host, port) of the deployment's edges are allowed: each
  edge's STAGEPASS_PUBLIC_URL, which it sends with every question it asks the origin over
  NATS (`audio.edges`), so the origin knows exactly the edges that relay its rooms;
* only those routes, only GET and POST, only the ``Authorization`` and ``Content-Type``
  request headers; no credentials (the page sends its ticket token as a Bearer header and
  never a cookie), and ``Vary: Origin`` on every answer;
* a preflight from anywhere else gets 403 and no CORS header, so the browser refuses.

Errors keep the app's own error bodies and get the same headers, so the page can read them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Coroutine
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.routing import APIRoute

_DEFAULT_PORTS = {"http": 80, "https": 443}
PREFLIGHT_MAX_AGE = 600


def web_origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, as browsers send it in ``Origin``; None
    if ``url`` is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return (
        f"{scheme}://{host}"
        if port in (None, _DEFAULT_PORTS[scheme])
        else f"{scheme}://{host}:{port}"
    )


class CrossOrigin:
    """Which web origins may call the cross-origin routes, read at each request (``allowed``
    returns the live set: edges are learned while the origin runs)."""

    def __init__(self, allowed: Callable[[], Collection[str]]) -> None:
        self._allowed = allowed

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and origin != "null" and origin in self._allowed()

    def headers(self, origin: str | None) -> dict[str, str]:
        """What to add to an answer to a request from ``origin``."""
        if origin is None or not self.allows(origin):
            return {"Vary": "Origin"}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def preflight(self, request: Request) -> Response:
        """The answer to an ``OPTIONS`` preflight of a cross-origin route."""
        origin = request.headers.get("origin")
        if not self.allows(origin):
            return Response(status_code=403, headers={"Vary": "Origin"})
        return Response(
            status_code=204,
            headers={
                **self.headers(origin),
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE),
            },
        )

    def route_class(self) -> type[APIRoute]:
        """An `APIRoute` class whose answers, errors included, carry this policy's headers
        (build the cross-origin routes' router with it)."""
        policy = self

        class CrossOriginRoute(APIRoute):
            def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
                handler = super().get_route_handler()

                async def answer(request: Request) -> Response:
                    headers = policy.headers(request.headers.get("origin"))
                    try:
                        response = await handler(request)
                    except Exception as exc:
                        handled = await _error_response(request, exc)
                        if handled is None:
                            raise  # a bug: the app's 500, no CORS needed to read it
                        response = handled
                    response.headers.update(headers)
                    return response

                return answer

        return CrossOriginRoute


async def _error_response(request: Request, exc: Exception) -> Response | None:
    """The app's own answer to ``exc`` (its error envelope), from the handler Starlette would
    pick; None if the app has none (an unexpected error)."""
    handlers: dict[Any, Any] = request.app.exception_handlers
    for kind in type(exc).__mro__:
        handler = handlers.get(kind)
        if handler is not None:
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
            assert isinstance(response, Response)
            return response
    return None
