"""The Slack adapter's tables: workspaces installed through OAuth, OAuth states in flight,
and where each Space's announcement was posted. Slack ids are strings; "" stands for
"none" in key columns (NULLs never collide in a unique key).

Registered with the shared metadata through the ``stagepass.models`` entry point.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.models import NAME_LENGTH, utc_field


class SlackInstallation(SQLModel, table=True):
    """A workspace (or Enterprise Grid org) that installed the app: its bot token.

    Only the multi-workspace (OAuth) mode writes here; the single-workspace mode reads its
    token from SLACK_BOT_TOKEN."""

    __tablename__ = "slack_installations"
    __table_args__ = (
        sa.UniqueConstraint("enterprise_id", "team_id", name="uq_slack_installation"),
    )

    id: int | None = Field(default=None, primary_key=True)
    app_id: str = Field(default="", max_length=32)
    enterprise_id: str = Field(default="", max_length=32)
    enterprise_name: str = Field(default="", max_length=NAME_LENGTH)
    team_id: str = Field(default="", max_length=32, index=True)
    team_name: str = Field(default="", max_length=NAME_LENGTH)
    is_enterprise_install: bool = False
    # encrypted at rest (`fernet:...`, bot/encryption.py): room for a long rotating token
    bot_token: str = Field(max_length=1000)
    bot_refresh_token: str | None = Field(default=None, max_length=1000)
    bot_token_expires_at: datetime | None = utc_field(default=None, nullable=True)
    bot_id: str = Field(max_length=32)
    bot_user_id: str = Field(max_length=32)
    bot_scopes: str = Field(default="", max_length=1000)  # comma-separated
    installer_user_id: str = Field(default="", max_length=32)
    announce_channel_id: str | None = Field(default=None, max_length=32)  # picked at install
    installed_at: datetime = utc_field()


class SlackOAuthState(SQLModel, table=True):
    """An OAuth `state` issued by /slack/install, consumed once by /slack/oauth_redirect."""

    __tablename__ = "slack_oauth_states"

    nonce: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = utc_field(index=True)


class SlackAnnouncement(SQLModel, table=True):
    """Where a Space was announced in one Slack workspace (a row in each linked workspace
    that shows it), so the message is updated (tickets left, status) instead of posted
    again."""

    __tablename__ = "slack_announcements"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    team_id: str = Field(max_length=32, primary_key=True, index=True)
    channel_id: str = Field(max_length=32)
    ts: str = Field(max_length=32)
    posted_at: datetime = utc_field()
    updated_at: datetime = utc_field()
