"""The Matrix adapter's tables: where each Space's announcement was posted (so it is
edited, not posted again) and the direct room the bot opened with each person.

Registered with the shared metadata through the ``stagepass.models`` entry point.
"""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class MatrixAnnouncement(SQLModel, table=True):
    """A Space's card in an announcement room (one a room that shows it): its event,
    edited as the Space changes."""

    __tablename__ = "matrix_announcements"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    room_id: str = Field(max_length=255, primary_key=True)
    event_id: str = Field(max_length=255)


class MatrixDirectRoom(SQLModel, table=True):
    """The direct room the bot opened with a person, for their DMs."""

    __tablename__ = "matrix_direct_rooms"

    user_id: str = Field(primary_key=True, max_length=255)
    room_id: str = Field(max_length=255)
