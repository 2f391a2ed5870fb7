"""Buying on the web, for a buyer signed in through a link the bot sent (`bot.http.session`).

    GET  /signin?token=T&next=/path     sign in (sets the session cookie) -> 303 to `next`
    POST /spaces/{id}/buy               form: csrf, quantity, code -> 303 to /pay (paid),
                                        or to the new ticket's page (free)
    GET  /spaces/{id}/pay               the buyer's held seats: on to Checkout
    GET  /invites/{token}               an invite link: its Space; Redeem when signed in
    POST /invites/{token}               form: csrf, code -> as /buy

A purchase is the chat's claim (`TicketService.reserve`, `redeem`): the same seat rule, hold,
per-buyer limit and promo codes. A refusal re-renders the page with why, never the JSON
envelope. The way to Checkout is a page that refreshes to it, not a redirect: a redirect
that ends a form post is checked against the page's `form-action 'self'`, and Checkout is
on another origin.
"""

from __future__ import annotations

from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.commands.times import format_when
from bot.core import Core
from bot.errors import NotFound, UserError
from bot.http.dependencies import CoreDep
from bot.http.errors import status_for
from bot.http.links import MAX_TOKEN, form_fields, refusal_page, unreadable
from bot.http.pages import (
    buyer_name,
    iso_utc,
    public_space,
    render,
    space_view,
)
from bot.http.params import whole_number
from bot.http.session import csrf_of, csrf_ok, current_buyer, sign_in
from bot.models import InviteLink, Space, SpaceStatus, row_id
from bot.services.refusals import BuyerLimitReached
from bot.services.tickets import Reservation
from bot.services.websignin import WebBuyer
from bot.tokens import InvalidToken
from bot.wording import price

BUY_BODY_BYTES = 4 * 1024

router = APIRouter(include_in_schema=False, max_body_size=BUY_BODY_BYTES)


def _local(path: str) -> str:
    """`path` when it is a path on this site, else "/" (no open redirect)."""
    if path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/"


@router.get("/signin")
async def signin(core: CoreDep, token: str = "", next: str = "/") -> Response:
    """A sign-in link from chat: the session cookie, then on to `next`."""
    if bad := unreadable(token):
        return _refused_signin(bad)
    try:
        buyer = await core.web.sign_in(token)
    except InvalidToken as exc:
        return _refused_signin(exc)
    response = RedirectResponse(_local(next), status_code=303)
    sign_in(core, response, buyer.session)
    return response


def _refused_signin(exc: UserError) -> HTMLResponse:
    return refusal_page(
        "invite_refused.html",
        exc,
        heading="This sign-in link does not open",
        message=f"{exc.message} Get a fresh one with /ticket show in your community's chat.",
    )


async def _after_claim(core: Core, reservation: Reservation) -> Response:
    """Where a web claim leads: the new ticket's page (free), or on to pay."""
    if reservation.tickets:
        ticket = reservation.tickets[0]
        token = quote(core.my_tickets.link_token(ticket), safe="")
        return RedirectResponse(f"/tickets/{ticket.id}?token={token}&done=bought", 303)
    return RedirectResponse(f"/spaces/{reservation.space.id}/pay", status_code=303)


@router.post("/spaces/{space_id}/buy", response_class=HTMLResponse)
async def buy(space_id: str, request: Request, core: CoreDep) -> Response:
    form = await form_fields(request)
    try:
        space = await public_space(space_id, core)
    except NotFound as exc:
        return render("not_found.html", status_code=404, message=exc.message)
    buyer = await current_buyer(core, request)
    if buyer is None or not csrf_ok(buyer, form.get("csrf", "")):
        return await space_view(
            core,
            space,
            buyer,
            status=401,
            error="Your sign-in ran out. Open a fresh link from /ticket show in chat, then "
            "buy again.",
        )
    quantity = whole_number(form.get("quantity", "1").strip(), digits=3)
    if quantity is None:
        return await space_view(
            core, space, buyer, status=422, error="Tickets: a whole number, please."
        )
    code = form.get("code", "").strip() or None
    try:
        reservation = await core.tickets.reserve(buyer.actor, space.id or 0, quantity, code=code)
    except BuyerLimitReached as exc:
        if exc.pay_url:  # they hold seats already: on to pay for those
            return RedirectResponse(f"/spaces/{space.id}/pay", status_code=303)
        return await space_view(core, space, buyer, status=status_for(exc), error=exc.message)
    except UserError as exc:
        fresh = await core.spaces.get(space.id or 0)
        return await space_view(core, fresh, buyer, status=status_for(exc), error=exc.message)
    return await _after_claim(core, reservation)


