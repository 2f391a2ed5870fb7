"""One error envelope for every HTTP answer that is not a success.

    {"error": {"type": "sold_out", "message": "Space #3 is sold out.", "field": null}}

`type` is the exception's class name in snake_case, `message` is written for a person
(`UserError.message`), `field` names the offending input when one is known. The status
of a core error comes from the nearest class in `STATUS_BY_ERROR` along its MRO, so a
new subclass inherits its parent's status without touching this module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from bot.errors import (
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotConfigured,
    NotFound,
    PermissionDenied,
    RateLimited,
    SoldOut,
    UserError,
)
from bot.tokens import InvalidToken

STATUS_BY_ERROR: dict[type, int] = {
    InvalidInput: 422,
    NotFound: 404,
    PermissionDenied: 403,
    Conflict: 409,
    SoldOut: 409,
    LimitExceeded: 422,
    RateLimited: 429,
    NotConfigured: 501,
    InvalidToken: 401,
}
#: A `UserError` subclass not listed above (nor descended from one) is the client's fault.
FALLBACK_STATUS = 400

_HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "content_too_large",
    415: "unsupported_media_type",
}

INTERNAL_MESSAGE = "Something went wrong on our side. It has been logged; please try again."
TOO_LARGE_MESSAGE = "The request body is larger than this route takes."


class ErrorDetail(BaseModel):
    type: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """The body of every error response (documented in the OpenAPI schema)."""

    error: ErrorDetail


def snake_case(name: str) -> str:
    """`SoldOut` -> `sold_out`, `InvalidToken` -> `invalid_token`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def status_for(exc: UserError) -> int:
    for cls in type(exc).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return FALLBACK_STATUS


def error_response(
    status: int,
    type_: str,
    message: str,
    field: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "message": message, "field": field, **extra}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def too_large_response() -> JSONResponse:
    """413 for a body over its route's limit. The connection is closed rather than drained:
    the rest of a huge body is never read."""
    return error_response(
        413, "content_too_large", TOO_LARGE_MESSAGE, headers={"Connection": "close"}
    )


async def on_user_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UserError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    type_ = getattr(exc, "api_type", None) or snake_case(type(exc).__name__)
    return error_response(status_for(exc), type_, exc.message, exc.field, headers=headers)


_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})


def _field(loc: Sequence[int | str]) -> str | None:
    """`("body", "host", "user_id")` -> `host.user_id`; where-it-came-from is dropped."""
    parts = list(loc)
    if parts and parts[0] in _SOURCES:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or None


async def on_validation_error(request: Request, exc: Exception) -> Response:
    """Pydantic's errors in our envelope: the first one in front, all of them in `details`."""
    assert isinstance(exc, RequestValidationError)
    details = []
    for err in exc.errors():
        loc = tuple(err.get("loc") or ())
        field = None if err.get("type") == "json_invalid" else _field(loc)
        message = str(err.get("msg", "Invalid value."))
        details.append({"field": field, "message": f"{field}: {message}" if field else message})
    first = details[0] if details else {"field": None, "message": "The request is not valid."}
    return error_response(
        422, "invalid_input", str(first["message"]), first["field"], details=details
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> str:
    """Every method some route answers at this path (the router's own 405 names only the
    first route it matched: `POST` for `/api/v1/spaces`, which also answers GET)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]
    return ", ".join([*allowed, "OPTIONS"])


async def on_http_error(request: Request, exc: Exception) -> Response:
    """Framework errors (unknown route, wrong method, missing credentials) in the envelope.
    OPTIONS on a path that exists answers 204 with the methods it takes."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 413:
        return too_large_response()
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": allowed_methods(request)}
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=headers)
    if exc.status_code in {204, 304} or exc.status_code < 200:
        return Response(status_code=exc.status_code, headers=headers)
    return error_response(
        exc.status_code,
        _HTTP_TYPES.get(exc.status_code, "http_error"),
        str(exc.detail),
        headers=headers,
    )


def install(app: FastAPI) -> None:
    """Register the handlers. Unexpected exceptions are answered by `RequestContext`."""
    app.add_exception_handler(UserError, on_user_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
