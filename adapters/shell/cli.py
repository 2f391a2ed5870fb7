"""`stagepass shell`: a terminal chat against Stagepass (the ``stagepass.commands`` entry
point ``shell``: one command, not a group)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def shell(
    as_: Annotated[str, typer.Option("--as", help="Who you are.")] = "alice",
    moderator: Annotated[bool, typer.Option(help="Start as a moderator.")] = False,
    script: Annotated[Path | None, typer.Option(help="Run the commands in FILE and exit.")] = None,
) -> None:
    """A terminal chat against Stagepass: type commands, see replies and DMs."""
    import sys

    from bot.cli import run_with, settings_for_cli

    settings = settings_for_cli(log_file=True)

    async def main() -> None:
        from adapters.shell.chat import Chat
        from adapters.shell.repl import interactive, run_script
        from bot.errors import ConfigError
        from bot.wiring import running

        async with running(settings) as stagepass:
            chat = stagepass.service("chat", Chat)
            if chat is None:
                raise ConfigError("the shell package is not installed")
            chat.person(as_, moderator=moderator)
            if script is not None:
                await run_script(chat, as_, script.read_text().splitlines())
            elif not sys.stdin.isatty():
                await run_script(chat, as_, sys.stdin.read().splitlines())
            else:
                await interactive(chat, as_)

    run_with(main())
