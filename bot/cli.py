"""The `stagepass` command line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from adapters.discord.cli import discord_app
from billing.cli import app as billing_app
from bot.errors import ConfigError, UserError
from bot.logs import configure
from bot.settings import Settings, load_settings

app = typer.Typer(
    help="Stagepass: ticketed live-audio Spaces for Discord and Slack.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
tickets_app = typer.Typer(help="Ticket tools.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tickets_app, name="tickets")
app.add_typer(billing_app, name="billing")
app.add_typer(discord_app, name="discord")
err = Console(stderr=True, highlight=False)
T = TypeVar("T")


def _settings(log_file: bool = False) -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        err.print(f"[red]stagepass: {exc}[/]")
        raise typer.Exit(2) from None
    configure(
        settings.log_level,
        settings.log_format,
        settings.data_dir / "stagepass.log" if log_file else None,
        secrets=settings.secret_values(),
    )
    return settings


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        err.print(f"[red]stagepass: {exc}[/]")
        raise typer.Exit(2) from None


@app.command()
def run(
    shell: Annotated[
        bool, typer.Option(help="Chat in this terminal as well (needs a terminal).")
    ] = False,
    as_: Annotated[str, typer.Option("--as", help="Who you are in the shell chat.")] = "alice",
) -> None:
    """Run the HTTP app, the scheduler and every configured adapter until Ctrl-C."""
    interactive = shell and sys.stdin.isatty()
    settings = _settings(log_file=interactive)
    if shell and not interactive:
        err.print("stagepass: --shell needs a terminal; running without the chat.")

    async def main() -> None:
        from adapters.shell.repl import interactive as repl
        from bot.wiring import Stagepass

        stagepass = await Stagepass.build(settings)
        if interactive:
            err.print(f"Logs go to {settings.data_dir / 'stagepass.log'}")

            async def chat(stop: asyncio.Event) -> None:
                await repl(stagepass.chat, as_, stop)

            await stagepass.run(foreground=chat)
        else:
            err.print(f"Chat with it from another terminal: .venv/bin/stagepass shell --as {as_}")
            await stagepass.run()

    _run(main())


@app.command()
def shell(
    as_: Annotated[str, typer.Option("--as", help="Who you are.")] = "alice",
    moderator: Annotated[bool, typer.Option(help="Start as a moderator.")] = False,
    script: Annotated[Path | None, typer.Option(help="Run the commands in FILE and exit.")] = None,
) -> None:
    """A terminal chat against Stagepass: type commands, see replies and DMs."""
    settings = _settings(log_file=True)

    async def main() -> None:
        from adapters.shell.repl import interactive, run_script
        from bot.wiring import running

        async with running(settings) as stagepass:
            stagepass.chat.person(as_, moderator=moderator)
            if script is not None:
                await run_script(stagepass.chat, as_, script.read_text().splitlines())
            elif not sys.stdin.isatty():
                await run_script(stagepass.chat, as_, sys.stdin.read().splitlines())
            else:
                await interactive(stagepass.chat, as_)

    _run(main())


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply database migrations."""
    settings = _settings()

    async def main() -> None:
        from bot.db import Database
        from bot.encryption import settings_cipher

        db = Database(settings.resolved_database_url)
        try:
            await db.migrate(revision, cipher=lambda: settings_cipher(settings))
        finally:
            await db.dispose()
        print(f"Database is at {revision}.")

    _run(main())


@tickets_app.command("verify")
def tickets_verify(token: str) -> None:
    """Check a ticket token: signature, expiry and revocation."""
    settings = _settings()

    async def main() -> int:
        from bot.services import refusals
        from bot.wiring import running

        async with running(settings) as stagepass:
            core = stagepass.core
            try:
                admission = await core.tickets.verify_token(token)
            except UserError as exc:
                print(f"INVALID: {exc.message}")
                return 1
            claims = admission.claims
            holder = await core.identities.get(int(claims.holder_key))
            seat = await core.stage.seat(
                admission.space, holder, moderator=claims.role == "moderator"
            )
            if seat.removed:
                refusal = refusals.holder_removed(f"{holder.display_name} ({holder.key})")
                print(
                    f"REMOVED: ticket {claims.ticket_id} for Space #{claims.space_id} "
                    f"({admission.space.title}): {refusal.message}"
                )
                return 1
            print(
                f"VALID ticket {claims.ticket_id} for Space #{claims.space_id} "
                f"({admission.space.title})\nholder: {holder.display_name} ({holder.key})\n"
                f"role: {seat.role.value}\nexpires: {claims.expires_at.isoformat()}"
            )
            return 0

    raise typer.Exit(_run(main()))


def main() -> None:
    app()
