"""The scheduler's tables: delivered reminders (the exactly-once guard), booked slots and
the Spaces they materialised, and APScheduler's job table (schema kept by our migrations).

Registered with the shared metadata through the ``stagepass.models`` entry point, so
Alembic sees them without the core naming this package.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.models import (
    DESCRIPTION_LENGTH,
    TITLE_LENGTH,
    UTCDateTime,
    Visibility,
    enum_type,
    utc_field,
)


class ReminderDelivery(SQLModel, table=True):
    """One reminder that reached one person. The unique key makes delivery exactly-once:
    the row is inserted in the transaction that decides to send, and a second attempt
    (a restart, a failover, the catch-up sweep) inserts nothing and sends nothing.

    `starts_at` is the start the reminder was for: when a Space moves, its reminders are
    due again for the new time."""

    __tablename__ = "reminder_deliveries"
    __table_args__ = (
        sa.UniqueConstraint(
            "space_id", "identity_id", "offset_minutes", "starts_at", name="uq_reminder_delivery"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    space_id: int = Field(foreign_key="spaces.id")  # led by the unique key's index
    identity_id: int = Field(foreign_key="identities.id")
    offset_minutes: int
    starts_at: datetime = utc_field()
    role: str = Field(max_length=16)  # host | listener
    due_at: datetime = utc_field()
    delivered_at: datetime = utc_field()


class SlotStatus(enum.StrEnum):
    ACTIVE = "active"
    FINISHED = "finished"
    REMOVED = "removed"


class SlotSeries(SQLModel, table=True):
    """A booked slot: one-off (`count` 1) or weekly on some days, every N weeks, until a
    local date or for N occurrences. Times recur in the series' own zone, so 18:00 stays
    18:00 across daylight-saving changes."""

    __tablename__ = "slot_series"
    __table_args__ = (sa.Index("ix_slot_series_host_status", "host_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(foreign_key="communities.id", max_length=120)
    host_id: int = Field(foreign_key="identities.id")
    title: str = Field(max_length=TITLE_LENGTH)
    description: str = Field(default="", max_length=DESCRIPTION_LENGTH)
    price_minor: int
    currency: str = Field(max_length=3)
    capacity: int
    duration_minutes: int
    per_buyer_limit: int
    visibility: Visibility = Field(  # its Spaces': listed, or invite-only
        default=Visibility.PUBLIC,
        sa_type=enum_type(Visibility),
        sa_column_kwargs={"server_default": Visibility.PUBLIC.value},
    )
    tz: str = Field(max_length=64)
    first_date: date
    local_time: time
    weekdays: str = Field(max_length=20)  # "0,3" = Monday and Thursday
    interval_weeks: int = 1
    until_date: date | None = None
    count: int | None = None
    status: SlotStatus = Field(sa_type=enum_type(SlotStatus), default=SlotStatus.ACTIVE)
    materialised_until: datetime | None = utc_field(default=None, nullable=True)
    created_at: datetime = utc_field()
    removed_at: datetime | None = utc_field(default=None, nullable=True)


class SlotOccurrence(SQLModel, table=True):
    """One occurrence of a series, claimed before its Space is created (so materialising
    twice never creates two Spaces), with the Space or the reason it was skipped."""

    __tablename__ = "slot_occurrences"
    __table_args__ = (sa.UniqueConstraint("space_id", name="uq_slot_occurrence_space"),)

    series_id: int = Field(foreign_key="slot_series.id", primary_key=True)
    starts_at: datetime = Field(sa_type=UTCDateTime, primary_key=True)
    space_id: int | None = Field(default=None, foreign_key="spaces.id")
    status: str = Field(max_length=16)  # pending | created | skipped | removed
    note: str = Field(default="", max_length=300)
    created_at: datetime = utc_field()


apscheduler_jobs = sa.Table(
    # APScheduler 3's SQLAlchemyJobStore table, declared here so migrations own its schema
    # (the job store's own `create(checkfirst=True)` then finds it and does nothing).
    "apscheduler_jobs",
    SQLModel.metadata,
    sa.Column("id", sa.Unicode(191), primary_key=True),
    sa.Column("next_run_time", sa.Float(25), index=True),
    sa.Column("job_state", sa.LargeBinary, nullable=False),
)
