"""The host's desk on the web: `/spaces/{id}/manage?token=…` (the link `/space manage`
sends), its refund button and its CSV export.

    GET  /spaces/{id}/manage?token=T        the desk (holders, totals, chart, refunds)
    POST /spaces/{id}/manage/refund         form: token, ticket -> 303 back to the desk
    POST /spaces/{id}/manage/recordings     form: token, delete (a number) -> 303 back
    GET  /spaces/{id}/manage.csv?token=T    every row as CSV

Every request re-checks the token and the rights behind it (`HostDeskService.admit`).
The form carries the link's token, which a cross-site page cannot know: that is its CSRF
guard. Refused links get a page saying why (401 / 403), never the JSON envelope.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.commands.times import format_when
from bot.core import Core
from bot.errors import NotFound, PermissionDenied, UserError
from bot.http.charts import sales_svg
from bot.http.dependencies import CoreDep
from bot.http.links import REFUND_FAILED, form_fields, refusal_page, unreadable
from bot.http.pages import STATUS_LABELS, render
from bot.http.params import whole_number
from bot.models import row_id
from bot.money import format_minor
from bot.permissions import Action, allowed, staff_role
from bot.services.hostdesk import DeskPass, DeskSheet
from bot.tokens import InvalidToken
from bot.wording import recording_line, replay_window, room_link

UTC_ZONE = ZoneInfo("UTC")

#: The refund form: the link's token and a ticket id, well under this.
DESK_BODY_BYTES = 4 * 1024

router = APIRouter(include_in_schema=False, max_body_size=DESK_BODY_BYTES)


def _refused(exc: UserError) -> HTMLResponse:
    return refusal_page("desk_refused.html", exc)


async def _admit(core: Core, space_id: str, token: str) -> DeskPass | HTMLResponse:
    """The desk pass, or the page that says why not."""
    number = row_id(space_id)
    if number is None:
        return _refused(NotFound(f"There is no Space #{space_id[:20]}."))
    if bad := unreadable(token):
        return _refused(bad)
    try:
        return await core.host_desk.admit(token, number)
    except (InvalidToken, PermissionDenied, NotFound) as exc:
        return _refused(exc)


async def _page(
    core: Core, desk: DeskPass, *, status: int = 200, done: str = "", error: str = ""
) -> HTMLResponse:
    """The desk; `done`: the ticket just refunded (or voided), said as it now stands."""
    space = desk.space
    tz = ZoneInfo(desk.identity.tz)
    sheet = await core.host_desk.sheet(space, tz)
    closed = next((r for r in sheet.rows if r.ref == done and not r.refundable), None)
    notice = f"Ticket {closed.ref} is {closed.status.value}." if closed else ""
    public = core.settings.resolved_public_url
    staff = core.tickets.staff_token(space, desk.identity, _staff_role(desk))

    def money(minor: int) -> str:
        return format_minor(minor, space.currency)

    return render(
        "desk.html",
        status_code=status,
        form_action="'self'",
        space=space,
        status_label=STATUS_LABELS[space.status],
        starts=format_when(space.starts_at, tz),
        sheet=sheet,
        rows=[
            (
                row,
                money(row.amount_minor),
                money(row.fee_minor),
                format_when(row.at, tz),
                format_when(row.expires_at, tz) if row.expires_at else "",
            )
            for row in sheet.rows
        ],
        totals=sheet.totals,
        money=money,
        chart=sales_svg(sheet.sales, label=f"Tickets of Space #{space.id} over time"),
        listeners_chart=sales_svg(
            sheet.listeners,
            label=f"Listeners in Space #{space.id}'s room over time",
            empty="Nobody has listened yet",
        ),
        token=desk.token,
        token_q=quote(desk.token, safe=""),
        may_refund=desk.may_refund,
        room_url=room_link(public, space.id or 0, staff),
        public_url=f"{public}/spaces/{space.id}",
        notice=notice,
        error=error,
        replays=[recording_line(p) for p in sheet.replays],
        replay_numbers=[p.number for p in sheet.replays],
        replay_window=replay_window(core.replays, space, tz),
        may_delete=allowed(Action.RECORD, desk.roles),
    )


def _staff_role(desk: DeskPass) -> str:
    role = staff_role(desk.roles)
    assert role is not None  # admit refuses anyone without one
    return role.value


@router.get("/spaces/{space_id}/manage", response_class=HTMLResponse)
async def desk_page(
    space_id: str, core: CoreDep, token: str = "", refunded: str = ""
) -> HTMLResponse:
    desk = await _admit(core, space_id, token)
    if isinstance(desk, HTMLResponse):
        return desk
    return await _page(core, desk, done=refunded[:40])


@router.post("/spaces/{space_id}/manage/refund", response_class=HTMLResponse)
async def refund(space_id: str, request: Request, core: CoreDep) -> Response:
    form = await form_fields(request)
    token = form.get("token", "")
    ticket_id = form.get("ticket", "").strip()
    desk = await _admit(core, space_id, token)
    if isinstance(desk, HTMLResponse):
        return desk
    if not ticket_id.isalnum() or len(ticket_id) > 40:
        return await _page(core, desk, status=400, error="Choose a ticket to refund.")
    try:
        await core.host_desk.refund(desk, ticket_id.lower(), ZoneInfo(desk.identity.tz))
    except PermissionDenied as exc:
        return await _page(core, desk, status=403, error=exc.message)
    except UserError as exc:
        return await _page(core, desk, status=409, error=exc.message)
    except Exception:  # the gateway failed: the ticket stays valid; say so, keep the page
        return await _page(core, desk, status=502, error=REFUND_FAILED)
    return RedirectResponse(
        f"/spaces/{space_id}/manage?token={quote(token, safe='')}&refunded={ticket_id.lower()}",
        status_code=303,
    )


@router.post("/spaces/{space_id}/manage/recordings", response_class=HTMLResponse)
async def delete_recording(space_id: str, request: Request, core: CoreDep) -> Response:
    form = await form_fields(request)
    token = form.get("token", "")
    number = form.get("delete", "").strip()
    desk = await _admit(core, space_id, token)
    if isinstance(desk, HTMLResponse):
        return desk
    part = whole_number(number, digits=6)
    if part is None:
        return await _page(core, desk, status=400, error="Choose a recording to delete.")
    try:
        await core.host_desk.delete_recording(desk, part)
    except PermissionDenied as exc:
        return await _page(core, desk, status=403, error=exc.message)
    except UserError as exc:
        return await _page(core, desk, status=404, error=exc.message)
    return RedirectResponse(
        f"/spaces/{space_id}/manage?token={quote(token, safe='')}", status_code=303
    )


CSV_COLUMNS = (
    "ticket_or_hold",
    "holder",
    "holder_id",
    "status",
    "quantity",
    "amount_minor",
    "platform_fee_minor",
    "currency",
    "at_utc",
    "hold_expires_utc",
)


def sheet_csv(sheet: DeskSheet) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in sheet.rows:
        name = row.holder.display_name or row.holder.user_id
        writer.writerow(
            [
                row.ref,
                "'" + name if name[:1] in "=+-@\t\r" else name,  # no formulas in a spreadsheet
                row.holder.user_id,
                row.status.value,
                row.quantity,
                row.amount_minor,
                row.fee_minor,
                sheet.space.currency,
                row.at.astimezone(UTC).isoformat(),
                row.expires_at.astimezone(UTC).isoformat() if row.expires_at else "",
            ]
        )
    return out.getvalue()


@router.get("/spaces/{space_id}/manage.csv")
async def desk_csv(space_id: str, core: CoreDep, token: str = "") -> Response:
    desk = await _admit(core, space_id, token)
    if isinstance(desk, HTMLResponse):
        return desk
    sheet = await core.host_desk.sheet(desk.space, UTC_ZONE)
    return Response(
        sheet_csv(sheet),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="space-{space_id}-tickets.csv"',
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )
