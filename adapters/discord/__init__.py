"""The Discord adapter: slash commands, announcements with persistent buttons, ticket-holder
roles, Guild Scheduled Events and Stage channels, on discord.py 2.7.

`package` (the ``stagepass.packages`` entry point, in `adapters.discord.package`) installs
it; it does nothing unless DISCORD_TOKEN is set. `cli.discord_app` is ``stagepass discord``.
Importing this package does not load discord.py: the CLI reads its sub-commands from here.
Operator set-up (application, intents, permissions, invite link): README.md here.

    app.py           DiscordAdapter: the parts assembled, their tasks, start and shutdown
    client.py        the discord.py client: intents, command tree and sync, gateway events
    notifier.py      core events -> Discord (announcement, role, scheduled event, Stage, DMs)
    interactions.py  slash commands, buttons and forms -> the core, answered in 3 s
    commands.py, components.py   the slash commands and the persistent buttons
    announcements.py, roles.py, stage.py, stage_access.py, alerts.py, dms.py: the parts
    render.py, members.py, store.py, models.py, config.py, package.py, cli.py
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.discord.app import DiscordAdapter
    from adapters.discord.config import DiscordConfig
    from adapters.discord.package import install, package

__all__ = ["DiscordAdapter", "DiscordConfig", "install", "package"]

_LAZY = {
    "DiscordAdapter": "adapters.discord.app",
    "DiscordConfig": "adapters.discord.config",
    "install": "adapters.discord.package",
    "package": "adapters.discord.package",
}


def __getattr__(name: str) -> Any:
    """The names above, imported on first use (they load discord.py)."""
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'adapters.discord' has no attribute {name!r}")
