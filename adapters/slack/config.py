"""What the Slack adapter is told by the settings, checked once at start-up.

    single workspace   SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET       (the simple default)
    many workspaces    SLACK_CLIENT_ID + SLACK_CLIENT_SECRET + SLACK_STATE_SECRET
                       + SLACK_SIGNING_SECRET                       (OAuth install flow)
    Socket Mode        SLACK_APP_TOKEN with either of the above     (development)

`SlackConfig.from_settings` returns None when none of these is set (Slack is off) and
raises `ConfigError` naming the variable when they are set half-way.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import ConfigError
from bot.settings import Settings, plain_of, secret_of

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
EVENTS_PATH = "/slack/events"
#: Slack's largest payloads (a view submission with its blocks) are well under this.
MAX_BODY_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class SlackConfig:
    signing_secret: str | None
    bot_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    state_secret: str | None = None
    app_token: str | None = None
    announce_channel: str | None = None
    moderator_group: str | None = None
    api_base: str | None = None
    public_url: str = "http://127.0.0.1:8080"

    @property
    def multi_workspace(self) -> bool:
        """OAuth install flow with tokens in the database (else one bot token)."""
        return self.client_id is not None

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    @property
    def http_events(self) -> bool:
        """Whether `/slack/events` is served: only with a signing secret to check."""
        return self.signing_secret is not None

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackConfig | None:
        bot_token = secret_of(settings.slack_bot_token)
        signing_secret = secret_of(settings.slack_signing_secret)
        client_id = plain_of(settings.slack_client_id)
        client_secret = secret_of(settings.slack_client_secret)
        state_secret = secret_of(settings.slack_state_secret)
        app_token = secret_of(settings.slack_app_token)
        if not any((bot_token, signing_secret, client_id, client_secret, app_token)):
            return None
        if bot_token and (client_id or client_secret):
            raise ConfigError(
                "Setting SLACK_BOT_TOKEN: set either SLACK_BOT_TOKEN (one workspace) or "
                "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (many workspaces), not both"
            )
        if client_id or client_secret:
            if not client_id:
                raise ConfigError("Setting SLACK_CLIENT_ID: needed with SLACK_CLIENT_SECRET")
            if not client_secret:
                raise ConfigError("Setting SLACK_CLIENT_SECRET: needed with SLACK_CLIENT_ID")
            if not state_secret or len(state_secret) < 16:
                raise ConfigError(
                    "Setting SLACK_STATE_SECRET: the OAuth install flow needs a random "
                    "string of at least 16 characters"
                )
        elif not bot_token:
            raise ConfigError(
                "Setting SLACK_BOT_TOKEN: Slack needs a bot token (one workspace) or "
                "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (many workspaces)"
            )
        if bot_token and not bot_token.startswith("xoxb-"):
            raise ConfigError("Setting SLACK_BOT_TOKEN: must be a bot token (xoxb-...)")
        if app_token and not app_token.startswith("xapp-"):
            raise ConfigError("Setting SLACK_APP_TOKEN: must be an app-level token (xapp-...)")
        if not signing_secret and not app_token:
            raise ConfigError(
                "Setting SLACK_SIGNING_SECRET: needed to check the requests Slack sends "
                "to /slack/events (Basic Information > App Credentials)"
            )
        api_base = plain_of(settings.slack_api_base)
        if api_base and not api_base.endswith("/"):
            api_base += "/"
        return cls(
            signing_secret=signing_secret,
            bot_token=bot_token,
            client_id=client_id,
            client_secret=client_secret,
            state_secret=state_secret,
            app_token=app_token,
            announce_channel=plain_of(settings.slack_announce_channel),
            moderator_group=plain_of(settings.slack_moderator_group),
            api_base=api_base,
            public_url=settings.resolved_public_url,
        )
