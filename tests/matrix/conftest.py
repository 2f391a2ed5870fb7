"""A real Synapse for the session (tests/matrix/synapse.py), and per test: a bot account
and people registered on it, a room they share (plain or end-to-end encrypted), and a
whole Stagepass with billing (the Stripe fake) and the Matrix adapter running against it.

People are real Matrix clients (nio, with their own crypto stores): they type commands
and read what the bot sends, decrypting as any client would."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nio import (
    AsyncClient,
    AsyncClientConfig,
    InviteMemberEvent,
    MatrixRoom,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomMessage,
    RoomPreset,
    RoomPutStateResponse,
    RoomSendResponse,
    SyncResponse,
)
from pydantic import SecretStr

from adapters.matrix import MatrixAdapter, MatrixConfig
from adapters.matrix.store import Store
from bot.clock import ManualClock
from bot.db import Database
from bot.settings import Settings
from tests.billing.conftest import World, fake, live_settings, make_world
from tests.fakes.stripe_api import FakeStripe
from tests.matrix.synapse import Synapse
from tests.waiting import eventually

__all__ = ["fake"]  # the Stripe fake fixture, shared with tests/billing

Source = dict[str, Any]
_seq = itertools.count(1)


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """One homeserver for the whole session (it takes seconds to start)."""
    server = Synapse(tmp_path_factory.mktemp("synapse"))
    try:
        server.start()
    except Exception as exc:  # no Synapse here: say so loudly and skip
        pytest.skip(f"SKIPPED LOUDLY: Synapse could not start on this machine: {exc}")
    yield server
    server.stop()


@dataclass
class Member:
    """One person's Matrix client: syncs in the background, joins what they are invited
    to, and keeps every message they can read."""

    client: AsyncClient
    messages: list[tuple[str, Source]] = field(default_factory=list)
    seen: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task[None] | None = None

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    async def start(self) -> None:
        self.client.add_event_callback(self._on_message, RoomMessage)
        self.client.add_event_callback(self._on_invite, InviteMemberEvent)
        self.client.add_response_callback(self._on_sync, SyncResponse)
        await self.client.sync(timeout=0, full_state=True)
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        self.task = asyncio.create_task(
            self.client.sync_forever(timeout=5_000), name=f"member-{self.user_id}"
        )

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.client.close()

    async def _on_sync(self, response: SyncResponse) -> None:
        async with self.seen:
            self.seen.notify_all()

    async def _on_message(self, room: MatrixRoom, event: RoomMessage) -> None:
        async with self.seen:
            self.messages.append((room.room_id, event.source))
            self.seen.notify_all()

    async def _on_invite(self, room: MatrixRoom, event: InviteMemberEvent) -> None:
        if event.state_key == self.user_id and event.membership == "invite":
            await self.client.join(room.room_id)

    async def prepare(self, room_id: str, bot: str) -> None:
        """What a client that has been in an encrypted room a while has done already:
        its room key shared with every member's devices (the bot's included)."""

        def bot_joined() -> bool:
            room = self.client.rooms.get(room_id)
            return room is not None and bot in room.users and bot not in room.invited_users

        async with asyncio.timeout(20), self.seen:
            await self.seen.wait_for(bot_joined)
        await self.client.joined_members(room_id)
        if self.client.should_query_keys:
            await self.client.keys_query()
        await self.client.share_group_session(room_id, ignore_unverified_devices=True)

    async def say(self, room_id: str, text: str) -> str:
        async with asyncio.timeout(20), self.seen:
            await self.seen.wait_for(lambda: room_id in self.client.rooms)
        sent = await self.client.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": text},
            ignore_unverified_devices=True,
        )
        assert isinstance(sent, RoomSendResponse), sent
        return str(sent.event_id)

    async def wait_for(
        self, test: Callable[[str, Source], bool], *, after: int = 0, deadline: float = 30
    ) -> tuple[str, Source]:
        """The first message (from index `after`) that passes `test`."""

        def found() -> tuple[str, Source] | None:
            return next(((r, s) for r, s in self.messages[after:] if test(r, s)), None)

        async with asyncio.timeout(deadline), self.seen:
            await self.seen.wait_for(lambda: found() is not None)
        hit = found()
        assert hit is not None
        return hit

    async def reply_to(self, event_id: str, deadline: float = 30) -> Source:
        """The bot's reply in the thread of `event_id`."""
        _, source = await self.wait_for(
            lambda _, s: thread_of(s) == event_id and not is_edit(s), deadline=deadline
        )
        return source

    async def dm(self, bot: str, contains: str, *, after: int = 0) -> Source:
        """The bot's next direct message that contains `contains`."""
        _, source = await self.wait_for(
            lambda room, s: (
                s["sender"] == bot and room in self.direct_rooms(bot) and contains in body(s)
            ),
            after=after,
        )
        return source

    def direct_rooms(self, bot: str) -> set[str]:
        return {
            room_id
            for room_id, room in self.client.rooms.items()
            if room.member_count <= 2 and bot in room.users
        }

    async def command(self, room_id: str, text: str) -> Source:
        """Type `text` and return the bot's reply in its thread."""
        return await self.reply_to(await self.say(room_id, text))


