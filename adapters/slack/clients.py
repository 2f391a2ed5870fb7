"""Web API clients: Bolt's (it hands each request a copy with the workspace's token) and
those for the work Stagepass starts itself (DMs, announcements, App Home), where no
Slack request brings a client along: one per workspace, with its bot token.

The base URL is Slack's unless SLACK_API_BASE points the client at a local fake.
"""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.config import SlackConfig
from adapters.slack.installations import InstallationStore

SLACK_API = "https://slack.com/api/"


class WebClients:
    def __init__(self, config: SlackConfig, store: InstallationStore | None) -> None:
        self.config = config
        self.store = store
        self.base_url = config.api_base or SLACK_API

    def client(self, token: str | None = None) -> AsyncWebClient:
        """A client that waits out Slack's rate limits (bursts of announcement edits and
        App Home refreshes) and retries a dropped connection once."""
        return AsyncWebClient(
            token=token,
            base_url=self.base_url,
            timeout=10,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(max_retry_count=1),
                AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            ],
        )

    async def token_for(self, team_id: str) -> str | None:
        if self.store is None:
            return self.config.bot_token
        row = await self.store.installation_for_team(team_id)
        return row.bot_token if row is not None else None

    async def for_team(self, team_id: str) -> AsyncWebClient | None:
        """A client for `team_id`, or None when Stagepass is not installed there."""
        token = await self.token_for(team_id)
        return self.client(token) if token else None

    async def announce_channel(self, team_id: str) -> str | None:
        """Where Spaces are announced in `team_id`: the channel picked at install, else
        SLACK_ANNOUNCE_CHANNEL."""
        if self.store is not None:
            row = await self.store.installation_for_team(team_id)
            if row is not None and row.announce_channel_id:
                return row.announce_channel_id
        return self.config.announce_channel
