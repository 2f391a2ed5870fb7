"""/stage: the stage of a live Space."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice, Transform

from adapters.discord.commands.options import LiveSpace, const
from adapters.discord.interactions import Interactions
from adapters.discord.members import user_ref
from bot.commands import types as t

#: /stage verbs naming a member: verb -> description.
_STAGE_MODERATION = {
    "promote": "Make a listener a speaker.",
    "invite": "Make someone a speaker when they join.",
    "demote": "Back to listener.",
    "mute": "Mute a speaker.",
    "unmute": "Unmute a speaker.",
    "remove": "Remove someone from the room.",
    "allow": "Let someone removed from the stage back in.",
}


def stage_commands(interactions: Interactions) -> app_commands.Group:
    """/stage: every verb is one `StageCommand`; the callbacks are built per verb, each with
    its own signature, because discord.py reads a command's options from its callback's."""
    group = app_commands.Group(
        name="stage", description="The stage of a live Space", guild_only=True
    )

    async def run(
        interaction: discord.Interaction[Any],
        verb: str,
        space: int | None,
        user: discord.Member | None = None,
        *,
        up: bool = True,
    ) -> None:
        command = t.StageCommand(verb, space, user_ref(user) if user else None, up)
        await interactions.command(interaction, const(command))

    def own(verb: str, description: str) -> app_commands.Command[Any, ..., None]:
        """A verb about the member's own place on the stage (or the stage as a whole)."""

        async def callback(
            interaction: discord.Interaction[Any],
            space: Transform[int, LiveSpace] | None = None,
        ) -> None:
            await run(interaction, verb, space)

        return app_commands.Command(name=verb, description=description, callback=callback)

    def moderation(verb: str, description: str) -> app_commands.Command[Any, ..., None]:
        """A verb on another member (a new speaker is told in the announcement channel)."""

        async def callback(
            interaction: discord.Interaction[Any],
            user: discord.Member,
            space: Transform[int, LiveSpace] | None = None,
        ) -> None:
            await run(interaction, verb, space, user)

        return app_commands.Command(name=verb, description=description, callback=callback)

    @app_commands.command(name="hand", description="Raise or lower your hand.")
    @app_commands.choices(hand=[Choice(name="up", value="up"), Choice(name="down", value="down")])
    async def hand(
        interaction: discord.Interaction[Any],
        hand: str = "up",
        space: Transform[int, LiveSpace] | None = None,
    ) -> None:
        await run(interaction, "hand", space, up=hand == "up")

    for command in (
        own("request", "Ask to speak."),
        hand,
        *(moderation(verb, about) for verb, about in _STAGE_MODERATION.items()),
        own("queue", "Speakers and raised hands."),
    ):
        group.add_command(command)
    return group
