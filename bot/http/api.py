"""The operator JSON API under `/api/v1`: Spaces, holds, tickets and token checks.

The API speaks for the operator, not for a chat member: it names the host or buyer in
the body and the core treats them as that person (host eligibility still applies). Core
errors become the error envelope in `bot.http.errors`; nothing here catches them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from bot.actors import community_id
from bot.core import Core
from bot.errors import UserError
from bot.http.dependencies import CoreDep
from bot.http.errors import ErrorBody
from bot.http.params import SpaceId
from bot.http.schemas import (
    CancelIn,
    CancelOut,
    HoldCreate,
    HoldOut,
    PersonOut,
    PublicKeyOut,
    SpaceCreate,
    SpaceList,
    SpaceOut,
    TicketList,
    TicketOut,
    VerifyIn,
    VerifyOut,
)
from bot.models import Platform, Space, Ticket, TicketStatus
from bot.services import refusals
from bot.services.spaces import SpaceDraft
from bot.wording import room_link

PREFIX = "/api/v1"
MAX_BODY_BYTES = 64 * 1024

TAGS: list[dict[str, Any]] = [
    {"name": "spaces", "description": "Create, list, read and cancel Spaces."},
    {"name": "tickets", "description": "Holds, a buyer's tickets, and ticket-token checks."},
    {"name": "keys", "description": "Public keys for verifying ticket tokens offline."},
]

#: The core names fields as people type them in chat; the API names them as in its body.
_API_FIELDS = {
    "starts": "starts_at",
    "price": "price_minor",
    "tickets": "capacity",
    "duration": "duration_minutes",
    "limit": "per_buyer_limit",
}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds until a claim is accepted again.",
        "schema": {"type": "integer"},
    }
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"model": ErrorBody, **({"headers": _RETRY_AFTER} if code == 429 else {})}
        for code in sorted({401, 422, *codes})
    }


#: What every route that takes a body may also answer: a core refusal with no more
#: specific status (400) and a body over the router's limit (413).
_BODY = (400, 413)


@contextmanager
def _api_field_names() -> Iterator[None]:
    """Rename the `field` of a core error raised inside to the API's field name."""
    try:
        yield
    except UserError as exc:
        exc.field = _API_FIELDS.get(exc.field or "", exc.field)
        raise


# `create_app` includes this behind `BearerAuth`: the token is not known at import time.
router = APIRouter(prefix=PREFIX, max_body_size=MAX_BODY_BYTES)


# --- helpers ------------------------------------------------------------------------------


async def _space_outs(core: Core, spaces: list[Space]) -> list[SpaceOut]:
    hosts = await core.identities.keys_for(sorted({s.host_id for s in spaces}))
    base = core.settings.resolved_public_url
    return [
        SpaceOut.of(
            space,
            hosts[space.host_id],
            ends_at=core.spaces.ends_at(space),
            page_url=f"{base}/spaces/{space.id}",
        )
        for space in spaces
    ]


async def _space_out(core: Core, space: Space) -> SpaceOut:
    [out] = await _space_outs(core, [space])
    return out


def _ticket_out(
    core: Core, ticket: Ticket, space: Space, token: str | None = None, *, removed: bool = False
) -> TicketOut:
    if ticket.status != TicketStatus.VALID or removed:
        return TicketOut.of(ticket, token=None, join_url=None, removed=removed)
    token = token or core.tickets.token_for(ticket, space)
    return TicketOut.of(
        ticket,
        token=token,
        join_url=room_link(core.settings.resolved_public_url, ticket.space_id, token),
    )


# --- Spaces -------------------------------------------------------------------------------


@router.post(
    "/spaces",
    tags=["spaces"],
    status_code=status.HTTP_201_CREATED,
    summary="Create a Space",
    responses=_errors(403, 409, 501, *_BODY),
)
async def create_space(body: SpaceCreate, core: CoreDep) -> SpaceOut:
    """Announce a Space for the host named in the body. The host must be allowed to host
    by the deployment's host rules; a paid Space needs billing to be configured."""
    draft = SpaceDraft(
        title=body.title,
        starts_at=body.starts_at,
        capacity=body.capacity,
        price_minor=body.price_minor,
        currency=body.currency,
        duration_minutes=body.duration_minutes,
        description=body.description,
        per_buyer_limit=body.per_buyer_limit,
        manual_start=body.manual_start,
    )
    with _api_field_names():
        space = await core.spaces.create(body.host.actor(), draft)
    return await _space_out(core, space)


