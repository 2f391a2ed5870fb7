"""The Discord adapter's tables: where each Space lives in Discord, ticket-role changes
still owed, and the one Space live per Stage channel. Discord ids are snowflakes kept as
strings.

Registered with the shared metadata through the ``stagepass.models`` entry point (this
module imports no discord.py, so Alembic loads it cheaply).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from bot.models import utc_field


class DiscordSpace(SQLModel, table=True):
    """Where a Space lives in one Discord server: its announcement, scheduled event and
    ticket role (a Space shown in two linked servers has a row in each); the Stage only in
    the server it is run from (`CommunityService.run_from`).

    The announcement's message id is what keeps a restart from posting it twice."""

    __tablename__ = "discord_spaces"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    guild_id: str = Field(max_length=32, primary_key=True, index=True)
    channel_id: str | None = Field(default=None, max_length=32)
    message_id: str | None = Field(default=None, max_length=32)
    event_id: str | None = Field(default=None, max_length=32)
    role_id: str | None = Field(default=None, max_length=32)
    stage_channel_id: str | None = Field(default=None, max_length=32)
    role_alert: str | None = Field(default=None, max_length=32)  # problem last reported
    updated_at: datetime = utc_field()


class DiscordRoleTask(SQLModel, table=True):
    """A ticket-role change Discord refused (or could not take yet) in one server, retried
    until done.

    `action` is grant or remove for one member, or delete_role (user_id "*")."""

    __tablename__ = "discord_role_tasks"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    guild_id: str = Field(max_length=32, primary_key=True)
    user_id: str = Field(primary_key=True, max_length=32)
    action: str = Field(max_length=16)
    attempts: int = 0
    last_error: str = Field(default="", max_length=300)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()


class DiscordStageLock(SQLModel, table=True):
    """The one Space live on a Stage (or bridged voice) channel: taken in the transaction
    that starts it, so a second start there is refused; a lock whose Space is no longer
    live is free. `everyone_before` is @everyone's Connect overwrite before the Stage was
    locked to ticket holders ("allow", "deny", "unset"; "" while not locked yet), put
    back at the end."""

    __tablename__ = "discord_stage_locks"

    channel_id: str = Field(primary_key=True, max_length=32)
    guild_id: str = Field(max_length=32)
    space_id: int = Field(foreign_key="spaces.id", index=True)
    everyone_before: str = Field(default="", max_length=8)
    locked_at: datetime = utc_field()
