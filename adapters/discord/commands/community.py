"""/community: link this server with another community."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Range

from adapters.discord.commands.options import CommandGroup, const
from bot.commands import types as t


class CommunityCommands(
    CommandGroup,
    name="community",
    description="Link this server with another community you run",
    guild_only=True,
):
    @app_commands.command(
        description="Without a code: get a one-time code. With one: confirm a link made elsewhere."
    )
    @app_commands.describe(code="The code /community link printed in the other community")
    async def link(
        self, interaction: discord.Interaction[Any], code: Range[str, 1, 16] | None = None
    ) -> None:
        await self.interactions.command(interaction, const(t.CommunityCommand("link", code)))

    @app_commands.command(description="The communities linked with this server.")
    async def links(self, interaction: discord.Interaction[Any]) -> None:
        await self.interactions.command(interaction, const(t.CommunityCommand("links")))

    @app_commands.command(description="Remove a link (name the community, or its platform).")
    async def unlink(
        self, interaction: discord.Interaction[Any], community: Range[str, 1, 120]
    ) -> None:
        await self.interactions.command(interaction, const(t.CommunityCommand("unlink", community)))
