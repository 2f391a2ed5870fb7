"""What the pages opened by a link from chat share (the ticket page, the host's desk,
sign-in): reading the link's token and form, and the page that refuses a link.

A refusal's status comes from `bot.http.errors.status_for`, the JSON envelope's one rule
(InvalidToken 401, PermissionDenied 403, NotFound 404, Conflict 409, ...); these pages
answer HTML, never the envelope.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse

from bot.errors import UserError
from bot.http.errors import status_for
from bot.http.pages import render
from bot.tokens import InvalidToken

#: Longer than any token we sign: not ours, refused before any check.
MAX_TOKEN = 1024
#: A refund button's answer (502) when the payment service failed: the ticket stays valid.
REFUND_FAILED = (
    "The payment service could not refund this ticket just now; it stays valid. Try again "
    "in a minute."
)


def unreadable(token: str) -> InvalidToken | None:
    """Why `token` cannot be a link's token (empty, or too long), or None."""
    if not token or len(token) > MAX_TOKEN:
        return InvalidToken("This page needs the link the bot sent you.")
    return None


def refusal_page(template: str, exc: UserError, **context: Any) -> HTMLResponse:
    """`template` saying why (`message`: the error's, unless given), at the error's status."""
    context.setdefault("message", exc.message)
    return render(template, status_code=status_for(exc), **context)


async def form_fields(request: Request, max_fields: int = 8) -> dict[str, str]:
    """A posted form, each field's first value; {} when it has more fields than ours."""
    body = await request.body()  # whole first: the router's size limit counts it
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=max_fields)
    except ValueError:
        return {}
    return {key: values[0] for key, values in fields.items()}
