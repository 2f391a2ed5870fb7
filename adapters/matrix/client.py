"""The bot's side of the Matrix connection: the sync loop, sending into rooms (waiting
until a room the bot just made or joined has come down a sync), and the tasks it owns."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import structlog
from nio import (
    AsyncClient,
    ErrorResponse,
    JoinError,
    KeysQueryResponse,
    RoomCreateError,
    RoomCreateEvent,
    RoomMemberEvent,
    RoomPreset,
    RoomResolveAliasResponse,
    RoomSendResponse,
    SyncResponse,
)

from adapters.matrix.messages import Content
from adapters.matrix.session import ENCRYPTION_ENABLED
from bot.errors import ConfigError, StagepassError

log = structlog.get_logger(__name__)

SYNC_TIMEOUT_MS = 30_000
ROOM_WAIT = 30.0

#: a room creator's power level from room version 12 on: above any level (MSC4289)
CREATOR_POWER = sys.maxsize
#: room versions whose creators hold only the level the power levels give them
_LEGACY_ROOM_VERSIONS = frozenset(str(n) for n in range(1, 12))


class MatrixError(StagepassError):
    """The homeserver said no: `code` is its errcode (M_FORBIDDEN, ...)."""

    def __init__(self, what: str, response: ErrorResponse) -> None:
        self.code = str(response.status_code or "")
        super().__init__(f"{what}: {self.code} {response.message}")


class Connection:
    """One `nio.AsyncClient`, synced by `run`; the adapter sends through it."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.synced = asyncio.Condition()
        self.ready = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._kept: set[str] = set()  # encrypted rooms whose room key is shared ahead
        self._sharing: set[str] = set()
        self._joined_at: dict[tuple[str, str], datetime] = {}
        self._creators: dict[str, frozenset[str]] = {}
        client.add_response_callback(self._on_sync, SyncResponse)
        client.add_response_callback(self._on_keys, KeysQueryResponse)

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    async def _on_sync(self, response: SyncResponse) -> None:
        self._note_state(response)
        async with self.synced:
            self.synced.notify_all()
        if not self.client.should_query_keys:  # else: once the keys have come (`_on_keys`)
            self._share_ahead()

    async def _on_keys(self, response: KeysQueryResponse) -> None:
        self._share_ahead()

    def _note_state(self, response: SyncResponse) -> None:
        """What nio's rooms do not keep: when each member joined (from the member events a
        sync carries; the first, full-state one has every member's current event, and a
        profile change only says they were in by then), and who created each room."""
        for room_id, info in response.rooms.join.items():
            for event in [*info.state, *info.timeline.events]:
                if isinstance(event, RoomCreateEvent):
                    self._note_creators(room_id, event)
                if not isinstance(event, RoomMemberEvent) or event.membership != "join":
                    continue
                key = (room_id, str(event.state_key))
                at = datetime.fromtimestamp(event.server_timestamp / 1000, UTC)
                if event.prev_membership == "join":
                    self._joined_at.setdefault(key, at)
                else:
                    self._joined_at[key] = at

    def _note_creators(self, room_id: str, event: RoomCreateEvent) -> None:
        """From room version 12 on, the creators (the create event's sender and its
        `additional_creators`) outrank every power level and are not listed in them."""
        if event.room_version in _LEGACY_ROOM_VERSIONS:
            return
        more = event.source.get("content", {}).get("additional_creators") or []
        self._creators[room_id] = frozenset({event.sender, *map(str, more)})

    def member_since(self, room_id: str, user_id: str) -> datetime | None:
        """When `user_id` joined `room_id` (at the latest), if the bot has seen it."""
        return self._joined_at.get((room_id, user_id))

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` as an owned, named task (cancelled and awaited by `close`)."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("matrix: task failed", task=task.get_name(), exc_info=task.exception())

    async def idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def first_sync(self) -> None:
        """One sync before any callback is added: what happened before the bot started
        (the room's history) is not answered."""
        response = await self.client.sync(timeout=0, full_state=True)
        if not isinstance(response, SyncResponse):
            raise ConfigError(f"Matrix: the first sync failed ({response})")
        self._note_state(response)  # `sync` alone runs no response callbacks
        if self.client.should_upload_keys:  # people can encrypt to this device at once
            await self.client.keys_upload()

    async def run(self, stop: asyncio.Event) -> None:
        """Sync until `stop` is set; nio uploads, queries and claims keys between syncs."""
        syncing = asyncio.create_task(
            self.client.sync_forever(timeout=SYNC_TIMEOUT_MS, full_state=False),
            name="matrix-sync",
        )
        self.ready.set()
        stopping = asyncio.create_task(stop.wait(), name="matrix-stop")
        try:
            await asyncio.wait({syncing, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if syncing.done():
                await syncing  # its error, if it failed
        finally:
            for task in (syncing, stopping):
                task.cancel()
            await asyncio.gather(syncing, stopping, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.client.close()

    # --- rooms ---------------------------------------------------------------------------

    async def known(self, room_id: str) -> None:
        """Wait until `room_id` has come down a sync (nio sends only into rooms it knows)."""
        async with asyncio.timeout(ROOM_WAIT), self.synced:
            await self.synced.wait_for(lambda: room_id in self.client.rooms)

    async def joined(self, room_id: str, user_id: str) -> None:
        """Wait until `user_id` has joined `room_id`: an encrypted room's keys are shared
        with members' devices only, so a direct room's first message waits for the join."""

        def member() -> bool:
            room = self.client.rooms.get(room_id)
            return room is not None and user_id in room.users and user_id not in room.invited_users

        async with asyncio.timeout(ROOM_WAIT), self.synced:
            await self.synced.wait_for(member)

    async def keep_shared(self, room_id: str) -> None:
        """Share this device's room key with the members of an encrypted room now, and
        again whenever nio drops it (a member joined or left, a device changed), so an
        answer only encrypts: setting a room key up costs a key query, a claim and one
        Olm message per device. Whoever joins later gets the new key before they speak."""
        if not (ENCRYPTION_ENABLED and self.encrypted(room_id)):
            return
        self._kept.add(room_id)
        await self.client.joined_members(room_id)
        if self.client.should_query_keys:
            await self.client.keys_query()
        await self._share(room_id)

    def _share_ahead(self) -> None:
        for room_id in self._kept - self._sharing:
            if self._should_share(room_id):
                self.spawn(self._share(room_id), f"matrix-share-{room_id}")

    def _should_share(self, room_id: str) -> bool:
        olm = self.client.olm
        return (
            olm is not None
            and room_id in self.client.rooms
            and room_id not in self.client.sharing_session  # a send is sharing it now
            and olm.should_share_group_session(room_id)
        )

    async def _share(self, room_id: str) -> None:
        self._sharing.add(room_id)
        try:
            if self._should_share(room_id):
                await self.client.share_group_session(room_id, ignore_unverified_devices=True)
        finally:
            self._sharing.discard(room_id)

    async def resolve(self, room: str) -> str:
        """A room id for `room` (an id, or an alias resolved by the homeserver)."""
        if room.startswith("!"):
            return room
        found = await self.client.room_resolve_alias(room)
        if not isinstance(found, RoomResolveAliasResponse):
            raise ConfigError(f"Setting MATRIX_ANNOUNCE_ROOM: no room has the alias {room}")
        return str(found.room_id)

    async def join(self, room_id: str) -> None:
        joined = await self.client.join(room_id)
        if isinstance(joined, JoinError):
            raise ConfigError(
                f"Setting MATRIX_ANNOUNCE_ROOM: the bot cannot join {room_id} "
                f"({joined.status_code}); invite it first"
            )

    async def send(self, room_id: str, content: Content) -> str:
        """Send `content` (encrypted where the room is); the new event's id."""
        await self.known(room_id)
        room = self.client.rooms[room_id]
        if room.encrypted and not ENCRYPTION_ENABLED:
            raise MatrixError(
                "encrypted room",
                ErrorResponse("this Stagepass has no end-to-end encryption support", "M_E2E"),
            )
        sent = await self.client.room_send(
            room_id,
            "m.room.message",
            content,
            ignore_unverified_devices=True,  # devices are trusted on first use
        )
        if not isinstance(sent, RoomSendResponse):
            raise MatrixError(f"sending into {room_id}", sent)
        return str(sent.event_id)

    async def open_direct(self, user_id: str, *, encrypted: bool) -> str:
        """A new direct room with `user_id` (invited); its id."""
        state = (
            [
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ]
            if encrypted and ENCRYPTION_ENABLED
            else []
        )
        made = await self.client.room_create(
            is_direct=True,
            invite=[user_id],
            preset=RoomPreset.trusted_private_chat,
            initial_state=state,
            name="Stagepass",
        )
        if isinstance(made, RoomCreateError):
            raise MatrixError(f"opening a direct room with {user_id}", made)
        return str(made.room_id)

    def power_level(self, room_id: str, user_id: str) -> int:
        if user_id in self._creators.get(room_id, ()):
            return CREATOR_POWER
        room = self.client.rooms.get(room_id)
        return 0 if room is None else int(room.power_levels.get_user_level(user_id))

    def display_name(self, room_id: str, user_id: str) -> str:
        room = self.client.rooms.get(room_id)
        name = room.user_name(user_id) if room is not None else None
        return str(name or user_id)

    def room_name(self, room_id: str) -> str:
        room = self.client.rooms.get(room_id)
        return str(room.display_name) if room is not None else room_id

    def encrypted(self, room_id: str) -> bool:
        room = self.client.rooms.get(room_id)
        return bool(room is not None and room.encrypted)