def keys_settled(clients: list[AsyncClient], room_id: str) -> bool:
    """Whether every client holds every other client's current room key for `room_id`
    (what people who have been in an encrypted room a while have)."""
    for sender in clients:
        assert sender.olm is not None
        outbound = sender.olm.outbound_group_sessions.get(room_id)
        if outbound is None:
            return False
        key = sender.olm.account.identity_keys["curve25519"]
        for reader in clients:
            assert reader.olm is not None
            if reader is not sender and not reader.olm.inbound_group_store.get(
                room_id, key, outbound.id
            ):
                return False
    return True


def content(source: Source) -> dict[str, Any]:
    got: dict[str, Any] = source.get("content", {})
    return got


def body(source: Source) -> str:
    return str(content(source).get("body", ""))


def thread_of(source: Source) -> str | None:
    relates = content(source).get("m.relates_to") or {}
    return relates.get("event_id") if relates.get("rel_type") == "m.thread" else None


def is_edit(source: Source) -> bool:
    return (content(source).get("m.relates_to") or {}).get("rel_type") == "m.replace"


@dataclass
class MatrixWorld:
    """Stagepass with billing and the Matrix adapter, the room, and its people."""

    world: World
    adapter: MatrixAdapter
    room_id: str
    bot: str
    people: dict[str, Member]
    encrypted: bool

    def card(self, watcher: Member, space_id: int) -> dict[str, Any]:
        """The Space card as `watcher`'s client shows it: the newest edit's content."""
        shown: dict[str, Any] = {}
        for room, source in watcher.messages:
            if room != self.room_id or source["sender"] != self.bot:
                continue
            shown_now = content(source)
            if is_edit(source):
                shown_now = shown_now["m.new_content"]
            elif thread_of(source) is not None:
                continue
            if str(shown_now.get("body", "")).startswith(f"#{space_id} "):
                shown = shown_now
        return shown

    async def card_shows(self, watcher: Member, space_id: int, text: str) -> dict[str, Any]:
        """Wait until the card shows `text` (in its plain body); the card."""
        await watcher.wait_for(lambda *_: text in self.card(watcher, space_id).get("body", ""))
        return self.card(watcher, space_id)

    async def settle(self) -> None:
        await asyncio.wait_for(self.adapter.settle(), 20)

    @property
    def bot_client(self) -> AsyncClient:
        assert self.adapter.connection is not None
        return self.adapter.connection.client

    async def set_power_level(self, user_id: str, level: int) -> None:
        """The host gives `user_id` power `level` in the room; returns once the bot knows."""
        host = self.people["host"].client
        got = await host.room_get_state_event(self.room_id, "m.room.power_levels")
        assert isinstance(got, RoomGetStateEventResponse), got
        users = {**got.content.get("users", {}), user_id: level}
        put = await host.room_put_state(
            self.room_id, "m.room.power_levels", {**got.content, "users": users}
        )
        assert isinstance(put, RoomPutStateResponse), put
        room = self.bot_client.rooms[self.room_id]
        await eventually(
            lambda: room.power_levels.get_user_level(user_id) == level,
            what=f"the bot to see {user_id} at power level {level}",
        )


