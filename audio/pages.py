"""The room page and the small JSON endpoints it uses besides signaling.

    GET  /rooms/{id}                 the page (HTML; the ticket token rides in the fragment)
    GET  /audio/room.js, room.css    its script and style (package data, no CDN)
    GET  /rooms/{id}/info            public: title, host, status, start, server time
    GET  /rooms/{id}/me              Bearer: your role, hand, mute, ICE servers, may record
    POST /rooms/{id}/hand            Bearer: {"up": bool} raise or lower your hand
    GET  /rooms/{id}/stage           Bearer, staff: the raised hands and the speakers
    POST /rooms/{id}/stage           Bearer, staff: {"action", "who"} promote, dismiss,
                                     mute, unmute or remove someone; answers the new stage
    POST /rooms/{id}/end             Bearer, staff: {"confirm": true} end the Space
    POST /rooms/{id}/recording       Bearer, host/co-host: {"on": bool}
    GET  /rooms/{id}/recordings      Bearer, in the replay window after the end: the parts
    GET  /rooms/{id}/recordings/{n}  Bearer: one part, audio/ogg (Range requests work)

The replay window (`bot.services.replays`) decides what is served: nothing before the end
or after the host's window.

Signaling (``/offer``, ``/state``) is `audio.signaling`. Every Bearer endpoint goes through
the same `TicketGate`; its refusals are the room's `AudioError` statuses. Core errors (a hand
raised twice) go to the app's error envelope.

The stage controls act through the core's `StageService` as the token's holder, so the
core's one staff rule decides (a refusal is its 403) and Discord and Slack follow from the
same `StageChanged` events.

The page is locked down by CSP: scripts and styles only from here, fetches only to here,
media from here or blob: (a replayed recording is fetched with the token, then played). On
an audio edge, fetches may also go to the deployment's audio origins (``origins``): the page
sends the stage there (`audio.cors`), and on the origin ``cross_origin`` lets the edges'
pages call ``/recording`` (a host records where the room is mixed).
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from audio.admission import Role
from audio.cors import CrossOrigin
from audio.errors import AudioError, Forbidden, RoomNotOpen
from audio.recordings import RecordingStore
from audio.registry import RoomRegistry
from audio.signaling import MAX_TOKEN_CHARS
from audio.ticket_gate import Pass, TicketGate
from bot.actors import Actor, UserRef
from bot.commands.times import format_when
from bot.core import Core
from bot.errors import Conflict, InvalidInput, NotFound
from bot.http.params import PartNumber, SpaceId
from bot.models import Identity, Platform, row_id
from bot.permissions import Action, SpaceRole, allowed
from bot.services.stage import Seated, StageState
from bot.settings import IceServer

#: The page's JSON calls (raise a hand, start a recording) are a few bytes each.
PAGE_BODY_BYTES = 4 * 1024

_CSP_SOURCE = re.compile(r"^https?://[a-z0-9.\-\[\]:]+$")
"""A web origin fit for the CSP (`audio.cors.web_origin` makes them so; never a ';')."""
_STATIC = {"room.js": "text/javascript; charset=utf-8", "room.css": "text/css; charset=utf-8"}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'{connect}; "
    "media-src 'self' blob:; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "Permissions-Policy": "microphone=(self), camera=()",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_STAGE_ROLES = {Role.HOST: SpaceRole.HOST, Role.COHOST: SpaceRole.COHOST}

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("audio", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class RoomInfo(BaseModel):
    """What anyone may know about a Space's room (the Space page shows as much)."""

    space_id: int
    title: str
    host_name: str
    status: str
    starts_at: datetime
    ends_at: datetime
    now: datetime
    """The server's clock, so a countdown does not depend on the viewer's clock."""


class MeOut(BaseModel):
    display_name: str
    role: str
    muted: bool
    hand_raised: bool
    can_record: bool
    runs_stage: bool
    """Host, co-host or moderator: the page shows the stage controls."""
    ice_servers: list[dict[str, Any]]
    """RTCIceServer objects for the browser's RTCPeerConnection."""


class HandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    up: StrictBool  # JSON true or false; "yes" or 1 is a mistake, not a hand


class HandOut(BaseModel):
    up: bool


class StageAction(enum.StrEnum):
    PROMOTE = "promote"
    DISMISS = "dismiss"
    MUTE = "mute"
    UNMUTE = "unmute"
    REMOVE = "remove"


class StageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: StageAction
    who: str = Field(min_length=3, max_length=200)
    """The person's identity key, as `StageOut` lists it."""


class StagePersonOut(BaseModel):
    key: str
    display_name: str
    role: str
    muted: bool


class StageOut(BaseModel):
    """What the staff's controls show: hands raised (oldest first) and promoted speakers."""

    hands: list[StagePersonOut]
    speakers: list[StagePersonOut]


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: StrictBool
    """The page asked twice; a stray POST without it ends nothing. JSON `true` only: a
    `Literal[True]` would take `1` as well (1 == True)."""

    @field_validator("confirm")
    @classmethod
    def _confirmed(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError("must be true: the page asks before it ends the Space")
        return value


class EndOut(BaseModel):
    status: str


class RecordingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on: StrictBool  # JSON true or false; "yes" or 1 starts no recording


class RecordingOut(BaseModel):
    recording: bool


class RecordingPartOut(BaseModel):
    number: int
    size: int
    url: str


class RecordingsOut(BaseModel):
    parts: list[RecordingPartOut]


def browser_ice_servers(servers: Sequence[IceServer]) -> list[dict[str, Any]]:
    """The settings' ICE servers as the browser's RTCIceServer dictionaries."""
    out: list[dict[str, Any]] = []
    for server in servers:
        entry: dict[str, Any] = {"urls": list(server.urls)}
        if server.username is not None:
            entry["username"] = server.username
        if server.credential is not None:
            entry["credential"] = server.credential.get_secret_value()
        out.append(entry)
    return out


def actor_of(identity: Identity, *, moderator: bool = False) -> Actor:
    """The `Actor` a verified token's holder acts as from the web: no platform rights but a
    moderator's, which their signed staff pass carries."""
    _, _, community = identity.community_id.partition(":")
    return Actor(
        Platform(identity.platform),
        community,
        identity.user_id,
        identity.display_name,
        is_moderator=moderator,
    )


def _acting(found: Pass) -> Actor:
    return actor_of(found.identity, moderator=found.moderator)


def _person(seated: Seated) -> StagePersonOut:
    identity = seated.identity
    return StagePersonOut(
        key=identity.key,
        display_name=identity.display_name or identity.user_id,
        role=seated.seat.role.value,
        muted=seated.seat.muted,
    )


def _stage_out(state: StageState) -> StageOut:
    return StageOut(
        hands=[_person(s) for s in state.queue], speakers=[_person(s) for s in state.speakers]
    )


def _bearer(authorization: str | None) -> str:
    if not authorization:
        return ""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and len(token) <= MAX_TOKEN_CHARS else ""


def _http_error(exc: AudioError) -> HTTPException:
    return HTTPException(status_code=exc.status, detail=exc.message)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_page_router(
    core: Core,
    registry: RoomRegistry,
    gate: TicketGate,
    store: RecordingStore,
    *,
    ice_servers: Sequence[IceServer] = (),
    origins: Callable[[], Awaitable[Collection[str]]] | None = None,
    cross_origin: CrossOrigin | None = None,
) -> APIRouter:
    """The room page's routes, bound to the core, the rooms, the gate and the recordings.

    ``origins`` (an edge's): the web origins the page may also fetch from (the CSP's
    connect-src). ``cross_origin`` (an origin's): who may call ``/recording`` from there."""
    router = APIRouter(tags=["audio"], include_in_schema=False, max_body_size=PAGE_BODY_BYTES)
    if cross_origin is None:
        crossing = router
    else:
        crossing = APIRouter(
            route_class=cross_origin.route_class(),
            include_in_schema=False,
            max_body_size=PAGE_BODY_BYTES,
        )
        policy = cross_origin

        @crossing.options("/rooms/{space_id}/recording")
        async def preflight(space_id: SpaceId, request: Request) -> Response:
            return policy.preflight(request)

    browser_ice = browser_ice_servers(ice_servers)
    static = {
        name: (resources.files("audio").joinpath("static", name).read_bytes(), media_type)
        for name, media_type in _STATIC.items()
    }

    async def check(space_id: int, authorization: str | None, *, live: bool = True) -> Pass:
        try:
            found = await gate.check(space_id, _bearer(authorization), live=live)
        except AudioError as exc:
            raise _http_error(exc) from exc
        if found.admission.space_id != space_id:
            raise _http_error(Forbidden("This ticket is for another Space."))
        return found

    @router.get("/rooms/{space_id}", response_class=HTMLResponse)
    async def page(space_id: str) -> HTMLResponse:
        space = None
        number = row_id(space_id)
        if number is not None:
            try:
                space = await core.spaces.get(number)
            except NotFound:
                space = None
        if space is None:
            html = _env.get_template("room.html").render(space=None)
            return HTMLResponse(html, status_code=404, headers=await headers())
        host = await core.identities.get(space.host_id)
        html = _env.get_template("room.html").render(
            space=space,
            host_name=host.display_name or host.user_id,
            starts_iso=_iso(space.starts_at),
            starts_utc=format_when(space.starts_at, ZoneInfo("UTC")),
        )
        return HTMLResponse(html, headers=await headers())

    async def headers() -> dict[str, str]:
        others = sorted(await origins()) if origins is not None else []
        connect = "".join(f" {origin}" for origin in others if _CSP_SOURCE.match(origin))
        return {"Content-Security-Policy": _CSP.format(connect=connect), **_HEADERS}

    @router.get("/audio/{name}")
    async def asset(name: str) -> Response:
        found = static.get(name)
        if found is None:
            raise HTTPException(404, "Not found.")
        body, media_type = found
        return Response(
            body,
            media_type=media_type,
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    @router.get("/rooms/{space_id}/info", response_model=RoomInfo)
    async def info(space_id: SpaceId) -> RoomInfo:
        space = await core.spaces.get(space_id)  # NotFound -> 404 envelope
        host = await core.identities.get(space.host_id)
        assert space.id is not None
        return RoomInfo(
            space_id=space.id,
            title=space.title,
            host_name=host.display_name or host.user_id,
            status=space.status.value,
            starts_at=space.starts_at.astimezone(UTC),
            ends_at=core.spaces.ends_at(space).astimezone(UTC),
            now=core.clock.now().astimezone(UTC),
        )

    @router.get("/rooms/{space_id}/me", response_model=MeOut)
    async def me(space_id: SpaceId, authorization: Annotated[str | None, Header()] = None) -> MeOut:
        found = await check(space_id, authorization)
        if registry.get(space_id) is None and not registry.relays:
            # The Space is live (the gate said so) but its start never reached this process
            # (started from another one, or before a restart): open the room now. (An edge
            # opens its relay on the first offer, once the origin says the room is open.)
            await registry.open(space_id)
        role = found.role
        return MeOut(
            display_name=found.admission.display_name,
            runs_stage=found.staff,
            role=role.value,
            muted=found.admission.muted,
            hand_raised=found.hand_raised,
            can_record=_may_record(role),
            ice_servers=browser_ice,
        )

    @router.post("/rooms/{space_id}/hand", response_model=HandOut)
    async def hand(
        space_id: SpaceId, body: HandIn, authorization: Annotated[str | None, Header()] = None
    ) -> HandOut:
        found = await check(space_id, authorization)
        if found.role.on_stage:
            raise Conflict("You are already on stage.")
        if found.hand_raised == body.up:
            return HandOut(up=body.up)  # already so (the page may retry after a lost reply)
        try:
            await core.stage.raise_hand(_acting(found), space_id, body.up)
        except Conflict:
            # Raced with another tab or a cached pass: answer with what the stage now says.
            fresh = await gate.check(space_id, _bearer(authorization), live=False)
            if fresh.hand_raised != body.up:
                raise
        gate.forget(space_id)
        return HandOut(up=body.up)

    @router.get("/rooms/{space_id}/stage", response_model=StageOut)
    async def stage(
        space_id: SpaceId, authorization: Annotated[str | None, Header()] = None
    ) -> StageOut:
        found = await check(space_id, authorization)
        return _stage_out(await core.stage.queue(_acting(found), space_id))

    @router.post("/rooms/{space_id}/stage", response_model=StageOut)
    async def stage_action(
        space_id: SpaceId, body: StageIn, authorization: Annotated[str | None, Header()] = None
    ) -> StageOut:
        found = await check(space_id, authorization)
        actor = _acting(found)
        prefix = actor.community_id + ":"
        if not body.who.startswith(prefix):
            raise InvalidInput("That person is not in this Space's community.", field="who")
        who = UserRef(body.who.removeprefix(prefix))
        act = {
            StageAction.PROMOTE: core.stage.promote,
            StageAction.DISMISS: core.stage.dismiss,
            StageAction.REMOVE: core.stage.remove,
        }
        if body.action in act:
            await act[body.action](actor, space_id, who)
        else:
            await core.stage.mute(actor, space_id, who, body.action == StageAction.MUTE)
        gate.forget(space_id)
        return _stage_out(await core.stage.queue(actor, space_id))

    @router.post("/rooms/{space_id}/end", response_model=EndOut)
    async def end(
        space_id: SpaceId, body: EndIn, authorization: Annotated[str | None, Header()] = None
    ) -> EndOut:
        found = await check(space_id, authorization)
        space = await core.spaces.end(_acting(found), space_id)
        gate.forget(space_id)
        return EndOut(status=space.status.value)

    @crossing.post("/rooms/{space_id}/recording", response_model=RecordingOut)
    async def recording(
        space_id: SpaceId,
        body: RecordingIn,
        authorization: Annotated[str | None, Header()] = None,
    ) -> RecordingOut:
        found = await check(space_id, authorization)
        if not _may_record(found.role):
            raise _http_error(Forbidden("Only the host and co-hosts can record this Space."))
        room = registry.get(space_id)
        if room is None:
            raise _http_error(RoomNotOpen("This Space's room is not open."))
        try:
            if body.on:
                path = await asyncio.to_thread(store.next_path, space_id)
                await room.start_recording(path)
            else:
                await room.stop_recording()
        except AudioError as exc:
            raise _http_error(exc) from exc
        return RecordingOut(recording=room.recording)

    @router.get("/rooms/{space_id}/recordings", response_model=RecordingsOut)
    async def recordings(
        space_id: SpaceId, authorization: Annotated[str | None, Header()] = None
    ) -> RecordingsOut:
        found = await check(space_id, authorization, live=False)
        core.replays.check_open(found.space, ZoneInfo(found.identity.tz))
        parts = await core.replays.available(found.space)
        return RecordingsOut(
            parts=[
                RecordingPartOut(
                    number=p.number, size=p.size, url=f"/rooms/{space_id}/recordings/{p.number}"
                )
                for p in parts
            ]
        )

    @router.get("/rooms/{space_id}/recordings/{number}", response_class=FileResponse)
    async def replay(
        space_id: SpaceId,
        number: PartNumber,
        authorization: Annotated[str | None, Header()] = None,
    ) -> FileResponse:
        found = await check(space_id, authorization, live=False)
        try:
            part = await core.replays.part(found.space, number, ZoneInfo(found.identity.tz))
        except NotFound:
            raise HTTPException(404, "There is no such recording.") from None
        return FileResponse(
            part.path,
            media_type="audio/ogg",
            filename=f"space-{space_id}-part-{number}.ogg",
            headers={"Cache-Control": "private, no-store"},
        )

    if crossing is not router:
        router.include_router(crossing)
    return router


def _may_record(role: Role) -> bool:
    stage_role = _STAGE_ROLES.get(role)
    return stage_role is not None and allowed(Action.RECORD, frozenset({stage_role}))
