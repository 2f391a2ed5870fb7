"""How the core's replies, announcements and direct messages look in Discord.

Every time shown (announcements, replies, DMs) is a Discord timestamp (`<t:UNIX:F>`),
which every viewer's client shows in their own zone. Autocomplete choices can't hold
markup: they show UTC, and say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import discord
import structlog

from adapters.discord.components import CommandButton, TipButton, fits
from bot.commands.times import mark_times
from bot.models import Identity, Platform, Space, SpaceStatus
from bot.replies import Button, Reply
from bot.wording import full_label, price, seats_left, space_buttons

log = structlog.get_logger(__name__)

_BRAND = discord.Colour.from_rgb(88, 101, 242)
_LIVE = discord.Colour.red()
_DONE = discord.Colour.dark_grey()
_URL_LIMIT = 512
_UTC = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Rendered:
    content: str | None = None
    embed: discord.Embed | None = None
    view: discord.ui.View | None = None

    def send_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.content:
            kwargs["content"] = self.content
        if self.embed is not None:
            kwargs["embed"] = self.embed
        if self.view is not None:
            kwargs["view"] = self.view
        return kwargs

    def edit_kwargs(self) -> dict[str, Any]:
        """Replace everything the message showed before (e.g. a "thinking…" placeholder)."""
        return {
            "content": self.content,
            "embeds": [self.embed] if self.embed is not None else [],
            "view": self.view,
        }


def mention(identity_key: str) -> str:
    """How a message names a member (`<@USER>`); the client pings nobody by default."""
    return f"<@{identity_key.rpartition(':')[2]}>"


def quote(text: str) -> str:
    """Someone's words shown as they typed them, not as Discord markdown."""
    return discord.utils.escape_markdown(text)


def timestamp(when: datetime, style: str = "F") -> str:
    """A Discord timestamp: each viewer's client renders it in their own zone."""
    return f"<t:{int(when.timestamp())}:{style}>"


def times(text: str, tz: ZoneInfo) -> str:
    """The core's times in `text` (written in the reader's zone `tz`) as Discord
    timestamps, which Discord shows in whatever zone the reader's client is in."""
    return mark_times(text, tz, timestamp)


def reply(message: Reply, tz: ZoneInfo = _UTC) -> Rendered:
    """A core reply for a reader in `tz`: plain text for errors and short answers, an embed
    when it has a title."""
    view = buttons_view(message.buttons)
    text = times(message.text, tz)
    if message.error:
        return Rendered(content=clip("⚠️ " + text, 2000), view=view)
    if message.title:
        embed = discord.Embed(
            title=clip(message.title, 256), description=clip(text, 4096), colour=_BRAND
        )
        return Rendered(embed=embed, view=view)
    return Rendered(content=clip(text, 2000), view=view)


def buttons_view(buttons: Iterable[Button]) -> discord.ui.View | None:
    view = discord.ui.View(timeout=None)
    for button in list(buttons)[:25]:
        if button.url is not None:
            if len(button.url) <= _URL_LIMIT:
                view.add_item(discord.ui.Button(label=button.label[:80], url=button.url))
            else:
                log.warning("link too long for a Discord button", label=button.label)
        elif button.command is not None:
            if fits(button.command):
                view.add_item(CommandButton(button.command, button.label))
            else:
                log.warning("command too long for a button", command=button.command)
    return view if view.children else None


def direct_message(text: str, links: Iterable[tuple[str, str]], tz: ZoneInfo = _UTC) -> Rendered:
    """A DM for a reader in `tz`: the text (its times as Discord timestamps), and each link
    as a link button (or inline when Discord refuses it)."""
    text = times(text, tz)
    view = discord.ui.View(timeout=None)
    inline = []
    for label, url in links:
        if len(url) <= _URL_LIMIT and len(view.children) < 25:
            view.add_item(discord.ui.Button(label=label[:80], url=url))
        else:
            inline.append(f"{label}: {url}")
    content = "\n".join([text, *inline])
    return Rendered(content=clip(content, 2000), view=view if view.children else None)


def announcement(space: Space, host: Identity) -> Rendered:
    """The announcement embed with Buy ticket, Remind me and Tip buttons."""
    assert space.id is not None
    status = space.status
    colour = {SpaceStatus.LIVE: _LIVE, SpaceStatus.ENDED: _DONE, SpaceStatus.CANCELLED: _DONE}
    embed = discord.Embed(
        title=clip(space.title, 256),
        description=clip(space.description, 4096) or None,
        colour=colour.get(status, _BRAND),
    )
    here = host.platform == Platform.DISCORD  # a linked community's host is named, not pinged
    embed.add_field(name="Host", value=f"<@{host.user_id}>" if here else quote(host.display_name))
    embed.add_field(
        name="Starts", value=f"{timestamp(space.starts_at)} ({timestamp(space.starts_at, 'R')})"
    )
    embed.add_field(name="Duration", value=f"{space.duration_minutes} min")
    embed.add_field(name="Price", value=price(space))
    embed.add_field(name="Tickets left", value=seats_left(space))
    match status:
        case SpaceStatus.LIVE:
            embed.add_field(name="Status", value="🔴 Live now")
        case SpaceStatus.ENDED:
            embed.add_field(name="Status", value="Ended")
        case SpaceStatus.CANCELLED:
            reason = (
                f": {space.cancel_reason}" if space.cancel_reason not in (None, "cancelled") else ""
            )
            embed.add_field(name="Status", value=clip(f"Cancelled{reason}", 1024))
    embed.set_footer(text=f"Stagepass · Space #{space.id}")
    view = discord.ui.View(timeout=None)
    for index, button in enumerate(space_buttons(space)):
        assert button.command is not None
        buying = index == 0
        full = full_label(space) if buying else None
        view.add_item(
            CommandButton(
                button.command,
                button.label,
                style=discord.ButtonStyle.primary if buying else discord.ButtonStyle.secondary,
                disabled=full is not None,
            )
        )
    if status.is_open_for_sale:
        view.add_item(TipButton(space.id))
    return Rendered(embed=embed, view=view if view.children else None)


def live(space: Space, channel: discord.abc.GuildChannel | None) -> str:
    """The public post when a Space goes live."""
    where = f" on {channel.mention}" if channel is not None else ""
    return (
        f"🔴 **{quote(space.title)}** (Space #{space.id}) is live now{where}. Ticket holders "
        "can also join with the link in their ticket."
    )


def new_speaker(space: Space, identity_key: str, name: str = "") -> str:
    """The public post when someone is made a speaker; `name` for a person from a linked
    community (not a member here, so not mentioned)."""
    who = quote(name) if name else mention(identity_key)
    return f"🎙️ {who} is now a speaker in **{quote(space.title)}**."


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
