"""The core's `Gate`: a ticket token, checked against the database, becomes an `Admission`.

This module is on the core-facing side of ``audio/`` and imports ``bot``; the room does not.

What a token must pass to get into a live room, in order (each refusal is the room's error,
so the signaling edge answers its status):

1. a token at all, signed by us and not expired                       401 `Unauthorized`
2. its ticket still valid (not refunded or revoked), or for staff
   tokens the person still host or co-host (moderators keep theirs)   403 `Forbidden`
3. for this Space                                                     403
4. the Space live                                                     403
5. the person not removed from the Space's stage                      403

Then the core's seat rule (`StageService.seat`) gives the role, mapped onto the room's:
the host and co-hosts are on stage, a listener promoted earlier comes back as a speaker, a
moderator listens; a mute is kept across a rejoin.

Every room page polls the state through this gate about once a second, so successful passes
are cached for a few seconds. Anything that can change a pass (a ticket closed, a stage or
co-host change, the Space ending) must call `forget` for the Space; ``audio.install`` does, from the
core's events. A check that started before a `forget` never stores its (stale) result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from audio.admission import Admission, Role
from audio.errors import Forbidden, Unauthorized
from bot.core import Core
from bot.errors import NotFound, PermissionDenied
from bot.models import Identity, Space, SpaceStatus
from bot.tokens import InvalidToken

CACHE_SECONDS = 5.0
CACHE_ENTRIES = 10_000

_NOT_LIVE = {
    SpaceStatus.DRAFT: "This Space has not started yet.",
    SpaceStatus.SCHEDULED: "This Space has not started yet.",
    SpaceStatus.ENDED: "This Space has ended.",
    SpaceStatus.CANCELLED: "This Space was cancelled.",
}


@dataclass(frozen=True, slots=True)
class Pass:
    """Who a token admits, with the rows the room page needs besides the `Admission`."""

    admission: Admission
    identity: Identity
    space: Space
    staff: bool
    """A host, co-host or moderator token (no ticket behind it)."""
    hand_raised: bool
    moderator: bool = False
    """A moderator's staff pass: the signed token says the platform made them one."""

    @property
    def role(self) -> Role:
        return self.admission.stage_role


class TicketGate:
    """Implements `audio.admission.Gate` on the core's tickets, Spaces and stage."""

    def __init__(
        self,
        core: Core,
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._core = core
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[tuple[int, str], tuple[float, Pass]] = {}
        self._generation: dict[int, int] = {}

    async def admit(self, space_id: int, token: str) -> Admission:
        """`Gate.admit`: the checks above, served from the cache when fresh."""
        return (await self.check(space_id, token)).admission

    async def check(self, space_id: int, token: str, *, live: bool = True) -> Pass:
        """The full pass. ``live=False`` skips steps 4 and 5 (replaying a recording after
        the Space ended) and is never cached."""
        key = (space_id, token)
        if live:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > self._clock():
                return cached[1]
        generation = self._generation.get(space_id, 0)
        found = await self._check(space_id, token, live=live)
        if live and self._generation.get(space_id, 0) == generation:
            self._remember(key, found)
        return found

    def forget(self, space_id: int) -> None:
        """Drop every cached pass of a Space (something about it changed)."""
        self._generation[space_id] = self._generation.get(space_id, 0) + 1
        for key in [k for k in self._cache if k[0] == space_id]:
            del self._cache[key]

    def _remember(self, key: tuple[int, str], found: Pass) -> None:
        now = self._clock()
        if len(self._cache) >= CACHE_ENTRIES:
            for stale in [k for k, (until, _) in self._cache.items() if until <= now]:
                del self._cache[stale]
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
        self._cache[key] = (now + self._cache_seconds, found)

    async def _check(self, space_id: int, token: str, *, live: bool) -> Pass:
        core = self._core
        if not token.strip():
            raise Unauthorized("Open this room from your ticket link.")
        try:
            verified = await core.tickets.verify_token(token)
            claims = verified.claims
            if claims.space_id != space_id:
                raise Forbidden("This ticket is for another Space.")
            identity = await core.identities.get(int(claims.holder_key))
        except InvalidToken as exc:
            raise Unauthorized(exc.message) from exc
        except (PermissionDenied, NotFound) as exc:
            raise Forbidden(exc.message) from exc
        except ValueError as exc:  # a holder that is not an identity id: not our token
            raise Unauthorized("This ticket token is not valid.") from exc
        space = verified.space
        if live and space.status != SpaceStatus.LIVE:
            raise Forbidden(_NOT_LIVE.get(space.status, "This Space is not live."))
        assert space.id is not None and identity.id is not None
        seat = await core.stage.seat(space, identity, moderator=claims.role == "moderator")
        if live and seat.removed:
            raise Forbidden("You were removed from this Space.")
        staff = verified.ticket is None
        return Pass(
            admission=Admission(
                ticket_id=None if staff else claims.ticket_id,
                space_id=space.id,
                identity_key=identity.key,
                display_name=identity.display_name or identity.user_id,
                role=Role(seat.role.value).value,
                muted=seat.muted,
            ),
            identity=identity,
            space=space,
            staff=staff,
            hand_raised=seat.hand_raised,
            moderator=staff and claims.role == "moderator",
        )
