"""What each part that mirrors a Space into a Discord server works with: the announcement
(`Announcer`), the ticket-holder role (`TicketRoles`), the scheduled event and the Stage
(`StageSync`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import discord

    from adapters.discord.alerts import Alerts
    from adapters.discord.config import DiscordConfig
    from adapters.discord.store import DiscordStore
    from bot.core import Core


@dataclass(eq=False, repr=False)
class Mirror:
    """The core it reads, the client it writes through, the settings, the adapter's own
    rows, and `alerts` for telling the host and moderators what Discord refused."""

    core: Core
    client: discord.Client
    config: DiscordConfig
    store: DiscordStore
    alerts: Alerts
