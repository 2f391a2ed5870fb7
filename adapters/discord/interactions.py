"""What members do in Discord -> the core: slash commands, buttons and the tip form, as
the member behind each interaction, answered within Discord's 3 seconds.

The commands (`commands`) and buttons (`components`) only map Discord's options onto a
typed command or a command line; `Interactions` runs it and sends the core's `Reply`
back, privately. Its work is owned by the adapter's `TaskGroup`, so shutting down lets
an answer in flight finish.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, Protocol, cast
from zoneinfo import ZoneInfo

import discord
import structlog
from discord.app_commands import Choice

from adapters.discord import render
from adapters.discord.config import DiscordConfig
from adapters.discord.members import actor_for
from bot.actors import Actor
from bot.commands import types as t
from bot.commands.handlers import Dispatcher
from bot.commands.times import format_when
from bot.core import Core
from bot.errors import InvalidInput, UserError
from bot.models import SpaceStatus
from bot.money import currency as lookup_currency
from bot.money import parse_amount
from bot.replies import Reply
from bot.tasks import TaskGroup

log = structlog.get_logger(__name__)

_UTC = ZoneInfo("UTC")

Build = Callable[[Actor], Awaitable[t.Command]]
"""Makes the typed command of a slash command for the member who used it."""
SpaceKind = Literal["yours", "here", "live"]
"""Which Spaces a Space option offers: the member's own, all here, the live ones."""


class _HasInteractions(Protocol):
    interactions: Interactions


def interactions_of(interaction: discord.Interaction[Any]) -> Interactions:
    """The `Interactions` of the client an interaction arrived on."""
    return cast(_HasInteractions, interaction.client).interactions


class Interactions:
    def __init__(
        self, core: Core, dispatcher: Dispatcher, config: DiscordConfig, tasks: TaskGroup
    ) -> None:
        self.core = core
        self.dispatcher = dispatcher
        self.config = config
        self.tasks = tasks

    def actor(self, interaction: discord.Interaction[Any]) -> Actor:
        member = interaction.user
        if not isinstance(member, discord.Member):
            raise InvalidInput("Stagepass works in servers; use its commands there.")
        return actor_for(member, self.config.moderator_roles, interaction.permissions)

    async def command(self, interaction: discord.Interaction[Any], build: Build) -> None:
        """Run the typed command `build` makes for the member behind `interaction`."""

        async def work() -> Reply:
            try:
                actor = self.actor(interaction)
                command = await build(actor)
            except UserError as exc:
                return Reply(exc.message, error=True)
            return await self.dispatcher.execute(actor, command)

        await self.answer(interaction, work())

    async def run_line(self, interaction: discord.Interaction[Any], line: str) -> None:
        """A button's command line, run as the member who clicked it."""

        async def work() -> Reply:
            try:
                actor = self.actor(interaction)
            except UserError as exc:
                return Reply(exc.message, error=True)
            return await self.dispatcher.handle(actor, line)

        await self.answer(interaction, work())

    async def tip(
        self, interaction: discord.Interaction[Any], space_id: int, amount: str, message: str
    ) -> None:
        """The tip form of an announcement: tip the Space's host in its currency."""

        async def build(actor: Actor) -> t.Command:
            space = await self.core.spaces.get_in(space_id, actor.community_id)
            code = lookup_currency(space.currency).code
            parse_amount(amount, code)
            return t.Tip(
                None,  # the Space's host, also from a linked community's announcement
                amount.strip(),
                code,
                message.strip()[:300],
                True,
                space_id,
            )

        await self.command(interaction, build)

    async def answer(
        self, interaction: discord.Interaction[Any], work: Coroutine[Any, Any, Reply]
    ) -> None:
        """Answer within Discord's 3 seconds: directly when the work is quick, otherwise
        defer ("thinking…") and replace that with the reply. Every answer is ephemeral: it
        concerns the person who asked (the host's echo, refund counts, thanks for hosting);
        what concerns everyone (announced, live, a new speaker) is posted once, in the
        announcement channel, from the core's events (`notifier`)."""
        if self.tasks.closed:
            work.close()
            return
        # owned, so shutting down lets it finish; the reply is sent in there too
        await self.tasks.spawn(self._answer(interaction, work), name=f"answer:{interaction.id}")

    async def _answer(
        self, interaction: discord.Interaction[Any], work: Coroutine[Any, Any, Reply]
    ) -> None:
        job = self.tasks.spawn(self._safely(work), name=f"interaction:{interaction.id}")
        try:
            done, _ = await asyncio.wait({job}, timeout=self.config.ack_within)
            if not done:
                await interaction.response.defer(ephemeral=True, thinking=True)
            reply = await job
            reader = f"discord:{interaction.guild_id}:{interaction.user.id}"
            shown = render.reply(reply, await self.core.identities.zone_of(reader))
            if not interaction.response.is_done():
                await interaction.response.send_message(**shown.send_kwargs(), ephemeral=True)
            else:
                await interaction.edit_original_response(**shown.edit_kwargs())
        finally:
            if not job.done():
                job.cancel()
                await asyncio.gather(job, return_exceptions=True)

    @staticmethod
    async def _safely(work: Coroutine[Any, Any, Reply]) -> Reply:
        try:
            return await work
        except Exception:
            ref = secrets.token_hex(3)
            log.exception("Discord interaction failed", ref=ref)
            return Reply(
                f"Something went wrong on our side and it was logged (ref {ref}). "
                "Nothing was changed; please try again.",
                error=True,
            )

    async def space_choices(
        self, interaction: discord.Interaction[Any], current: str, kind: SpaceKind
    ) -> list[Choice[int]]:
        """Autocomplete: Spaces here by title or number — the member's own for host
        commands (every one for moderators), live ones for stage commands. A choice's
        name is plain text (no `<t:…>` markup), so its time is in UTC, labelled so."""
        try:
            actor = self.actor(interaction)
        except UserError:
            return []
        identity = await self.core.identities.by_key(actor.key)
        spaces = await self.core.spaces.list_spaces(actor.community_id)
        if kind == "live":
            spaces = [s for s in spaces if s.status == SpaceStatus.LIVE]
        elif kind == "yours" and not actor.is_moderator:
            me = identity.id if identity is not None else None
            spaces = [
                s
                for s in spaces
                if s.host_id == me or me in await self.core.spaces.cohost_ids(s.id or 0)
            ]
        needle = current.strip().lstrip("#").lower()
        return [
            Choice(
                name=render.clip(f"#{s.id} {s.title} · {format_when(s.starts_at, _UTC)}", 100),
                value=s.id or 0,
            )
            for s in spaces
            if not needle or needle in s.title.lower() or str(s.id).startswith(needle)
        ][:25]
