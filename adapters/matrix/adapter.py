"""The Matrix adapter assembled: the bot's session, its sync loop, commands in and core
events out. It joins the announcement room (MATRIX_ANNOUNCE_ROOM) at start; the room's
members are its community (`matrix:!room:server`)."""

from __future__ import annotations

import asyncio

import structlog

from adapters.matrix.client import Connection
from adapters.matrix.commands import Commands
from adapters.matrix.config import MatrixConfig
from adapters.matrix.directs import Directs
from adapters.matrix.notifier import Notifier
from adapters.matrix.session import ENCRYPTION_ENABLED, open_session
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.errors import ConfigError

log = structlog.get_logger(__name__)


class MatrixAdapter:
    def __init__(self, core: Core, dispatcher: Dispatcher, config: MatrixConfig) -> None:
        self.core = core
        self.dispatcher = dispatcher
        self.config = config
        self.connection: Connection | None = None
        self.commands: Commands | None = None
        self.ready = asyncio.Event()
        """Set once the bot has joined its room and listens (tests wait on it)."""

    async def start(self) -> Connection:
        """Log in, join the room, sync once, and start listening and delivering."""
        client = await open_session(self.config)
        connection = self.connection = Connection(client)
        try:
            room_id = await connection.resolve(self.config.announce_room)
            await connection.join(room_id)
            await connection.first_sync()
            await self.core.db.warm()  # the first command does not configure the ORM
            await connection.keep_shared(room_id)
            encrypted = connection.encrypted(room_id)
            if encrypted and not ENCRYPTION_ENABLED:
                raise ConfigError(
                    f"Matrix: the room {room_id} is end-to-end encrypted and this install "
                    "has no encryption support: install matrix-nio[e2e] (make env does)"
                )
            directs = Directs(self.core.db, connection, encrypted=encrypted)
            self.commands = Commands(
                self.core,
                self.dispatcher,
                connection,
                directs,
                room_id=room_id,
                moderator_level=self.config.moderator_level,
            )
            self.commands.register()
            Notifier(self.core, connection, directs, room_id=room_id).subscribe(self.core.bus)
        except BaseException:
            await connection.close()
            raise
        log.info(
            "matrix: listening",
            room=room_id,
            user=self.config.user_id,
            encrypted=encrypted,
            e2e=ENCRYPTION_ENABLED,
        )
        return connection

    async def run(self, stop: asyncio.Event) -> None:
        """The background job: sync until `stop`, then finish or cancel the work in flight."""
        connection = self.connection or await self.start()
        try:
            runner = asyncio.create_task(connection.run(stop), name="matrix-connection")
            await connection.ready.wait()
            self.ready.set()
            await runner
        finally:
            await connection.close()

    async def settle(self) -> None:
        """Wait until the commands in flight and the event bus are done (tests)."""
        assert self.connection is not None
        await self.connection.idle()
        await self.core.bus.drain()
        await self.connection.idle()
