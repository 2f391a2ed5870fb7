"""Public HTML pages: a Space's page, shared in chat and on the web.

Rendered with Jinja2 (autoescape on; templates ship as package data). The page is
self-contained — inline CSS and a few lines of JS, no external assets — and locked
down by a per-response CSP nonce. Start times are sent as UTC (the no-JS text) and
shown in the viewer's zone by the browser.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from bot.commands.times import format_when
from bot.errors import NotFound
from bot.http.dependencies import CoreDep
from bot.models import SpaceStatus
from bot.views import price, seats_left

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("bot.http", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

STATUS_LABELS = {
    SpaceStatus.DRAFT: "Draft",
    SpaceStatus.SCHEDULED: "Scheduled",
    SpaceStatus.LIVE: "Live now",
    SpaceStatus.ENDED: "Ended",
    SpaceStatus.CANCELLED: "Cancelled",
}
SPACE_ID = re.compile(r"^[0-9]{1,15}$")

router = APIRouter(include_in_schema=False)


def render(
    template: str, *, status_code: int = 200, form_action: str = "'none'", **context: Any
) -> HTMLResponse:
    """A page with a CSP of its own nonce; `form_action` "'self'" for a page with forms."""
    nonce = secrets.token_urlsafe(16)
    html = _env.get_template(template).render(nonce=nonce, **context)
    return HTMLResponse(html, status_code=status_code, headers={
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            f"base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    })


@router.get("/spaces/{space_id}", response_class=HTMLResponse)
async def space_page(space_id: str, core: CoreDep) -> HTMLResponse:
    """A Space's public page; an unknown id gets the 404 page, not the JSON envelope."""
    try:
        if not SPACE_ID.match(space_id):
            raise NotFound(f"There is no Space #{space_id}.")
        space = await core.spaces.get(int(space_id))
    except NotFound as exc:
        return render("not_found.html", status_code=404, message=exc.message)
    host = await core.identities.get(space.host_id)
    return render(
        "space.html",
        space=space,
        host_name=host.display_name or host.user_id,
        status_label=STATUS_LABELS[space.status],
        starts_iso=space.starts_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        starts_utc=format_when(space.starts_at, ZoneInfo("UTC")),
        price=price(space),
        tickets_left=seats_left(space),
        on_sale=space.status.is_open_for_sale,
    )
