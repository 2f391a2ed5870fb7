"""The web session cookie of a signed-in buyer (`bot.services.websignin`).

    stagepass_session = <session token>; HttpOnly; SameSite=Lax; Path=/; Max-Age=7200
                        (and Secure when the public URL is https)

HttpOnly keeps it from scripts; SameSite=Lax keeps it off cross-site form posts. Forms that
act for the buyer also carry `csrf_of(session)`, which a page elsewhere cannot compute
without the cookie.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request, Response

from bot.core import Core
from bot.services.websignin import SESSION_TTL, WebBuyer
from bot.tokens import InvalidToken

COOKIE = "stagepass_session"
_MAX_TOKEN = 1024


async def current_buyer(core: Core, request: Request) -> WebBuyer | None:
    """The signed-in buyer of this request, or None (no cookie, or one that is no good)."""
    session = request.cookies.get(COOKIE, "")
    if not session or len(session) > _MAX_TOKEN:
        return None
    try:
        return await core.web.buyer(session)
    except InvalidToken:
        return None


def sign_in(core: Core, response: Response, session: str) -> None:
    """Set the session cookie on `response`."""
    response.set_cookie(
        COOKIE,
        session,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=core.settings.resolved_public_url.startswith("https://"),
    )


def csrf_of(session: str) -> str:
    """The value a buyer's forms carry: derived from the cookie they cannot be read from."""
    return hashlib.sha256(b"stagepass-csrf:" + session.encode()).hexdigest()[:32]


def csrf_ok(buyer: WebBuyer, sent: str) -> bool:
    return hmac.compare_digest(csrf_of(buyer.session).encode(), sent.encode())
