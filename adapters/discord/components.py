"""Persistent buttons and the tip form.

Buttons are `DynamicItem`s: the custom_id carries what to do (`sp:/ticket buy 12`,
`sp-tip:12`), and the classes are registered once at start-up, so a button posted weeks
ago by another process still works after a restart; nothing is kept in memory per message.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, cast

import discord
from discord import ui

COMMAND_PREFIX = "sp:"
TIP_PREFIX = "sp-tip:"
_CUSTOM_ID_LIMIT = 100


class Clicks(Protocol):
    """What a click or a submitted form asks of the adapter (`interactions.Interactions`)."""

    async def run_line(self, interaction: discord.Interaction[Any], line: str) -> None: ...

    async def tip(
        self, interaction: discord.Interaction[Any], space_id: int, amount: str, message: str
    ) -> None: ...


class _HasInteractions(Protocol):
    interactions: Clicks


def clicks_of(interaction: discord.Interaction[Any]) -> Clicks:
    """Where the client an interaction arrived on sends its clicks."""
    return cast(_HasInteractions, interaction.client).interactions


def fits(line: str) -> bool:
    """Whether a command line fits in a button's custom_id."""
    return len(COMMAND_PREFIX + line) <= _CUSTOM_ID_LIMIT and "\n" not in line


class CommandButton(
    ui.DynamicItem[ui.Button[ui.View]],
    template=re.compile(r"sp:(?P<line>/[^\n]{1,97})"),
):
    """Runs a Stagepass command line as the member who clicks."""

    def __init__(
        self,
        line: str,
        label: str,
        *,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        disabled: bool = False,
    ) -> None:
        super().__init__(
            ui.Button(
                label=label[:80],
                style=style,
                custom_id=COMMAND_PREFIX + line,
                disabled=disabled,
            )
        )
        self.line = line

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> CommandButton:
        button = cast(ui.Button[ui.View], item)
        return cls(match["line"], button.label or "", style=button.style)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await clicks_of(interaction).run_line(interaction, self.line)


class TipButton(
    ui.DynamicItem[ui.Button[ui.View]],
    template=re.compile(r"sp-tip:(?P<space_id>[0-9]{1,12})"),
):
    """Opens the tip form for a Space's host."""

    def __init__(self, space_id: int) -> None:
        super().__init__(
            ui.Button(
                label="Tip",
                emoji="💸",
                style=discord.ButtonStyle.secondary,
                custom_id=f"{TIP_PREFIX}{space_id}",
            )
        )
        self.space_id = space_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> TipButton:
        return cls(int(match["space_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_modal(TipForm(self.space_id))


class TipForm(ui.Modal):
    """Amount and message of a tip; the core (billing) does the rest."""

    def __init__(self, space_id: int) -> None:
        super().__init__(title="Tip the host", custom_id=f"sp-tip-form:{space_id}", timeout=900)
        self.space_id = space_id
        self.amount: ui.TextInput[TipForm] = ui.TextInput(
            placeholder="5", max_length=12, custom_id="amount"
        )
        self.note: ui.TextInput[TipForm] = ui.TextInput(
            style=discord.TextStyle.paragraph,
            required=False,
            max_length=300,
            custom_id="message",
        )
        self.add_item(ui.Label(text="Amount", component=self.amount))
        self.add_item(ui.Label(text="Message (optional)", component=self.note))

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await clicks_of(interaction).tip(
            interaction, self.space_id, self.amount.value, self.note.value or ""
        )
