"""What the slash command groups share: Space options autocompleted by title, the
currency choices, the core's title limit, and the base of a group bound to `Interactions`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice

from adapters.discord.interactions import Build, Interactions, SpaceKind, interactions_of
from bot.actors import Actor
from bot.commands import types as t
from bot.money import CURRENCIES
from bot.settings import Settings

CURRENCY_CHOICES = [Choice(name=code.upper(), value=code) for code in CURRENCIES][:25]


class _SpaceOption(app_commands.Transformer):
    """A Space by number, autocompleted by title."""

    kind: SpaceKind = "here"

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.integer

    @property
    def min_value(self) -> int:
        return 1

    async def transform(self, interaction: discord.Interaction[Any], value: Any, /) -> int:
        return int(value)

    async def autocomplete(
        self, interaction: discord.Interaction[Any], value: int | float | str, /
    ) -> list[Choice[int | float | str]]:
        choices = await interactions_of(interaction).space_choices(
            interaction, str(value), self.kind
        )
        return [Choice(name=c.name, value=c.value) for c in choices]


class YourSpace(_SpaceOption):
    """Spaces the member hosts or co-hosts (every Space here for moderators)."""

    kind = "yours"


class SpaceHere(_SpaceOption):
    """Upcoming and live Spaces in this server."""

    kind = "here"


class LiveSpace(_SpaceOption):
    """Spaces live in this server right now."""

    kind = "live"


def title_limit(interactions: Interactions | None) -> int:
    """The longest title the form offers: the core's STAGEPASS_MAX_TITLE_LENGTH (its
    default when there are no interactions, as for the snapshot of the commands)."""
    if interactions is None:
        default = Settings.model_fields["max_title_length"].default
        assert isinstance(default, int)
        return default
    return interactions.core.settings.max_title_length


def offer_title_limit(group: app_commands.Group, interactions: Interactions, *names: str) -> None:
    """Give the `title` option of these commands of `group` the core's limit. discord.py
    reads an option's range when the class is made (`Range[str, 1, 200]` is a placeholder);
    the group's own copy of each command is changed, so nothing is shared."""
    limit = title_limit(interactions)
    for name in names:
        command = group.get_command(name)
        assert isinstance(command, app_commands.Command)
        command._params["title"] = replace(command._params["title"], max_value=limit)


class CommandGroup(app_commands.Group):
    """A group of slash commands whose callbacks run through `interactions`."""

    def __init__(self, interactions: Interactions) -> None:
        super().__init__()
        self.interactions = interactions


def const(command: t.Command) -> Build:
    """The build of a command that needs nothing of who runs it."""

    async def build(actor: Actor) -> t.Command:
        return command

    return build
