"""/slot, /payouts and /tz: a host's booked slots, payouts and a member's time zone."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

import discord
from discord import app_commands
from discord.app_commands import Choice, Range

from adapters.discord.commands.options import (
    CURRENCY_CHOICES,
    CommandGroup,
    const,
    offer_title_limit,
)
from adapters.discord.interactions import Interactions
from adapters.discord.space_options import (
    Description,
    Duration,
    Limit,
    Price,
    Starts,
    Tickets,
    Title,
)
from bot.commands import types as t

_ZONES = sorted(available_timezones())


class SlotCommands(CommandGroup, name="slot", description="Booked time slots", guild_only=True):
    def __init__(self, interactions: Interactions) -> None:
        super().__init__(interactions)
        offer_title_limit(self, interactions, "add")

    @app_commands.command(description="Book a time slot, one-off or recurring.")
    @app_commands.describe(
        starts='First start, e.g. "mon 18:00" (your zone)',
        days="Weekdays, e.g. mon,thu",
        until="Last date, e.g. 2030-06-30",
        count="How many times",
        interval="Every N weeks",
    )
    @app_commands.choices(every=[Choice(name="week", value="week")], currency=CURRENCY_CHOICES)
    async def add(
        self,
        interaction: discord.Interaction[Any],
        title: Title,
        starts: Starts,
        tickets: Tickets | None = None,
        every: str | None = None,
        days: Range[str, 1, 40] | None = None,
        until: Range[str, 1, 40] | None = None,
        count: Range[int, 1, 500] | None = None,
        interval: Range[int, 1, 52] | None = None,
        price: Price | None = None,
        currency: str | None = None,
        duration: Duration | None = None,
        limit: Limit | None = None,
        description: Description | None = None,
    ) -> None:
        given = {
            "title": title,
            "starts": starts,
            "tickets": tickets,
            "every": every,
            "days": days,
            "until": until,
            "count": count,
            "interval": interval,
            "price": price,
            "currency": currency,
            "duration": duration,
            "limit": limit,
            "description": description,
        }
        options = tuple(sorted((k, str(v)) for k, v in given.items() if v is not None))
        await self.interactions.command(interaction, const(t.SlotCommand("add", options)))

    @app_commands.command(name="list", description="Your booked slots.")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        await self.interactions.command(interaction, const(t.SlotCommand("list")))

    @app_commands.command(description="Remove future occurrences of a slot.")
    async def remove(self, interaction: discord.Interaction[Any], slot: Range[str, 1, 40]) -> None:
        await self.interactions.command(interaction, const(t.SlotCommand("remove", (), slot)))


class PayoutsCommands(CommandGroup, name="payouts", description="Getting paid", guild_only=True):
    @app_commands.command(description="Connect a Stripe account to get paid.")
    async def connect(self, interaction: discord.Interaction[Any]) -> None:
        await self.interactions.command(interaction, const(t.PayoutsCommand("connect")))

    @app_commands.command(description="Whether you can sell and get paid.")
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        await self.interactions.command(interaction, const(t.PayoutsCommand("status")))


class TimezoneCommands(CommandGroup, name="tz", description="Your time zone", guild_only=True):
    @app_commands.command(name="set", description="Set your time zone, e.g. Europe/Berlin.")
    async def set_(self, interaction: discord.Interaction[Any], zone: Range[str, 1, 64]) -> None:
        await self.interactions.command(interaction, const(t.SetTimezone(zone)))

    @set_.autocomplete("zone")
    async def _zones(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[Choice[str]]:
        needle = current.strip().lower().replace(" ", "_")
        return [Choice(name=z, value=z) for z in _ZONES if needle in z.lower()][:25]

    @app_commands.command(description="Show your time zone.")
    async def show(self, interaction: discord.Interaction[Any]) -> None:
        await self.interactions.command(interaction, const(t.SetTimezone(None)))
