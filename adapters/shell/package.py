"""Plugging the terminal chat into Stagepass: the ``"chat"`` and ``"console"`` services."""

from __future__ import annotations

import asyncio

from adapters.shell.chat import Chat
from bot.host import Host, Package


class ShellConsole:
    """`bot.host.Console` on the shell chat: what `stagepass run --shell` talks through."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat

    async def converse(self, name: str, stop: asyncio.Event) -> None:
        from adapters.shell.repl import interactive

        await interactive(self.chat, name, stop)


async def install(host: Host) -> None:
    """The shell platform: DMs and channel posts for shell identities, always on."""
    chat = Chat(host.core, host.dispatcher)
    host.provide("chat", chat)
    host.provide("console", ShellConsole(chat))
    host.add_mode("shell")


package = Package("shell", install)
"""The ``stagepass.packages`` entry point."""
