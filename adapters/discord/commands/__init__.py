"""Slash commands mirroring the core grammar with native options.

Each callback only maps Discord's typed options onto the same typed command the text
grammar produces (`bot.commands.types`); validation and wording stay in the core. Space
options autocomplete the member's Spaces by title; currencies are choices; times are read
in the member's own zone (`/tz set`).

One module a command group, as the core's grammar (`bot.commands.grammar`) has them;
`build_commands` binds them all.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice, Range, Transform

from adapters.discord.commands.account import PayoutsCommands, SlotCommands, TimezoneCommands
from adapters.discord.commands.community import CommunityCommands
from adapters.discord.commands.options import (
    CURRENCY_CHOICES,
    LiveSpace,
    SpaceHere,
    YourSpace,
    const,
    offer_title_limit,
    title_limit,
)
from adapters.discord.commands.space import SpaceCommands
from adapters.discord.commands.stage import stage_commands
from adapters.discord.commands.ticket import RemindCommands, TicketCommands
from adapters.discord.interactions import Interactions
from adapters.discord.members import user_ref
from bot.actors import Actor
from bot.commands import types as t
from bot.commands.grammar import USAGES
from bot.money import currency as lookup_currency
from bot.money import parse_amount

__all__ = [
    "CURRENCY_CHOICES",
    "CommunityCommands",
    "LiveSpace",
    "PayoutsCommands",
    "RemindCommands",
    "SlotCommands",
    "SpaceCommands",
    "SpaceHere",
    "TicketCommands",
    "TimezoneCommands",
    "YourSpace",
    "build_commands",
    "offer_title_limit",
    "stage_commands",
    "title_limit",
]


def build_commands(
    interactions: Interactions,
) -> list[app_commands.Group | app_commands.Command[Any, Any, Any]]:
    """Every slash command, bound to `interactions`."""

    @app_commands.command(name="tip", description="Tip a host.")
    @app_commands.guild_only()
    @app_commands.describe(amount="How much, e.g. 5", public="Show the tip in the channel")
    @app_commands.choices(currency=CURRENCY_CHOICES)
    async def tip(
        interaction: discord.Interaction[Any],
        user: discord.Member,
        amount: Range[str, 1, 16],
        currency: str | None = None,
        message: Range[str, 1, 300] | None = None,
        public: bool = True,
        space: Transform[int, SpaceHere] | None = None,
    ) -> None:
        async def build(actor: Actor) -> t.Command:
            code = lookup_currency(currency or interactions.core.settings.default_currency).code
            parse_amount(amount, code)  # validated now, converted by billing
            return t.Tip(user_ref(user), amount.strip(), code, message or "", public, space)

        await interactions.command(interaction, build)

    @app_commands.command(name="help", description="What Stagepass can do.")
    async def help_(interaction: discord.Interaction[Any], command: str | None = None) -> None:
        await interactions.command(interaction, const(t.Help(command or "")))

    @help_.autocomplete("command")
    async def _topics(interaction: discord.Interaction[Any], current: str) -> list[Choice[str]]:
        needle = current.strip().lstrip("/").lower()
        return [Choice(name=f"/{u.path}", value=u.path) for u in USAGES if needle in u.path][:25]

    return [
        SpaceCommands(interactions),
        TicketCommands(interactions),
        RemindCommands(interactions),
        stage_commands(interactions),
        SlotCommands(interactions),
        PayoutsCommands(interactions),
        TimezoneCommands(interactions),
        CommunityCommands(interactions),
        tip,
        help_,
    ]
