"""`stagepass discord …`: operator commands for the Discord adapter.

The ``stagepass.commands`` entry point ``discord``: the CLI mounts it without naming it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from bot.settings import Settings

discord_app = typer.Typer(help="Discord adapter tools.", no_args_is_help=True)


@discord_app.command("sync")
def sync() -> None:
    """Register the slash commands in every server the bot serves (REST only, no gateway).

    `stagepass run` does this on every start; use it after changing DISCORD_GUILD_IDS,
    or to check the token and the applications.commands scope."""
    from bot.errors import ConfigError
    from bot.settings import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(f"stagepass: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(asyncio.run(sync_commands(settings)))


async def sync_commands(settings: Settings) -> int:
    """Log in over REST, sync the commands to each served server; an exit status."""
    import discord

    from adapters.discord.app import DiscordAdapter
    from adapters.discord.config import DiscordConfig
    from bot.commands.handlers import Dispatcher
    from bot.core import Core

    if settings.discord_token is None:
        typer.echo("stagepass: Setting DISCORD_TOKEN: is not set", err=True)
        return 2
    core = Core.build(settings)
    adapter = DiscordAdapter(core, Dispatcher(core), DiscordConfig.from_settings(settings))
    served: list[discord.Guild] = []
    try:
        async with adapter.client:
            await adapter.client.login(settings.discord_token.get_secret_value().strip())
            served = [
                guild
                async for guild in adapter.client.fetch_guilds(limit=None)
                if adapter.config.serves(guild.id)
            ]
            for guild in served:
                count = await adapter.client.sync_commands(guild)
                typer.echo(f"{guild.name} ({guild.id}): {count} commands")
    except discord.LoginFailure:
        typer.echo("stagepass: Discord refused DISCORD_TOKEN", err=True)
        return 2
    finally:
        await core.close()
    if not served:
        typer.echo("The bot is in no server it serves; invite it first (see the README).")
        return 1
    return 0
