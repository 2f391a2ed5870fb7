"""Public HTML pages: the front page (upcoming Spaces), a Space's page, shared in chat
and on the web, and its calendar entry (`.ics`, with Google and Outlook links).

Rendered with Jinja2 (autoescape on; templates ship as package data). The page is
self-contained — inline CSS and a few lines of JS, no external assets — and locked
down by a per-response CSP nonce. Start times are sent as UTC (the no-JS text) and
shown in the viewer's zone by the browser.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import icalendar
import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from bot.commands.times import format_when
from bot.core import Core
from bot.errors import NotFound
from bot.http.dependencies import CoreDep
from bot.http.session import csrf_of, current_buyer
from bot.models import Space, SpaceStatus, Visibility, row_id
from bot.services.websignin import WebBuyer
from bot.wording import price, seats_on_sale

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

router = APIRouter(include_in_schema=False)


def render(
    template: str,
    *,
    status_code: int = 200,
    form_action: str = "'none'",
    media: bool = False,
    **context: Any,
) -> HTMLResponse:
    """A page with a CSP of its own nonce; `form_action` "'self'" for a page with forms;
    `media`: it plays audio from this origin (replays). Its icon is inline (`img-src
    data:`), so no browser asks for a /favicon.ico the policy would refuse."""
    nonce = secrets.token_urlsafe(16)
    media_src = " media-src 'self';" if media else ""
    html = _env.get_template(template).render(nonce=nonce, **context)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}';"
                f"{media_src} img-src data:; "
                f"base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


def iso_utc(moment: datetime) -> str:
    """A moment as the pages' `<time datetime>` takes it (UTC, seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ends_at(space: Space) -> datetime:
    return space.starts_at + timedelta(minutes=space.duration_minutes)


def _when(space: Space) -> tuple[str, datetime]:
    """What the page says of the Space's time: a future start, or when it did start/end."""
    if space.status == SpaceStatus.LIVE and space.started_at:
        return "Started", space.started_at
    if space.status == SpaceStatus.ENDED and space.ended_at:
        return "Ended", space.ended_at
    return "Starts", space.starts_at


def calendar_links(space: Space, page_url: str) -> dict[str, str]:
    """Add-to-calendar links for a Space that is still ahead: Google and Outlook."""
    stamp = "%Y%m%dT%H%M%SZ"
    start, end = space.starts_at.astimezone(UTC), _ends_at(space).astimezone(UTC)
    details = f"{space.description}\n\n{page_url}".strip()
    google = urlencode(
        {
            "action": "TEMPLATE",
            "text": space.title,
            "details": details,
            "location": page_url,
            "dates": f"{start.strftime(stamp)}/{end.strftime(stamp)}",
        }
    )
    outlook = urlencode(
        {
            "path": "/calendar/action/compose",
            "rru": "addevent",
            "subject": space.title,
            "body": details,
            "location": page_url,
            "startdt": iso_utc(start),
            "enddt": iso_utc(end),
        }
    )
    return {
        "Google Calendar": f"https://calendar.google.com/calendar/render?{google}",
        "Outlook": f"https://outlook.live.com/calendar/0/deeplink/compose?{outlook}",
    }


