"""The Discord adapter: slash commands, announcements with persistent buttons, ticket-holder
roles, Guild Scheduled Events and Stage channels, on discord.py 2.7.

`install(stagepass)` is what the wiring calls; it does nothing unless DISCORD_TOKEN is set.
Operator set-up (application, intents, permissions, invite link): README.md here.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from adapters.discord.adapter import DiscordAdapter
from adapters.discord.config import DiscordConfig

if TYPE_CHECKING:
    from bot.wiring import Stagepass

__all__ = ["DiscordAdapter", "DiscordConfig", "install"]


async def install(stagepass: Stagepass) -> None:
    """Build the client, subscribe it to the core's events and add its background job."""
    secret = stagepass.settings.discord_token
    if secret is None or not secret.get_secret_value().strip():
        return
    token = secret.get_secret_value().strip()
    adapter = DiscordAdapter(
        stagepass.core, stagepass.dispatcher, DiscordConfig.from_settings(stagepass.settings)
    )
    adapter.subscribe()
    if stagepass.rooms is not None:  # each Space decides; DISCORD_VOICE_BRIDGE is the default
        from audio.bridge import DiscordBridges

        adapter.stage.bridges = DiscordBridges(stagepass.rooms)

    async def discord(stop: asyncio.Event) -> None:
        await adapter.run(token, stop)

    stagepass.background.append(discord)
    stagepass.modes.append("discord")
