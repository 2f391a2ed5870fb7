"""Who speaks from Discord: who is behind each SSRC (the voice gateway's SPEAKING and
CLIENT_DISCONNECT events), and who of the bridged channel the room lists, in which role
(`Roster`, from discord.py's voice-state cache and the Space's `Seat` of each member).

The room lists (and so mixes) only members the Space admits (``Seat.admitted``: the
core's answer to who may listen). Someone in the channel without that right is never
listed, whether or not Discord has moved them out yet."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import discord

from audio.admission import Role
from audio.room import BridgedParticipant

SPEAKING: Final = 5
CLIENT_DISCONNECT: Final = 13


class SsrcMap:
    """SSRC → Discord user id. Written on the event loop, read by the socket reader thread."""

    def __init__(self) -> None:
        self._users: dict[int, int] = {}
        self._lock = threading.Lock()

    def user(self, ssrc: int) -> int | None:
        with self._lock:
            return self._users.get(ssrc)

    def ssrc(self, user_id: int) -> int | None:
        with self._lock:
            return next((s for s, u in self._users.items() if u == user_id), None)

    def handle(self, message: Mapping[str, Any]) -> int | None:
        """Apply one voice gateway message; returns the user id it concerned, if any."""
        op = message.get("op")
        data = message.get("d") or {}
        if op == SPEAKING and "ssrc" in data and "user_id" in data:
            user_id = int(data["user_id"])
            with self._lock:
                # A user who rejoins gets a new SSRC: forget the old one.
                for ssrc in [s for s, u in self._users.items() if u == user_id]:
                    del self._users[ssrc]
                self._users[int(data["ssrc"])] = user_id
            return user_id
        if op == CLIENT_DISCONNECT and "user_id" in data:
            user_id = int(data["user_id"])
            with self._lock:
                for ssrc in [s for s, u in self._users.items() if u == user_id]:
                    del self._users[ssrc]
            return user_id
        return None

    def clear(self) -> None:
        with self._lock:
            self._users.clear()


# -- who is in the bridged channel, as the room lists them --------------------------------


@dataclass(frozen=True, slots=True)
class Seat:
    """What the Space says about one Discord member of the bridged channel (the adapter asks
    the core). ``admitted``: they may listen to the Space (a ticket, or staff), so the room
    lists them; nobody else is listed or mixed. ``role`` is HOST or COHOST for those on
    stage by right, else None: then a Stage's suppress flag decides, and in a voice channel
    (no speaker rules) ``may_speak`` does. ``muted``: muted on the Space's stage."""

    admitted: bool = False
    role: Role | None = None
    may_speak: bool = False
    muted: bool = False


Seats = Callable[[discord.Member], Awaitable[Seat]]
"""Resolves a member's `Seat`; the bridge asks again whenever their voice state changes."""


async def no_seat(member: discord.Member) -> Seat:
    """A bridge without a Space (tests, benchmarks): everyone in the channel is listed,
    Discord's own Stage rules only; nobody speaks in a voice channel."""
    return Seat(admitted=True)


async def nobody(member: discord.Member) -> Seat:
    """Before the Space's rule is known: nobody is listed (the safe side)."""
    return Seat()


@dataclass(frozen=True, slots=True)
class Presence:
    """What Discord says about one member in the bridged channel (their voice state)."""

    user_id: int
    name: str
    stage: bool
    suppress: bool
    mute: bool
    """Server-muted by a moderator (not the member's own mute)."""


def bridged_participant(identity_key: str, presence: Presence, seat: Seat) -> BridgedParticipant:
    """The room's view of a Discord member: a Stage speaker (not suppressed) is a speaker,
    and a server mute or a stage mute is a mute."""
    if seat.role is not None:
        role = seat.role
    elif presence.stage:
        role = Role.LISTENER if presence.suppress else Role.SPEAKER
    else:
        role = Role.SPEAKER if seat.may_speak else Role.LISTENER
    return BridgedParticipant(
        identity_key=identity_key,
        display_name=presence.name,
        via="discord",
        role=role,
        muted=presence.mute or seat.muted,
    )


class BridgedRoom(Protocol):
    """The part of `Room` that lists bridged participants."""

    def put_bridged(self, participant: BridgedParticipant) -> None: ...

    def drop_bridged(self, identity_key: str) -> bool: ...

    def bridged(self, identity_key: str) -> BridgedParticipant | None: ...


@dataclass(frozen=True, slots=True)
class _Seen:
    key: str
    member: discord.Member
    presence: Presence
    listed: bool
    """The Space admitted them, so the room lists them."""


class Roster:
    """Keeps the room's list of Discord participants in step with the channel's voice
    states (discord.py's cache). A member is looked up (`Seats`) before the room lists
    them, and again only when their voice state changes or `reseat` is called (a ticket
    refunded), so a promotion or mute made on the room's side stands until Discord reports
    something new. A member the Space does not admit is remembered but never listed. Use
    from the event loop.
    """

    def __init__(self, room: BridgedRoom, seats: Seats = no_seat) -> None:
        self._room = room
        self._seats = seats
        self._seen: dict[int, _Seen] = {}
        self._lock = asyncio.Lock()

    def mixed(self, user_id: int) -> bool:
        """Whether the room lets this user be heard (listed, on stage and not muted)."""
        key = self.identity_key(user_id)
        participant = self._room.bridged(key) if key is not None else None
        return participant is not None and participant.mixed

    def identity_key(self, user_id: int) -> str | None:
        """The room's identity key of this user while the room lists them."""
        seen = self._seen.get(user_id)
        return seen.key if seen is not None and seen.listed else None

    async def refresh(self, channel: discord.VoiceChannel | discord.StageChannel) -> None:
        """Bring the room's list in line with who is in ``channel`` now."""
        async with self._lock:
            present: dict[int, tuple[discord.Member, Presence]] = {}
            stage = isinstance(channel, discord.StageChannel)
            for user_id, state in list(channel.voice_states.items()):
                member = channel.guild.get_member(user_id)
                if member is None or member.bot or state.channel is None:
                    continue
                if state.channel.id != channel.id:
                    continue
                present[user_id] = (
                    member,
                    Presence(user_id, member.display_name, stage, state.suppress, state.mute),
                )
            for user_id in [u for u in self._seen if u not in present]:
                self._room.drop_bridged(self._seen.pop(user_id).key)
            for user_id, (member, presence) in present.items():
                seen = self._seen.get(user_id)
                if seen is not None and seen.presence == presence:
                    continue
                await self._seat(f"discord:{channel.guild.id}:{user_id}", member, presence)

    async def reseat(self, user_id: int) -> bool:
        """Ask the Space about a member in the channel again now (their right to listen
        may have changed: a refund, a revoked ticket, no longer co-host); listed or dropped
        before Discord reports anything. False if they are not in the channel."""
        async with self._lock:
            seen = self._seen.get(user_id)
            if seen is None:
                return False
            await self._seat(seen.key, seen.member, seen.presence)
            return True

    async def _seat(self, key: str, member: discord.Member, presence: Presence) -> None:
        seat = await self._seats(member)
        self._seen[presence.user_id] = _Seen(key, member, presence, seat.admitted)
        if seat.admitted:
            self._room.put_bridged(bridged_participant(key, presence, seat))
        else:
            self._room.drop_bridged(key)

    def clear(self) -> None:
        """The bridge left: nobody is here through it any more."""
        for seen in self._seen.values():
            self._room.drop_bridged(seen.key)
        self._seen.clear()