@router.get("/spaces/{space_id}/pay", response_class=HTMLResponse)
async def pay(space_id: str, request: Request, core: CoreDep) -> Response:
    """The signed-in buyer's seats held in the Space, and on to their open Checkout. No
    held seats (paid, lapsed, or nobody signed in): back to the Space's page."""
    if row_id(space_id) is None:
        return render("not_found.html", status_code=404, message="There is no such Space.")
    back = RedirectResponse(f"/spaces/{space_id}", status_code=303)
    buyer = await current_buyer(core, request)
    if buyer is None or buyer.identity.id is None:
        return back
    holds = await core.tickets.pending_holds(buyer.identity.id, int(space_id))
    for hold in holds:
        url = await core.payments.pay_link(hold)
        if url is None:
            continue
        space = await core.spaces.get(hold.space_id)
        tz = ZoneInfo(buyer.identity.tz)
        return render(
            "pay.html",
            space=space,
            quantity=hold.quantity,
            pay_url=url,
            until=format_when(hold.expires_at, tz),
            until_iso=iso_utc(hold.expires_at),
            test_mode=core.payments.test_mode,
        )
    return back


# --- invites ------------------------------------------------------------------------------


async def _invite(core: Core, token: str) -> tuple[InviteLink, Space] | HTMLResponse:
    """The invite a link names and its Space, or the page saying why it does not open."""

    def refused(status: int, heading: str, message: str) -> HTMLResponse:
        return render("invite_refused.html", status_code=status, heading=heading, message=message)

    if not token or len(token) > MAX_TOKEN:
        return refused(401, "This invite link is not valid", "The link is incomplete.")
    try:
        claims = core.invites.read(token, core.clock.now())
    except InvalidToken as exc:
        if "expired" in exc.message:
            return refused(410, "This invite has expired", "Its Space is over.")
        return refused(
            401,
            "This invite link is not valid",
            "It was not made by this Stagepass, or it was changed on the way. Copy the "
            "whole link the host sent.",
        )
    link = await core.invites.get(claims.ticket_id)
    if link is None or link.space_id != claims.space_id:
        return refused(410, "This invite was withdrawn", "The host revoked this invite link.")
    space = await core.spaces.get(link.space_id)
    if link.revoked_at is not None:
        return refused(
            410,
            "This invite was withdrawn by the host",
            f"The host of {space.title} withdrew this link on "
            f"{format_when(link.revoked_at, ZoneInfo('UTC'))}: it gets no more tickets. "
            "Tickets already got through it stay. Ask the host for a new one.",
        )
    if space.status in (SpaceStatus.ENDED, SpaceStatus.CANCELLED):
        return refused(410, "This invite has expired", f"{space.title} is {space.status.value}.")
    if link.uses >= link.max_uses:
        return refused(
            410,
            "This invite is used up",
            f"All {link.max_uses} ticket(s) of this invite to {space.title} are taken.",
        )
    return link, space


async def _invite_page(
    core: Core,
    token: str,
    found: tuple[InviteLink, Space],
    buyer: WebBuyer | None,
    *,
    status: int = 200,
    error: str = "",
) -> HTMLResponse:
    link, space = found
    host = await core.identities.get(space.host_id)
    return render(
        "invite.html",
        status_code=status,
        form_action="'self'" if buyer else "'none'",
        space=space,
        host_name=host.display_name or host.user_id,
        starts_iso=iso_utc(space.starts_at),
        starts_utc=format_when(space.starts_at, ZoneInfo("UTC")),
        price=price(space),
        uses_left=link.max_uses - link.uses,
        buyer=buyer_name(buyer) if buyer else "",
        csrf=csrf_of(buyer.session) if buyer else "",
        action=f"/invites/{quote(token, safe='')}",
        token=token,
        error=error,
    )


@router.get("/invites/{token}", response_class=HTMLResponse)
async def invite_page(token: str, request: Request, core: CoreDep) -> HTMLResponse:
    found = await _invite(core, token)
    if isinstance(found, HTMLResponse):
        return found
    return await _invite_page(core, token, found, await current_buyer(core, request))


@router.post("/invites/{token}", response_class=HTMLResponse)
async def redeem(token: str, request: Request, core: CoreDep) -> Response:
    form = await form_fields(request)
    found = await _invite(core, token)
    if isinstance(found, HTMLResponse):
        return found
    buyer = await current_buyer(core, request)
    if buyer is None or not csrf_ok(buyer, form.get("csrf", "")):
        return await _invite_page(
            core,
            token,
            found,
            buyer,
            status=401,
            error="Your sign-in ran out. Open a fresh link from /ticket show in chat, then "
            "come back to this invite.",
        )
    code = form.get("code", "").strip() or None
    try:
        reservation = await core.tickets.redeem(buyer.actor, token, code=code)
    except BuyerLimitReached as exc:
        if exc.pay_url:
            return RedirectResponse(f"/spaces/{found[1].id}/pay", status_code=303)
        return await _invite_page(
            core, token, found, buyer, status=status_for(exc), error=exc.message
        )
    except UserError as exc:
        return await _invite_page(
            core, token, found, buyer, status=status_for(exc), error=exc.message
        )
    return await _after_claim(core, reservation)
