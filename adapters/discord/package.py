"""Plugging the Discord adapter into Stagepass: `install(host)` and `package`."""

from __future__ import annotations

import asyncio

from adapters.discord.app import DiscordAdapter
from adapters.discord.config import DiscordConfig
from bot.host import Host, Package
from bot.settings import secret_of


async def install(host: Host) -> None:
    """Build the client, subscribe it to the core's events and add its background job.
    With the audio package's ``"rooms"`` service, Spaces may bridge a Stage into their room
    (each Space decides; DISCORD_VOICE_BRIDGE is the default)."""
    token = secret_of(host.settings.discord_token)
    if token is None:
        return
    adapter = DiscordAdapter(host.core, host.dispatcher, DiscordConfig.from_settings(host.settings))
    adapter.subscribe()
    from audio.bridge import DiscordBridges
    from audio.registry import RoomRegistry

    rooms = host.service("rooms", RoomRegistry)
    if rooms is not None:
        adapter.stage.bridges = DiscordBridges(rooms)

    async def discord(stop: asyncio.Event) -> None:
        await adapter.run(token, stop)

    host.add_background(discord)
    host.add_mode("discord")


package = Package("discord", install, after=("audio",))
"""The ``stagepass.packages`` entry point (after audio, whose rooms the voice bridge joins)."""