def calendar_file(space: Space, page_url: str, host: str, now: datetime) -> bytes:
    """The Space as one iCalendar event (RFC 5545): a cancelled Space is CANCELLED, so a
    calendar that subscribed to it updates instead of keeping a stale entry."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Stagepass//Spaces//EN")
    calendar.add("version", "2.0")
    event = icalendar.Event()
    event.add("uid", f"space-{space.id}@{host}")
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", space.starts_at.astimezone(UTC))
    event.add("dtend", _ends_at(space).astimezone(UTC))
    event.add("summary", space.title)
    event.add("description", f"{space.description}\n\n{page_url}".strip())
    event.add("url", page_url)
    event.add("sequence", int(space.updated_at.timestamp()))
    if space.status == SpaceStatus.CANCELLED:
        event.add("status", "CANCELLED")
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical


async def public_space(space_id: str, core: CoreDep) -> Space:
    number = row_id(space_id)
    if number is None:
        raise NotFound(f"There is no Space #{space_id[:20]}.")
    space = await core.spaces.get(number)
    if space.visibility == Visibility.INVITE:  # invite-only: no public page, no calendar
        raise NotFound(f"There is no Space #{space_id}.")
    return space


@router.get("/", response_class=HTMLResponse)
async def front_page(core: CoreDep) -> HTMLResponse:
    """The Spaces that are live or ahead, soonest first: a friendly front door."""
    spaces = await core.spaces.list_spaces(upcoming_only=True, limit=50, listed_only=True)
    return render("index.html", rows=[_row(space) for space in spaces])


def _row(space: Space) -> dict[str, Any]:
    """One Space as the front page lists it."""
    label, when = _when(space)
    return {
        "space": space,
        "status_label": STATUS_LABELS[space.status],
        "when_label": label,
        "when_iso": iso_utc(when),
        "when_utc": format_when(when, ZoneInfo("UTC")),
        "price": price(space),
        "tickets_left": seats_on_sale(space),
    }


@router.get("/spaces/{space_id}/calendar.ics")
async def space_calendar(space_id: str, core: CoreDep) -> Response:
    """The Space for a calendar app (text/calendar), from the page's "Add to calendar"."""
    try:
        space = await public_space(space_id, core)
    except NotFound as exc:
        return render("not_found.html", status_code=404, message=exc.message)
    base = core.settings.resolved_public_url.rstrip("/")
    host = base.split("://", 1)[-1].split("/", 1)[0]
    body = calendar_file(space, f"{base}/spaces/{space.id}", host, core.clock.now())
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="space-{space.id}.ics"',
            "Cache-Control": "no-cache",
        },
    )


@router.get("/spaces/{space_id}", response_class=HTMLResponse)
async def space_page(space_id: str, request: Request, core: CoreDep) -> HTMLResponse:
    """A Space's public page; an unknown id gets the 404 page, not the JSON envelope. A
    buyer signed in on the web (`bot.http.session`) is offered Buy here."""
    try:
        space = await public_space(space_id, core)
    except NotFound as exc:
        return render("not_found.html", status_code=404, message=exc.message)
    return await space_view(core, space, await current_buyer(core, request))


async def space_view(
    core: Core, space: Space, buyer: WebBuyer | None, *, status: int = 200, error: str = ""
) -> HTMLResponse:
    """The public page of `space`, for `buyer` (signed in on the web, or None); `error`:
    why their purchase was refused."""
    host = await core.identities.get(space.host_id)
    when_label, when = _when(space)
    ahead = space.status in (SpaceStatus.SCHEDULED, SpaceStatus.LIVE)
    page_url = f"{core.settings.resolved_public_url.rstrip('/')}/spaces/{space.id}"
    return render(
        "space.html",
        status_code=status,
        form_action="'self'" if buyer else "'none'",
        space=space,
        host_name=host.display_name or host.user_id,
        status_label=STATUS_LABELS[space.status],
        when_label=when_label,
        starts_iso=iso_utc(when),
        starts_utc=format_when(when, ZoneInfo("UTC")),
        price=price(space),
        tickets_left=seats_on_sale(space),
        on_sale=space.status.is_open_for_sale,
        announced=await core.announcements.of(space.id or 0),
        calendar=calendar_links(space, page_url) if ahead else {},
        buyer=buyer_name(buyer) if buyer else "",
        csrf=csrf_of(buyer.session) if buyer else "",
        max_quantity=core.settings.max_per_buyer,
        error=error,
    )


def buyer_name(buyer: WebBuyer) -> str:
    """Who the page says is signed in: their name and platform."""
    identity = buyer.identity
    return f"{identity.display_name or identity.user_id} ({identity.platform.value.title()})"
