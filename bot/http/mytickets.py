"""Manage my ticket, on the web: `/tickets/{id}?token=…` (the link in the ticket DM and
in `/ticket show`), its refund button and its replays.

    GET  /tickets/{id}?token=T                the ticket, its Space, what the holder may do
    POST /tickets/{id}/refund                 form: token -> 303 back to the page
    GET  /tickets/{id}/replays/{n}?token=T    one recording, audio/ogg (Range requests work)

Every request re-checks the link (`MyTicketService.admit`); its token is not the room's.
Opening the page signs the holder in on the web (`bot.http.session`): the public pages then
let them buy more, or redeem an invite, as themselves.
The form carries the link's token, which a cross-site page cannot know: its CSRF guard.
Refused links get a page saying why (401 / 403 / 409), never the JSON envelope.
"""

from __future__ import annotations

from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from bot.commands.times import format_when
from bot.core import Core
from bot.errors import Conflict, NotFound, PermissionDenied, UserError
from bot.http.dependencies import CoreDep
from bot.http.links import REFUND_FAILED, form_fields, refusal_page, unreadable
from bot.http.pages import STATUS_LABELS, calendar_links, iso_utc, render
from bot.http.params import PartNumber
from bot.http.session import sign_in
from bot.models import Visibility
from bot.money import format_minor
from bot.services.mytickets import TicketPass
from bot.tokens import InvalidToken
from bot.wording import room_link

TICKET_BODY_BYTES = 4 * 1024

router = APIRouter(include_in_schema=False, max_body_size=TICKET_BODY_BYTES)


def _refused(exc: UserError) -> HTMLResponse:
    return refusal_page("ticket_refused.html", exc)


def _ticket_id(raw: str) -> str | None:
    return raw.lower() if raw.isalnum() and len(raw) <= 40 else None


async def _admit(core: Core, ticket_id: str, token: str) -> TicketPass | HTMLResponse:
    """The checked link, or the page that says why not."""
    found = _ticket_id(ticket_id)
    if found is None:
        return _refused(NotFound("There is no such ticket."))
    if bad := unreadable(token):
        return _refused(bad)
    try:
        return await core.my_tickets.admit(token, found)
    except (InvalidToken, PermissionDenied) as exc:
        return _refused(exc)


async def _page(
    core: Core, held: TicketPass, *, status: int = 200, done: str = "", error: str = ""
) -> HTMLResponse:
    view = await core.my_tickets.view(held)
    ticket, space = view.ticket, view.space
    tz = ZoneInfo(held.holder.tz)
    public = core.settings.resolved_public_url.rstrip("/")
    page_url = f"{public}/spaces/{space.id}"
    ahead = space.status.value in ("scheduled", "live")
    token_q = quote(held.token, safe="")
    return render(
        "ticket.html",
        status_code=status,
        form_action="'self'",
        media=bool(view.replays),
        ticket=ticket,
        space=space,
        status_label=STATUS_LABELS[space.status],
        price="free"
        if not ticket.price_minor
        else format_minor(ticket.price_minor, ticket.currency),
        starts_iso=iso_utc(space.starts_at),
        starts_utc=format_when(space.starts_at, ZoneInfo("UTC")),
        calendar=calendar_links(space, page_url) if ahead else {},
        room_url=room_link(public, space.id or 0, view.room_token) if view.room_token else "",
        refundable=view.refundable,
        deadline=format_when(view.refund_deadline, tz),
        deadline_iso=iso_utc(view.refund_deadline),
        replays=[
            (p, f"/tickets/{ticket.id}/replays/{p.number}?token={token_q}") for p in view.replays
        ],
        replays_until=format_when(view.replays_until, tz) if view.replays_until else "",
        replays_until_iso=iso_utc(view.replays_until) if view.replays_until else "",
        public_url=page_url,
        listed=space.visibility != Visibility.INVITE,  # invite-only: no public page, no .ics
        token=held.token,
        notice=done,
        error=error,
    )


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
async def ticket_page(
    ticket_id: str, core: CoreDep, token: str = "", done: str = ""
) -> HTMLResponse:
    held = await _admit(core, ticket_id, token)
    if isinstance(held, HTMLResponse):
        return held
    notice = {
        "refund": f"Ticket {held.ticket.id} is {held.ticket.status.value}.",
        "bought": f"You're in! This is your ticket {held.ticket.id}.",
    }.get(done, "")
    page = await _page(core, held, done=notice)
    sign_in(core, page, core.web.session_for(held.holder))  # the holder may buy on the web
    return page


@router.post("/tickets/{ticket_id}/refund", response_class=HTMLResponse)
async def refund(ticket_id: str, request: Request, core: CoreDep) -> Response:
    token = (await form_fields(request, max_fields=4)).get("token", "")
    held = await _admit(core, ticket_id, token)
    if isinstance(held, HTMLResponse):
        return held
    try:
        await core.my_tickets.refund(held)
    except UserError as exc:
        return await _page(core, held, status=409, error=exc.message)
    except Exception:  # the gateway failed: the ticket stays valid; say so, keep the page
        return await _page(core, held, status=502, error=REFUND_FAILED)
    return RedirectResponse(
        f"/tickets/{held.ticket.id}?token={quote(token, safe='')}&done=refund", status_code=303
    )


@router.get("/tickets/{ticket_id}/replays/{number}", response_model=None)
async def replay(ticket_id: str, number: PartNumber, core: CoreDep, token: str = "") -> Response:
    held = await _admit(core, ticket_id, token)
    if isinstance(held, HTMLResponse):
        return held
    try:
        part = await core.my_tickets.replay(held, number)
    except (Conflict, NotFound) as exc:
        return _refused(exc)
    return FileResponse(
        part.path,
        media_type="audio/ogg",
        filename=f"space-{held.space.id}-part-{number}.ogg",
        headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"},
    )
