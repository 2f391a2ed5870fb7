"""/ticket and /remind: a member's tickets, invites redeemed, the waitlist, reminders."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Range, Transform

from adapters.discord.commands.options import CommandGroup, SpaceHere, const
from bot.actors import Actor
from bot.commands import types as t
from bot.commands.grammar import (
    invite_token,
)
from bot.errors import InvalidInput
from bot.services.promos import promo_code


class TicketCommands(CommandGroup, name="ticket", description="Your tickets", guild_only=True):
    @app_commands.command(description="Get a ticket.")
    async def buy(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, SpaceHere],
        quantity: Range[int, 1, 100] = 1,
        code: Range[str, 1, 32] | None = None,
    ) -> None:
        async def build(actor: Actor) -> t.Command:
            return t.BuyTicket(space, quantity, promo_code(code) if code else None)

        await self.interactions.command(interaction, build)

    @app_commands.command(description="Get a ticket through an invite the host gave you.")
    @app_commands.describe(token="The invite's token")
    async def redeem(
        self, interaction: discord.Interaction[Any], token: Range[str, 1, 1000]
    ) -> None:
        async def build(actor: Actor) -> t.Command:
            return t.RedeemInvite(invite_token(token))

        await self.interactions.command(interaction, build)

    @app_commands.command(description="Get in line for a sold-out Space.")
    @app_commands.describe(leave="yes: get out of the line")
    async def waitlist(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, SpaceHere],
        leave: bool = False,
    ) -> None:
        await self.interactions.command(interaction, const(t.JoinWaitlist(space, leave=leave)))

    @app_commands.command(description="Your tickets and their join links.")
    async def show(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, SpaceHere] | None = None,
    ) -> None:
        await self.interactions.command(interaction, const(t.ShowTickets(space)))

    @app_commands.command(description="Refund your ticket (or, as host, one of your Space's).")
    async def refund(
        self, interaction: discord.Interaction[Any], ticket: Range[str, 1, 40]
    ) -> None:
        async def build(actor: Actor) -> t.Command:
            if not ticket.strip().isalnum():
                raise InvalidInput("Name the ticket by its id, e.g. 3f2a9c1d00b4e5f6.")
            return t.RefundTicket(ticket.strip().lower())

        await self.interactions.command(interaction, build)


class RemindCommands(CommandGroup, name="remind", description="Reminders", guild_only=True):
    @app_commands.command(description="Be reminded before a Space starts.")
    async def on(
        self, interaction: discord.Interaction[Any], space: Transform[int, SpaceHere]
    ) -> None:
        await self.interactions.command(interaction, const(t.SetReminder(space, True)))

    @app_commands.command(description="No more reminders for a Space.")
    async def off(
        self, interaction: discord.Interaction[Any], space: Transform[int, SpaceHere]
    ) -> None:
        await self.interactions.command(interaction, const(t.SetReminder(space, False)))
