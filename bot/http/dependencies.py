"""What route handlers ask FastAPI for: the core, and the operator's bearer token."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.core import Core


def get_core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


CoreDep = Annotated[Core, Depends(get_core)]

_bearer = HTTPBearer(auto_error=False, description="The operator API token.")


class BearerAuth:
    """Admits requests carrying `Authorization: Bearer <token>` with the operator token.

    Compared in constant time; a missing or wrong token is a 401 with
    `WWW-Authenticate: Bearer` (RFC 6750)."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def __call__(
        self, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> None:
        if credentials is None:
            raise HTTPException(
                401,
                "This API needs an `Authorization: Bearer <token>` header.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(credentials.credentials.encode(), self._token):
            raise HTTPException(
                401,
                "The API token is not valid.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
