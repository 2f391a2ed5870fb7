"""The Slack adapter: slash commands, Block Kit announcements, modals, App Home and DMs,
for one workspace (SLACK_BOT_TOKEN) or many (OAuth), on slack-bolt's AsyncApp.

`install(stagepass)` is what the wiring calls; it does nothing unless Slack is set up.
Operators: see adapters/slack/README.md and adapters/slack/manifest.yml.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from adapters.slack.app import SlackAdapter
from adapters.slack.config import SlackConfig

if TYPE_CHECKING:
    from bot.wiring import Stagepass

__all__ = ["SlackAdapter", "SlackConfig", "install"]


async def install(stagepass: Stagepass) -> None:
    """Add Slack to `stagepass`: its routes, event subscribers and background job.

    Raises `ConfigError` when the Slack settings are only half there."""
    config = SlackConfig.from_settings(stagepass.settings)
    if config is None:
        return
    adapter = SlackAdapter(stagepass.core, stagepass.dispatcher, config)
    stagepass.routers.append(adapter.router())

    async def slack(stop: asyncio.Event) -> None:
        await adapter.run(stop)

    stagepass.background.append(slack)
    stagepass.modes.append("slack")