@router.get("/spaces", tags=["spaces"], summary="List Spaces", responses=_errors())
async def list_spaces(
    core: CoreDep,
    community: Annotated[
        str | None,
        Query(description="Only this community, as its `community_id`, e.g. `discord:1234`."),
    ] = None,
    upcoming_only: Annotated[bool, Query(description="Only scheduled and live Spaces.")] = True,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SpaceList:
    """Spaces in start order."""
    spaces = await core.spaces.list_spaces(community, upcoming_only=upcoming_only, limit=limit)
    return SpaceList(spaces=await _space_outs(core, spaces))


@router.get("/spaces/{space_id}", tags=["spaces"], summary="Get a Space", responses=_errors(404))
async def get_space(space_id: SpaceId, core: CoreDep) -> SpaceOut:
    return await _space_out(core, await core.spaces.get(space_id))


@router.post(
    "/spaces/{space_id}/cancel",
    tags=["spaces"],
    summary="Cancel a Space and refund its tickets",
    responses=_errors(403, 404, 409, *_BODY),
)
async def cancel_space(space_id: SpaceId, body: CancelIn, core: CoreDep) -> CancelOut:
    """Cancel as the operator: active holds are released and every valid ticket is refunded
    (paid) or revoked (free), exactly once each. `tickets_failed` refunds stay valid and
    are finished by billing's reconciliation."""
    closed, failed = await core.tickets.cancel_space(None, space_id, body.reason.strip())
    space = await core.spaces.get(space_id)
    return CancelOut(
        space=await _space_out(core, space), tickets_closed=closed, tickets_failed=failed
    )


# --- holds and tickets --------------------------------------------------------------------


@router.post(
    "/spaces/{space_id}/holds",
    tags=["tickets"],
    status_code=status.HTTP_201_CREATED,
    summary="Reserve tickets for a buyer",
    responses=_errors(403, 404, 409, 429, 501, *_BODY),
)
async def create_hold(space_id: SpaceId, body: HoldCreate, core: CoreDep) -> HoldOut:
    """Reserve `quantity` seats for the buyer, who must be in the Space's community. A free
    Space issues the tickets at once (with their tokens); a paid one returns the checkout
    link, and the tickets follow when the payment webhook confirms the hold. Claims are
    rate-limited per buyer and per community (429 with `Retry-After` in seconds), and a
    buyer may have only so many unpaid holds open across Spaces (422 `limit_exceeded`).
    `invite`: an invite's token, redeemed as in `/ticket redeem`."""
    if body.invite is not None:
        reservation = await core.tickets.redeem(
            body.buyer.actor(), body.invite, body.quantity, space_id=space_id
        )
    else:
        reservation = await core.tickets.reserve(body.buyer.actor(), space_id, body.quantity)
    space = reservation.space
    tickets = [
        _ticket_out(core, t, space, token)
        for t, token in zip(reservation.tickets, reservation.tokens, strict=True)
    ]
    checkout = reservation.checkout.url if reservation.checkout else None
    return HoldOut.of(reservation.hold, tickets, checkout)


@router.get(
    "/buyers/{platform}/{community}/{user_id}/tickets",
    tags=["tickets"],
    summary="List a buyer's tickets",
    responses=_errors(),
)
async def buyer_tickets(
    platform: Platform,
    community: str,
    user_id: str,
    core: CoreDep,
    include_closed: Annotated[bool, Query(description="Also refunded and revoked ones.")] = False,
) -> TicketList:
    """A buyer's tickets, oldest first, with tokens and join links for the valid ones.
    Someone who never appeared in Stagepass simply has none."""
    buyer = await core.identities.by_key(f"{community_id(platform, community)}:{user_id}")
    if buyer is None or buyer.id is None:
        return TicketList(tickets=[])
    tickets = await core.tickets.tickets_of(buyer.id, valid_only=not include_closed)
    spaces: dict[int, Space] = {}
    removed: set[int] = set()  # Spaces whose stage the buyer was removed from (seat rule)
    for ticket in tickets:
        if ticket.space_id not in spaces:
            space = spaces[ticket.space_id] = await core.spaces.get(ticket.space_id)
            if (await core.stage.seat(space, buyer)).removed:
                removed.add(ticket.space_id)
    return TicketList(
        tickets=[
            _ticket_out(core, t, spaces[t.space_id], removed=t.space_id in removed) for t in tickets
        ]
    )


@router.post(
    "/tickets/verify",
    tags=["tickets"],
    summary="Verify a ticket token",
    responses=_errors(403, 404, *_BODY),
)
async def verify_ticket(body: VerifyIn, core: CoreDep) -> VerifyOut:
    """Check a token's signature and expiry, and that its ticket is still valid. A bad or
    expired token is a 401 `invalid_token`; a refunded or revoked ticket, or a holder
    removed from the Space's stage, a 403."""
    admission = await core.tickets.verify_token(body.token, space_id=body.space_id)
    claims = admission.claims
    holder = await core.identities.get(int(claims.holder_key))
    seat = await core.stage.seat(admission.space, holder, moderator=claims.role == "moderator")
    if seat.removed:
        raise refusals.holder_removed(holder.display_name)
    return VerifyOut(
        valid=True,
        ticket_id=claims.ticket_id,
        space_id=claims.space_id,
        holder=PersonOut.of(holder),
        role=claims.role,
        expires_at=claims.expires_at,
    )


@router.get(
    "/keys/ticket", tags=["keys"], summary="The ticket-signing public key", responses=_errors()
)
async def ticket_key(core: CoreDep) -> PublicKeyOut:
    """Edges verify ticket signatures offline with this key; revocation still needs
    `/tickets/verify` (or the database)."""
    return PublicKeyOut(public_key=core.signer.verifier.public_key)
