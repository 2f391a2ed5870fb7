"""HTTP signaling for rooms: a FastAPI router the core's app includes.

``POST /rooms/{space_id}/offer`` takes ``{"sdp", "type", "token"}`` and answers
``{"sdp", "type"}``. The order matters: the body is validated (422), then the token is
verified by the core's `Gate` (401/403), then the room checks the offer (422) and only then
creates a peer connection. A stranger therefore cannot make the server allocate anything.
Any failure of negotiation is a 422 too, with the peer closed. A live Space's room that is
not open on this node yet opens for the first admitted offer (`RoomRegistry.is_live`).

``GET /rooms/{space_id}/state`` returns who is on stage, how loud, how many listen, and
whether the room is recording, for the room page to poll. It needs the same token
(``Authorization: Bearer <token>``): the attendee list of a paid Space is not public.

On an audio edge (`audio.edges`) an offer is served from the origin's mix over NATS when
the origin says the room is open; only ticket-holding listeners are: anyone else gets 409
(`OriginOnly`) naming the origin, and 503 if the origin cannot be asked. The 409 is the
app's error envelope with the origin's public URL in it, for the page to post the same
offer there::

    {"error": {"type": "origin_only", "message": "…", "field": null,
               "origin": "https://live.example.org"}}

The edge's state is what the edge knows: the stage comes from the origin's mixer and is not
relayed, so it lists no one on stage, and ``listener_count`` counts this edge's own
listeners. On the origin, ``cross_origin`` lets the edges' room pages call both routes
(`audio.cors`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from audio.admission import Admission, Gate, Role
from audio.cors import CrossOrigin
from audio.errors import AudioError, Forbidden, OriginOnly, RoomNotOpen
from audio.offer import MAX_SDP_CHARS
from audio.registry import RoomRegistry
from bot.http.errors import ErrorBody
from bot.http.params import SpaceId

MAX_TOKEN_CHARS = 4_096
#: An offer's JSON body at its largest: the SDP (each CRLF escaped to four characters)
#: and the token. The router refuses more while reading, before the token is checked.
OFFER_BODY_BYTES = 2 * MAX_SDP_CHARS + MAX_TOKEN_CHARS + 1_024


class OfferIn(BaseModel):
    """A participant's SDP offer and ticket token."""

    model_config = ConfigDict(extra="forbid")

    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)
    type: Literal["offer"]
    token: str = Field(default="", max_length=MAX_TOKEN_CHARS)
    """Missing or empty is left to the Gate, which answers 401."""


class AnswerOut(BaseModel):
    """The room's SDP answer."""

    sdp: str
    type: str


class StageMemberOut(BaseModel):
    display_name: str
    role: str
    muted: bool
    speaking: bool
    level: float
    via: str = "web"  # "discord": in the Discord channel the bot bridges


class YouOut(BaseModel):
    role: str
    muted: bool
    connected: bool


class RoomStateOut(BaseModel):
    """What the room page polls."""

    space_id: int
    participants: list[StageMemberOut]
    """Host, cohosts and speakers; listeners are only counted."""
    listener_count: int
    recording: bool
    """The listeners' mix is being recorded: the page must say so."""
    you: YouOut | None
    """The caller's own place in the room, or None if they have not joined (yet)."""


def _http_error(exc: AudioError) -> HTTPException:
    return HTTPException(status_code=exc.status, detail=exc.message)


#: The room's security scheme in the OpenAPI document: the signed ticket token.
ticket_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="TicketToken",
    description="The signed ticket token from the ticket link (`?t=` in the join URL).",
)
TicketCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(ticket_bearer)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    return credentials.credentials.strip() if credentials is not None else ""


def _room_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "The body could not be read as JSON (not UTF-8, say).",
        401: "No ticket token, or one that is not valid or has expired.",
        403: "The ticket is for another Space, or no longer valid (refunded, revoked).",
        404: "The Space's room is not open.",
        409: "Join on the room's origin (an edge's answer); `error.origin` says where.",
        413: "The body is larger than an offer can be.",
        422: "The offer or a parameter is not valid.",
    }
    return {code: {"model": ErrorBody, "description": described[code]} for code in codes}


def _origin_only(exc: OriginOnly) -> JSONResponse:
    error = {"type": "origin_only", "message": exc.message, "field": None, "origin": exc.origin}
    return JSONResponse({"error": error}, status_code=exc.status)


def make_router(
    registry: RoomRegistry, gate: Gate, *, cross_origin: CrossOrigin | None = None
) -> APIRouter:
    """Routes for joining a room and polling its state, bound to ``registry`` and ``gate``;
    with ``cross_origin`` they also answer the pages of the origins it allows (CORS)."""
    if cross_origin is None:
        router = APIRouter(prefix="/rooms", tags=["audio"], max_body_size=OFFER_BODY_BYTES)
    else:
        router = APIRouter(
            prefix="/rooms",
            tags=["audio"],
            route_class=cross_origin.route_class(),
            max_body_size=OFFER_BODY_BYTES,
        )
        policy = cross_origin

        @router.options("/{space_id}/offer", include_in_schema=False)
        @router.options("/{space_id}/state", include_in_schema=False)
        async def preflight(space_id: SpaceId, request: Request) -> Response:
            return policy.preflight(request)

    async def admit(space_id: int, token: str) -> Admission:
        try:
            admission = await gate.admit(space_id, token)
        except AudioError as exc:  # Unauthorized, Forbidden, or whatever else the gate says
            raise _http_error(exc) from exc
        if admission.space_id != space_id:
            # The gate should have said so; never trust it to for another Space's room.
            raise _http_error(Forbidden("This ticket is for another Space."))
        return admission

    @router.post(
        "/{space_id}/offer",
        response_model=AnswerOut,
        responses=_room_errors(400, 401, 403, 404, 409, 413, 422),
    )
    async def offer(
        space_id: SpaceId, body: OfferIn, credentials: TicketCredentials = None
    ) -> AnswerOut | JSONResponse:
        """Join the room: the ticket token in the body (as the room page sends it) or as a
        bearer token."""
        admission = await admit(space_id, body.token or _token(credentials))
        try:
            room = await registry.joinable(space_id)
            if room is None:
                raise RoomNotOpen("This Space's room is not open.")
            answer_sdp, answer_type = await room.join(body.sdp, body.type, admission)
        except OriginOnly as exc:
            return _origin_only(exc)
        except AudioError as exc:
            raise _http_error(exc) from exc
        return AnswerOut(sdp=answer_sdp, type=answer_type)

    @router.get(
        "/{space_id}/state",
        response_model=RoomStateOut,
        responses=_room_errors(401, 403, 404, 422),
    )
    async def state(space_id: SpaceId, credentials: TicketCredentials = None) -> RoomStateOut:
        admission = await admit(space_id, _token(credentials))
        room = registry.get(space_id)
        if room is None:
            raise _http_error(RoomNotOpen("This Space's room is not open."))
        snapshot = room.state()
        you = next(
            (p for p in snapshot.participants if p.identity_key == admission.identity_key),
            None,
        )
        return RoomStateOut(
            space_id=space_id,
            participants=[
                StageMemberOut(
                    display_name=p.display_name,
                    role=p.role,
                    muted=p.muted,
                    speaking=p.speaking,
                    level=p.level,
                    via=p.via,
                )
                for p in snapshot.participants
                if p.role != Role.LISTENER
            ],
            listener_count=snapshot.listener_count,
            recording=snapshot.recording,
            you=None
            if you is None
            else YouOut(role=you.role, muted=you.muted, connected=you.connection == "connected"),
        )

    return router
