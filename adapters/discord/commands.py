"""Slash commands mirroring the core grammar with native options.

Each callback only maps Discord's typed options onto the same typed command the text
grammar produces (`bot.commands.types`); validation and wording stay in the core. Space
options autocomplete the member's Spaces by title; currencies are choices; times are read
in the member's own zone (`/tz set`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from zoneinfo import available_timezones

import discord
from discord import app_commands
from discord.app_commands import Choice, Range, Transform

from adapters.discord.interactions import Build, Interactions, SpaceKind, interactions_of
from adapters.discord.members import user_ref
from adapters.discord.space_options import SpaceFields, space_changes, space_options
from bot.actors import Actor
from bot.commands import types as t
from bot.commands.grammar import (
    USAGES,
    bridge_mode,
    invite_command,
    invite_token,
    promo_command,
)
from bot.errors import InvalidInput
from bot.models import BridgeMode, Visibility
from bot.money import CURRENCIES, parse_amount
from bot.money import currency as lookup_currency
from bot.services.promos import promo_code
from bot.services.spaces import SpaceDraft
from bot.settings import Settings

CURRENCY_CHOICES = [Choice(name=code.upper(), value=code) for code in CURRENCIES][:25]
_ZONES = sorted(available_timezones())


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


class _CommandGroup(app_commands.Group):
    """A group of slash commands whose callbacks run through `interactions`."""

    def __init__(self, interactions: Interactions) -> None:
        super().__init__()
        self.interactions = interactions


class SpaceCommands(
    _CommandGroup, name="space", description="Ticketed live-audio Spaces", guild_only=True
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
        await self.interactions.command(interaction, _const(t.ListSpaces()))

    @app_commands.command(description="Details of a Space.")
    async def info(
        self, interaction: discord.Interaction[Any], space: Transform[int, SpaceHere]
    ) -> None:
        await self.interactions.command(interaction, _const(t.ShowSpace(space)))

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
        await self.interactions.command(interaction, _const(command))

    @app_commands.command(description="Go live now.")
    @app_commands.describe(confirm="More than 15 minutes early: yes starts it anyway")
    async def start(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, YourSpace],
        confirm: bool = False,
    ) -> None:
        await self.interactions.command(interaction, _const(t.StartSpace(space, confirm=confirm)))

    @app_commands.command(description="End a live Space.")
    async def end(
        self, interaction: discord.Interaction[Any], space: Transform[int, YourSpace]
    ) -> None:
        await self.interactions.command(interaction, _const(t.EndSpace(space)))

    @app_commands.command(description="A private link to the desk: holders, sales, refunds.")
    async def manage(
        self, interaction: discord.Interaction[Any], space: Transform[int, YourSpace]
    ) -> None:
        await self.interactions.command(interaction, _const(t.ManageSpace(space)))

    @app_commands.command(description="The Space's holders and sales, a page at a time.")
    async def tickets(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, YourSpace],
        page: Range[int, 1, 10_000] = 1,
    ) -> None:
        await self.interactions.command(interaction, _const(t.ListSpaceTickets(space, page)))

    @app_commands.command(description="The Space's recordings; delete one with delete.")
    @app_commands.describe(delete="The number of the recording to delete")
    async def replays(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, SpaceHere],
        delete: Range[int, 1, 999_999] | None = None,
    ) -> None:
        await self.interactions.command(interaction, _const(t.SpaceReplays(space, delete)))

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
        await self.interactions.command(interaction, _const(command))

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
        await self.interactions.command(interaction, _const(t.ListInvites(space)))


class TicketCommands(_CommandGroup, name="ticket", description="Your tickets", guild_only=True):
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
        await self.interactions.command(interaction, _const(t.JoinWaitlist(space, leave=leave)))

    @app_commands.command(description="Your tickets and their join links.")
    async def show(
        self,
        interaction: discord.Interaction[Any],
        space: Transform[int, SpaceHere] | None = None,
    ) -> None:
        await self.interactions.command(interaction, _const(t.ShowTickets(space)))

    @app_commands.command(description="Refund your ticket (or, as host, one of your Space's).")
    async def refund(
        self, interaction: discord.Interaction[Any], ticket: Range[str, 1, 40]
    ) -> None:
        async def build(actor: Actor) -> t.Command:
            if not ticket.strip().isalnum():
                raise InvalidInput("Name the ticket by its id, e.g. 3f2a9c1d00b4e5f6.")
            return t.RefundTicket(ticket.strip().lower())

        await self.interactions.command(interaction, build)


class RemindCommands(_CommandGroup, name="remind", description="Reminders", guild_only=True):
    @app_commands.command(description="Be reminded before a Space starts.")
    async def on(
        self, interaction: discord.Interaction[Any], space: Transform[int, SpaceHere]
    ) -> None:
        await self.interactions.command(interaction, _const(t.SetReminder(space, True)))

    @app_commands.command(description="No more reminders for a Space.")
    async def off(
        self, interaction: discord.Interaction[Any], space: Transform[int, SpaceHere]
    ) -> None:
        await self.interactions.command(interaction, _const(t.SetReminder(space, False)))


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
        await interactions.command(interaction, _const(command))

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


class SlotCommands(_CommandGroup, name="slot", description="Booked time slots", guild_only=True):
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
        title: Range[str, 1, 200],
        starts: Range[str, 1, 100],
        tickets: Range[int, 1, 1_000_000] | None = None,
        every: str | None = None,
        days: Range[str, 1, 40] | None = None,
        until: Range[str, 1, 40] | None = None,
        count: Range[int, 1, 500] | None = None,
        interval: Range[int, 1, 52] | None = None,
        price: Range[str, 1, 16] | None = None,
        currency: str | None = None,
        duration: Range[str, 1, 16] | None = None,
        limit: Range[int, 1, 100] | None = None,
        description: Range[str, 1, 2000] | None = None,
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
        await self.interactions.command(interaction, _const(t.SlotCommand("add", options)))

    @app_commands.command(name="list", description="Your booked slots.")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        await self.interactions.command(interaction, _const(t.SlotCommand("list")))

    @app_commands.command(description="Remove future occurrences of a slot.")
    async def remove(self, interaction: discord.Interaction[Any], slot: Range[str, 1, 40]) -> None:
        await self.interactions.command(interaction, _const(t.SlotCommand("remove", (), slot)))


class PayoutsCommands(_CommandGroup, name="payouts", description="Getting paid", guild_only=True):
    @app_commands.command(description="Connect a Stripe account to get paid.")
    async def connect(self, interaction: discord.Interaction[Any]) -> None:
        await self.interactions.command(interaction, _const(t.PayoutsCommand("connect")))

    @app_commands.command(description="Whether you can sell and get paid.")
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        await self.interactions.command(interaction, _const(t.PayoutsCommand("status")))


class TimezoneCommands(_CommandGroup, name="tz", description="Your time zone", guild_only=True):
    @app_commands.command(name="set", description="Set your time zone, e.g. Europe/Berlin.")
    async def set_(self, interaction: discord.Interaction[Any], zone: Range[str, 1, 64]) -> None:
        await self.interactions.command(interaction, _const(t.SetTimezone(zone)))

    @set_.autocomplete("zone")
    async def _zones(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[Choice[str]]:
        needle = current.strip().lower().replace(" ", "_")
        return [Choice(name=z, value=z) for z in _ZONES if needle in z.lower()][:25]

    @app_commands.command(description="Show your time zone.")
    async def show(self, interaction: discord.Interaction[Any]) -> None:
        await self.interactions.command(interaction, _const(t.SetTimezone(None)))


class CommunityCommands(
    _CommandGroup,
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
        await self.interactions.command(interaction, _const(t.CommunityCommand("link", code)))

    @app_commands.command(description="The communities linked with this server.")
    async def links(self, interaction: discord.Interaction[Any]) -> None:
        await self.interactions.command(interaction, _const(t.CommunityCommand("links")))

    @app_commands.command(description="Remove a link (name the community, or its platform).")
    async def unlink(
        self, interaction: discord.Interaction[Any], community: Range[str, 1, 120]
    ) -> None:
        await self.interactions.command(
            interaction, _const(t.CommunityCommand("unlink", community))
        )


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
        await interactions.command(interaction, _const(t.Help(command or "")))

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


def _const(command: t.Command) -> Build:
    async def build(actor: Actor) -> t.Command:
        return command

    return build