async def register_member(
    synapse: Synapse, name: str, store: Path, tag: str
) -> tuple[Member, dict[str, str]]:
    """A new account `name-tag` on `synapse` and its client (not started)."""
    password = secrets.token_hex(8)
    login = await asyncio.to_thread(synapse.register, f"{name}-{tag}", password)
    await asyncio.to_thread(store.mkdir, parents=True, exist_ok=True)
    client = AsyncClient(
        synapse.url,
        login["user_id"],
        store_path=str(store),
        # the bot's store (WAL): people's clients share this process and its CPU with the
        # bot, and each fsync of theirs would be counted in the bot's answer times
        config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False, store=Store),
    )
    client.restore_login(login["user_id"], login["device_id"], login["access_token"])
    return Member(client), {**login, "password": password}


@pytest.fixture(params=["plain", "encrypted"])
async def matrix(
    request: pytest.FixtureRequest,
    synapse: Synapse,
    settings: Settings,
    sqlite_db: Database,
    clock: ManualClock,
    fake: FakeStripe,
    tmp_path: Path,
) -> AsyncIterator[MatrixWorld]:
    encrypted = request.param == "encrypted"
    tag = f"{next(_seq)}{secrets.token_hex(2)}"
    names = ("host", "ann", "ben", "cat", "dan")
    people: dict[str, Member] = {}
    for name in names:
        people[name], _ = await register_member(synapse, name, tmp_path / "people" / name, tag)
    bot_password = secrets.token_hex(8)
    bot = (await asyncio.to_thread(synapse.register, f"stagepass-{tag}", bot_password))["user_id"]
    host = people["host"]
    for member in people.values():
        await member.start()
    try:
        state = (
            [
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ]
            if encrypted
            else []
        )
        made = await host.client.room_create(
            name="Stagepass test",
            preset=RoomPreset.private_chat,
            invite=[bot, *(m.user_id for n, m in people.items() if n != "host")],
            initial_state=state,
        )
        assert isinstance(made, RoomCreateResponse), made
        room_id = str(made.room_id)

        configured = live_settings(settings).model_copy(
            update={
                "matrix_homeserver": synapse.url,
                "matrix_user_id": bot,
                "matrix_password": SecretStr(bot_password),
                "matrix_announce_room": room_id,
            }
        )
        config = MatrixConfig.from_settings(configured)
        assert config is not None
        stop = asyncio.Event()
        async with make_world(configured, sqlite_db, clock, fake) as world:
            adapter = MatrixAdapter(world.core, world.stagepass.dispatcher, config)
            runner = asyncio.create_task(adapter.run(stop), name="matrix-adapter")
            ready = asyncio.create_task(adapter.ready.wait(), name="matrix-ready")
            await asyncio.wait({runner, ready}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if runner.done():
                await runner  # its error: the adapter did not start
            assert adapter.ready.is_set(), "the Matrix adapter did not start within 60 s"
            if encrypted:
                for member in people.values():
                    await member.prepare(room_id, bot)
                assert adapter.connection is not None
                clients = [adapter.connection.client, *(m.client for m in people.values())]
                await eventually(
                    lambda: keys_settled(clients, room_id),
                    what="every room key of the room at every other member's device",
                )
            try:
                yield MatrixWorld(world, adapter, room_id, bot, people, encrypted)
            finally:
                stop.set()
                await asyncio.wait_for(runner, 20)
    finally:
        for member in people.values():
            await member.stop()
