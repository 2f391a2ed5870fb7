"""/space: announce, change, run and sell a Space (promo codes, invites, co-hosts)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice, Range, Transform

from adapters.discord.commands.options import (
    CURRENCY_CHOICES,
    CommandGroup,
    SpaceHere,
    YourSpace,
    const,
    offer_title_limit,
)
from adapters.discord.interactions import Interactions
from adapters.discord.members import user_ref
from adapters.discord.space_options import SpaceFields, space_changes, space_options
from bot.actors import Actor
from bot.commands import types as t
from bot.commands.grammar import (
    bridge_mode,
    invite_command,
    promo_command,
)
from bot.errors import InvalidInput
from bot.models import BridgeMode, Visibility
from bot.money import currency as lookup_currency
from bot.money import parse_amount
from bot.services.spaces import SpaceDraft


class SpaceCommands(
    CommandGroup, name="space", description="Ticketed live-audio Spaces", guild_only=True
):
    def __init__(self, interactions: Interactions) -> None:
        super().__init__(interactions)
        offer_title_limit(self, interactions, "create", "edit")

    @app_commands.command(description="Announce a Space; times are read in your zone (/tz set).")
    @app_commands.describe(
        title="What the Space is called",
        starts='When it starts, e.g. "fri 18:00" or "2030-05-01 18:00" (your zone)',
        tickets="How many tickets there are",
        price="Ticket price, e.g. 5 or 4.99 (leave out for a free Space)",
        currency="Currency of the price",
        duration="Length: minutes, or e.g. 1h30m (default 60)",
        limit="Tickets one person may get (default 1)",
        description="A few lines about it",
        manual="Start it by hand with /space start instead of at the start time",
        also="Announce it in linked communities too: slack, shell, all, or a name (commas)",
        visibility="invite: not listed, no public page; tickets only through /space invite",
    )
    @app_commands.choices(
        currency=CURRENCY_CHOICES,
        visibility=[Choice(name=v.value, value=v.value) for v in Visibility],
    )
    @space_options("title", "starts", "tickets")
    async def create(
        self,
        interaction: discord.Interaction[Any],
        fields: SpaceFields,
        manual: bool = False,
        visibility: str = Visibility.PUBLIC.value,
        also: Range[str, 1, 200] | None = None,
    ) -> None:
        async def build(actor: Actor) -> t.Command:
            values = await space_changes(self.interactions, actor, fields)
            assert values.title is not None and values.starts_at is not None
            assert values.capacity is not None
            code = (
                values.currency
                or lookup_currency(self.interactions.core.settings.default_currency).code
            )
            return t.CreateSpace(
                SpaceDraft(
                    title=values.title,
                    starts_at=values.starts_at,
                    capacity=values.capacity,
                    price_minor=parse_amount(values.price, code) if values.price else 0,
                    currency=code,
                    duration_minutes=values.duration_minutes,
                    description=values.description or "",
                    per_buyer_limit=values.per_buyer_limit,
                    manual_start=manual,
                    visibility=Visibility(visibility),
                    also=(also,) if also else (),
                )
            )

        await self.interactions.command(interaction, build)

    @app_commands.command(name="list", description="Upcoming and live Spaces here.")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        await self.interactions.command(interaction, const(t.ListSpaces()))

    @app_commands.command(description="Details of a Space.")
    async def info(
        self, interaction: discord.Interaction[Any], space: Transform[int, SpaceHere]
    ) -> None:
        await self.interactions.command(interaction, const(t.ShowSpace(space)))

    @app_commands.command(description="Change a Space you host.")
    @app_commands.describe(
        starts='New start, e.g. "sat 20:00" (your zone)',
        bridge="Bridge the Discord Stage or voice channel into the room (speak: voice-channel "
        "ticket holders may talk)",
        replay_days="Days after the end that ticket holders may replay its recordings (0: none)",
    )
    @app_commands.choices(
        currency=CURRENCY_CHOICES,
        bridge=[Choice(name=m.value, value=m.value) for m in BridgeMode],
        visibility=[Choice(name=v.value, value=v.value) for v in Visibility],
    )
    @space_options()
    async def edit(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, YourSpace],
        fields: SpaceFields,
        bridge: str | None = None,
        visibility: str | None = None,
        replay_days: Range[int, 0, 365] | None = None,
    ) -> None:
        async def build(actor: Actor) -> t.Command:
            changes = await space_changes(self.interactions, actor, fields)
            if bridge is not None:
                changes = replace(changes, voice_bridge=bridge_mode(bridge))
            if visibility is not None:
                changes = replace(changes, visibility=Visibility(visibility))
            if replay_days is not None:
                changes = replace(changes, replay_days=replay_days)
            if not changes.given():
                raise InvalidInput("Say what to change, e.g. title or starts.")
            return t.EditSpace(space, changes)

        await self.interactions.command(interaction, build)

    @app_commands.command(description="Cancel a Space; every ticket is refunded.")
    @app_commands.describe(confirm="A live Space: yes ends it and refunds every ticket")
    async def cancel(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, YourSpace],
        reason: Range[str, 1, 500] | None = None,
        confirm: bool = False,
    ) -> None:
        command = t.CancelSpace(space, (reason or "").strip(), confirm=confirm)
        await self.interactions.command(interaction, const(command))

    @app_commands.command(description="Go live now.")
    @app_commands.describe(confirm="More than 15 minutes early: yes starts it anyway")
    async def start(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, YourSpace],
        confirm: bool = False,
    ) -> None:
        await self.interactions.command(interaction, const(t.StartSpace(space, confirm=confirm)))

    @app_commands.command(description="End a live Space.")
    async def end(
        self, interaction: discord.Interaction[Any], space: Transform[int, YourSpace]
    ) -> None:
        await self.interactions.command(interaction, const(t.EndSpace(space)))

    @app_commands.command(description="A private link to the desk: holders, sales, refunds.")
    async def manage(
        self, interaction: discord.Interaction[Any], space: Transform[int, YourSpace]
    ) -> None:
        await self.interactions.command(interaction, const(t.ManageSpace(space)))

    @app_commands.command(description="The Space's holders and sales, a page at a time.")
    async def tickets(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, YourSpace],
        page: Range[int, 1, 10_000] = 1,
    ) -> None:
        await self.interactions.command(interaction, const(t.ListSpaceTickets(space, page)))

    @app_commands.command(description="The Space's recordings; delete one with delete.")
    @app_commands.describe(delete="The number of the recording to delete")
    async def replays(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, SpaceHere],
        delete: Range[int, 1, 999_999] | None = None,
    ) -> None:
        await self.interactions.command(interaction, const(t.SpaceReplays(space, delete)))

    @app_commands.command(description="Add or remove a co-host (at most 2).")
    @app_commands.choices(
        action=[Choice(name="add", value="add"), Choice(name="remove", value="remove")]
    )
    async def cohost(
        self,
        interaction: discord.Interaction[Any],
        action: str,
        space: Transform[int, YourSpace],
        user: discord.Member,
    ) -> None:
        command = t.SetCohost(space, user_ref(user), action == "add")
        await self.interactions.command(interaction, const(command))

    @app_commands.command(description="Promo codes: make one, list them, or turn one off.")
    @app_commands.describe(
        code="The code, e.g. EARLY (leave out to list the codes)",
        percent="Percent off each ticket",
        amount="Amount off each ticket, in the Space's currency, e.g. 5",
        uses="How many tickets the code may discount",
        until='Last moment it works, e.g. "fri 18:00" (your zone)',
        switch="Turn an existing code off or on",
    )
    @app_commands.choices(switch=[Choice(name="off", value="off"), Choice(name="on", value="on")])
    async def promo(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, YourSpace],
        code: Range[str, 1, 32] | None = None,
        percent: Range[int, 1, 100] | None = None,
        amount: Range[str, 1, 16] | None = None,
        uses: Range[int, 1, 1_000_000] | None = None,
        until: Range[str, 1, 100] | None = None,
        switch: str | None = None,
    ) -> None:
        async def build(actor: Actor) -> t.Command:
            return promo_command(
                space,
                code=code,
                switch=switch or "",
                percent=percent,
                amount=amount,
                uses=uses,
                until=until,
                tz=await self.interactions.dispatcher.tz_of(actor),
                now=self.interactions.core.clock.now(),
            )

        await self.interactions.command(interaction, build)

    @app_commands.command(description="An invite good for a number of tickets, or withdraw one.")
    @app_commands.describe(
        uses="How many tickets the invite may get",
        revoke="Withdraw the invite with this id (/space invites lists them)",
    )
    async def invite(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, YourSpace],
        uses: Range[int, 1, 100_000] | None = None,
        revoke: Range[str, 1, 32] | None = None,
    ) -> None:
        async def build(actor: Actor) -> t.Command:
            return invite_command(space, uses=uses, revoke=revoke)

        await self.interactions.command(interaction, build)

    @app_commands.command(description="The Space's invite links: uses, expiry, withdrawn or not.")
    async def invites(
        self, interaction: discord.Interaction[Any], space: Transform[int, YourSpace]
    ) -> None:
        await self.interactions.command(interaction, const(t.ListInvites(space)))
