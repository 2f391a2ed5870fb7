"""The Matrix adapter: `!space create ...` in a Matrix room, the Space card with the
commands to type instead of buttons, replies in a thread of each command, and DMs in a
direct room the bot opens, on matrix-nio (end-to-end encryption with its store in the data
directory).

`package` (the ``stagepass.packages`` entry point) installs it; it does nothing unless
Matrix is set up (MATRIX_HOMESERVER and friends; README: Matrix). Voice (MatrixRTC) is
not bridged: the ticket's link opens the web room.
"""

from __future__ import annotations

import asyncio

from adapters.matrix.adapter import MatrixAdapter
from adapters.matrix.config import MatrixConfig
from bot.host import Host, Package

__all__ = ["MatrixAdapter", "MatrixConfig", "install", "package"]


async def install(host: Host) -> None:
    """Add Matrix to `host`: its background job (the bot's sync loop).

    Raises `ConfigError` when the Matrix settings are only half there."""
    config = MatrixConfig.from_settings(host.settings)
    if config is None:
        return
    adapter = MatrixAdapter(host.core, host.dispatcher, config)

    async def matrix(stop: asyncio.Event) -> None:
        await adapter.run(stop)

    host.add_background(matrix)
    host.add_mode("matrix")


package = Package("matrix", install)
"""The ``stagepass.packages`` entry point."""
