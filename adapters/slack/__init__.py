"""The Slack adapter: slash commands, Block Kit announcements, modals, App Home and DMs,
for one workspace (SLACK_BOT_TOKEN) or many (OAuth), on slack-bolt's AsyncApp.

`package` (the ``stagepass.packages`` entry point) installs it; it does nothing unless
Slack is set up. Operators: see adapters/slack/README.md and adapters/slack/manifest.yml.
"""

from __future__ import annotations

import asyncio

from adapters.slack.app import SlackAdapter
from adapters.slack.config import SlackConfig
from bot.host import Host, Package

__all__ = ["SlackAdapter", "SlackConfig", "install", "package"]


async def install(host: Host) -> None:
    """Add Slack to `host`: its routes, event subscribers and background job.

    Raises `ConfigError` when the Slack settings are only half there."""
    config = SlackConfig.from_settings(host.settings)
    if config is None:
        return
    adapter = SlackAdapter(host.core, host.dispatcher, config)
    host.add_router(adapter.router())

    async def slack(stop: asyncio.Event) -> None:
        await adapter.run(stop)

    host.add_background(slack)
    host.add_mode("slack")


package = Package("slack", install)
"""The ``stagepass.packages`` entry point."""
