"""The `stagepass` command line: the core's commands, and each package's sub-commands from
the ``stagepass.commands`` entry points (`bot.host`). Importing it loads no chat platform."""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from bot.errors import ConfigError, UserError
from bot.host import discover_commands
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
for _name, _commands in discover_commands().items():
    if isinstance(_commands, typer.Typer):
        app.add_typer(_commands, name=_name)
    else:
        app.command(name=_name)(_commands)
err = Console(stderr=True, highlight=False)
T = TypeVar("T")


def settings_for_cli(log_file: bool = False) -> Settings:
    """The settings, with logging set up; a bad setting ends the command with status 2."""
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


def run_with(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro`; a `ConfigError` ends the command with status 2 and its message, Ctrl-C
    with status 130 and "stopped" (no traceback)."""
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        err.print(f"[red]stagepass: {exc}[/]")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("stopped")
        raise typer.Exit(130) from None


def ensure_port_free(host: str, port: int, setting: str = "STAGEPASS_HTTP_PORT") -> None:
    """A `ConfigError` naming `setting` when `host:port` is taken: said in the terminal
    before anything starts, rather than a server failing in the log. (Bound the way uvicorn
    binds, with SO_REUSEADDR, so a port left in TIME_WAIT is not called busy.)"""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"Port {port} is in use; set {setting}") from None
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror})") from None


@app.command()
def run(
    shell: Annotated[
        bool, typer.Option(help="Chat in this terminal as well (needs a terminal).")
    ] = False,
    as_: Annotated[str, typer.Option("--as", help="Who you are in the shell chat.")] = "alice",
) -> None:
    """Run the HTTP app, the scheduler and every configured adapter until Ctrl-C."""
    interactive = shell and sys.stdin.isatty()
    settings = settings_for_cli(log_file=interactive)
    if shell and not interactive:
        err.print("stagepass: --shell needs a terminal; running without the chat.")

    async def main() -> None:
        from bot.host import Console
        from bot.wiring import Stagepass

        ensure_port_free(settings.http_host, settings.http_port)
        if (metrics := settings.metrics_bind) is not None:
            ensure_port_free(*metrics, setting="STAGEPASS_METRICS_ADDRESS")
        stagepass = await Stagepass.build(settings)
        offered = stagepass.services.get("console") if interactive else None
        console = offered if isinstance(offered, Console) else None
        if interactive and console is None:
            err.print("stagepass: no package offers a console; running without the chat.")
        if console is not None:
            err.print(f"Logs go to {settings.data_dir / 'stagepass.log'}")
            talk = console

            async def chat(stop: asyncio.Event) -> None:
                await talk.converse(as_, stop)

            await stagepass.run(foreground=chat)
            err.print("Stagepass stopped.")
        else:
            err.print(f"Chat with it from another terminal: .venv/bin/stagepass shell --as {as_}")
            await stagepass.run()

    run_with(main())


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply database migrations."""
    settings = settings_for_cli()

    async def main() -> None:
        from bot.db import Database
        from bot.encryption import settings_cipher

        db = Database(settings.resolved_database_url)
        try:
            await db.migrate(revision, cipher=lambda: settings_cipher(settings))
        finally:
            await db.dispose()
        print(f"Database is at {revision}.")

    run_with(main())


@tickets_app.command("verify")
def tickets_verify(token: str) -> None:
    """Check a ticket token: signature, expiry and revocation."""
    settings = settings_for_cli()

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

    raise typer.Exit(run_with(main()))


def main() -> None:
    app()
