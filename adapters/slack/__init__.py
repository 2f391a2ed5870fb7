"""The Slack adapter: slash commands, Block Kit announcements, modals, App Home and DMs,
for one workspace (SLACK_BOT_TOKEN) or many (OAuth), on slack-bolt's AsyncApp.

`package` (the ``stagepass.packages`` entry point) installs it; it does nothing unless
Slack is set up. Operators: see adapters/slack/README.md and adapters/slack/manifest.yml.

    adapters/slack/
      app.py            SlackAdapter: Bolt's AsyncApp, our listeners, the HTTP routes
      config.py         SlackConfig: what the settings say, checked at start-up
      signatures.py     the request signature, over the raw bytes
      payloads.py       a signed request's body as Slack sends it, or 400
      interactions.py   Slack -> core (slash commands, buttons, modals), within 3 s
      messages.py       slash-command text <-> the core's command lines
      notifier.py       core events -> Slack (DMs, announcements, thanks)
      announcements.py  each Space's announcement, kept current
      home.py           the App Home tab
      modals.py         "Host a Space" and "Tip the host"
      blocks.py         Block Kit pieces
      people.py         who someone is in Slack (name, zone, moderator)
      clients.py        Web API clients (per workspace token)
      installations.py  OAuth installs and states; models.py their tables
      tasks.py          the work after the ack, and who owns it
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
