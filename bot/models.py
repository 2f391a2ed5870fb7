"""The persisted domain: communities, identities, Spaces, holds, tickets, stage state,
reminders and the audit log (SQLModel tables; schema changes go through Alembic).

A person is a platform identity `(platform, community, user_id)`; everything a person
owns (holds, tickets, reminders, stage seats) points at an `Identity` row.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from bot.clock import as_utc


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which forgets zones) and PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class Platform(enum.StrEnum):
    DISCORD = "discord"
    SLACK = "slack"
    SHELL = "shell"


class SpaceStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"
    CANCELLED = "cancelled"

    @property
    def is_open_for_sale(self) -> bool:
        return self in (SpaceStatus.SCHEDULED, SpaceStatus.LIVE)

    @property
    def is_final(self) -> bool:
        return self in (SpaceStatus.ENDED, SpaceStatus.CANCELLED)


class HoldStatus(enum.StrEnum):
    ACTIVE = "active"
    CONFIRMED = "confirmed"
    RELEASED = "released"
    EXPIRED = "expired"


class TicketStatus(enum.StrEnum):
    VALID = "valid"
    REFUNDED = "refunded"
    REVOKED = "revoked"


class StageRole(enum.StrEnum):
    LISTENER = "listener"
    SPEAKER = "speaker"


class BridgeMode(enum.StrEnum):
    """Whether a Space's Discord Stage or voice channel is bridged into its audio room.

    In a Stage channel Discord's own speaker rules decide who is heard; in a voice channel
    (no speaker rules) LISTEN mixes only the host and co-hosts, SPEAK also ticket holders
    and moderators. DEFAULT follows DISCORD_VOICE_BRIDGE (`SpaceService.bridge_mode`).
    """

    DEFAULT = "default"
    OFF = "off"
    LISTEN = "listen"
    SPEAK = "speak"


def _enum(cls: type[enum.Enum]) -> sa.Enum:
    """Stored as the enum's string value in a VARCHAR, read back as the enum."""
    return sa.Enum(
        cls,
        native_enum=False,
        length=16,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


def _dt(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


class Community(SQLModel, table=True):
    __tablename__ = "communities"

    id: str = Field(primary_key=True, max_length=120)  # "discord:1234", "shell:local"
    platform: Platform = Field(sa_type=_enum(Platform))
    external_id: str = Field(max_length=100)
    name: str = Field(default="", max_length=200)
    created_at: datetime = _dt()


class Identity(SQLModel, table=True):
    __tablename__ = "identities"
    __table_args__ = (sa.UniqueConstraint("community_id", "user_id", name="uq_identity"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: Platform = Field(sa_type=_enum(Platform))
    community_id: str = Field(foreign_key="communities.id", max_length=120)
    user_id: str = Field(max_length=100)
    display_name: str = Field(default="", max_length=200)
    tz: str = Field(default="UTC", max_length=64)
    created_at: datetime = _dt()

    @property
    def key(self) -> str:
        """`platform:community:user` — stable, printable, used in tokens and logs."""
        return f"{self.community_id}:{self.user_id}"


class Space(SQLModel, table=True):
    __tablename__ = "spaces"
    __table_args__ = (
        sa.CheckConstraint("sold >= 0 AND sold <= capacity", name="ck_space_sold"),
        sa.CheckConstraint("held >= 0 AND sold + held <= capacity", name="ck_space_held"),
        sa.CheckConstraint("price_minor >= 0", name="ck_space_price"),
        sa.Index("ix_spaces_community_start", "community_id", "starts_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(foreign_key="communities.id", max_length=120)
    host_id: int = Field(foreign_key="identities.id", index=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    starts_at: datetime = _dt()
    duration_minutes: int
    status: SpaceStatus = Field(sa_type=_enum(SpaceStatus), index=True)
    price_minor: int
    currency: str = Field(max_length=3)
    capacity: int
    sold: int = 0  # valid tickets
    held: int = Field(default=0, sa_column_kwargs={"server_default": "0"})  # active holds' seats
    per_buyer_limit: int = 1
    manual_start: bool = False
    created_at: datetime = _dt()
    updated_at: datetime = _dt()
    started_at: datetime | None = _dt(default=None, nullable=True)
    ended_at: datetime | None = _dt(default=None, nullable=True)
    cancel_reason: str | None = Field(default=None, max_length=500)
    voice_bridge: BridgeMode = Field(
        default=BridgeMode.DEFAULT,
        sa_type=_enum(BridgeMode),
        sa_column_kwargs={"server_default": BridgeMode.DEFAULT.value},
    )

    @property
    def is_free(self) -> bool:
        return self.price_minor == 0

    @property
    def taken(self) -> int:
        """Seats sold or held for a buyer who has not paid yet."""
        return self.sold + self.held

    @property
    def tickets_left(self) -> int:
        return self.capacity - self.taken


class SpaceCohost(SQLModel, table=True):
    __tablename__ = "space_cohosts"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    identity_id: int = Field(foreign_key="identities.id", primary_key=True)
    added_at: datetime = _dt()


class Hold(SQLModel, table=True):
    """Tickets reserved for a buyer until paid for or expired."""

    __tablename__ = "holds"
    __table_args__ = (sa.Index("ix_holds_status_expiry", "status", "expires_at"),)

    id: str = Field(primary_key=True, max_length=32)
    space_id: int = Field(foreign_key="spaces.id", index=True)
    buyer_id: int = Field(foreign_key="identities.id", index=True)
    quantity: int
    amount_minor: int
    currency: str = Field(max_length=3)
    status: HoldStatus = Field(sa_type=_enum(HoldStatus))
    expires_at: datetime = _dt()
    created_at: datetime = _dt()
    resolved_at: datetime | None = _dt(default=None, nullable=True)


class BuyerQuota(SQLModel, table=True):
    """How many tickets (held or issued) one buyer has for one Space: the per-buyer limit
    is enforced by a conditional upsert on this row."""

    __tablename__ = "buyer_quotas"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    buyer_id: int = Field(foreign_key="identities.id", primary_key=True)
    taken: int = 0


class PromoCode(SQLModel, table=True):
    """A discount code for one Space: a percent or an amount off each ticket, up to
    `max_uses` tickets, until `until`. `uses` moves only in the claim desk's transaction
    (`bot.services.promos.REDEEM`), so racing buyers never exceed `max_uses`."""

    __tablename__ = "promo_codes"
    __table_args__ = (
        sa.UniqueConstraint("space_id", "code", name="uq_promo_code"),
        sa.CheckConstraint("uses >= 0 AND uses <= max_uses", name="ck_promo_uses"),
    )

    id: int | None = Field(default=None, primary_key=True)
    space_id: int = Field(foreign_key="spaces.id", index=True)
    code: str = Field(max_length=32)  # upper case: codes are case-insensitive
    percent_off: int = 0  # 1..100, or 0 when amount_off_minor is set
    amount_off_minor: int = 0  # in the Space's currency
    max_uses: int
    uses: int = 0
    active: bool = True
    until: datetime | None = _dt(default=None, nullable=True)
    created_by: int = Field(foreign_key="identities.id")
    created_at: datetime = _dt()


class PromoRedemption(SQLModel, table=True):
    """Which code an unpaid or paid hold used, and for how many tickets: a hold that
    lapses or is released gives its uses back (a refund does not)."""

    __tablename__ = "promo_redemptions"

    hold_id: str = Field(foreign_key="holds.id", primary_key=True, max_length=32)
    promo_id: int = Field(foreign_key="promo_codes.id", index=True)
    quantity: int


class Ticket(SQLModel, table=True):
    __tablename__ = "tickets"

    id: str = Field(primary_key=True, max_length=32)
    space_id: int = Field(foreign_key="spaces.id", index=True)
    holder_id: int = Field(foreign_key="identities.id", index=True)
    hold_id: str = Field(foreign_key="holds.id", index=True)
    status: TicketStatus = Field(sa_type=_enum(TicketStatus))
    price_minor: int
    fee_minor: int = 0
    currency: str = Field(max_length=3)
    issued_at: datetime = _dt()
    closed_at: datetime | None = _dt(default=None, nullable=True)
    close_reason: str | None = Field(default=None, max_length=500)


class StageMember(SQLModel, table=True):
    """A person's place on a Space's stage: speaker or listener, hand, mute."""

    __tablename__ = "stage_members"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    identity_id: int = Field(foreign_key="identities.id", primary_key=True)
    role: StageRole = Field(sa_type=_enum(StageRole))
    hand_raised_at: datetime | None = _dt(default=None, nullable=True)
    muted: bool = False
    removed: bool = False
    updated_at: datetime = _dt()


class Reminder(SQLModel, table=True):
    """A listener's wish to be reminded of a Space."""

    __tablename__ = "reminders"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    identity_id: int = Field(foreign_key="identities.id", primary_key=True)
    created_at: datetime = _dt()


class AuditEntry(SQLModel, table=True):
    """Every state change: who did what to which Space, and when."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _dt()
    actor_id: int | None = Field(default=None, foreign_key="identities.id")
    action: str = Field(max_length=64, index=True)
    space_id: int | None = Field(default=None, foreign_key="spaces.id", index=True)
    subject: str = Field(default="", max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


# --- scheduling ------------------------------------------------------------------------
# Owned by scheduler/: delivered reminders (the exactly-once guard), booked slots and the
# Spaces they materialised, and APScheduler's job table (schema kept by our migrations).


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
    starts_at: datetime = _dt()
    role: str = Field(max_length=16)  # host | listener
    due_at: datetime = _dt()
    delivered_at: datetime = _dt()


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
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    price_minor: int
    currency: str = Field(max_length=3)
    capacity: int
    duration_minutes: int
    per_buyer_limit: int
    tz: str = Field(max_length=64)
    first_date: date
    local_time: time
    weekdays: str = Field(max_length=20)  # "0,3" = Monday and Thursday
    interval_weeks: int = 1
    until_date: date | None = None
    count: int | None = None
    status: SlotStatus = Field(sa_type=_enum(SlotStatus), default=SlotStatus.ACTIVE)
    materialised_until: datetime | None = _dt(default=None, nullable=True)
    created_at: datetime = _dt()
    removed_at: datetime | None = _dt(default=None, nullable=True)


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
    created_at: datetime = _dt()


apscheduler_jobs = sa.Table(
    # APScheduler 3's SQLAlchemyJobStore table, declared here so migrations own its schema
    # (the job store's own `create(checkfirst=True)` then finds it and does nothing).
    "apscheduler_jobs",
    SQLModel.metadata,
    sa.Column("id", sa.Unicode(191), primary_key=True),
    sa.Column("next_run_time", sa.Float(25), index=True),
    sa.Column("job_state", sa.LargeBinary, nullable=False),
)


# --- Discord adapter ------------------------------------------------------------------------
# Tables only adapters/discord reads and writes. Discord ids are snowflakes kept as strings.


class DiscordSpace(SQLModel, table=True):
    """Where a Space lives in Discord: its announcement, scheduled event and ticket role.

    The announcement's message id is what keeps a restart from posting it twice."""

    __tablename__ = "discord_spaces"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    guild_id: str = Field(max_length=32, index=True)
    channel_id: str | None = Field(default=None, max_length=32)
    message_id: str | None = Field(default=None, max_length=32)
    event_id: str | None = Field(default=None, max_length=32)
    role_id: str | None = Field(default=None, max_length=32)
    stage_channel_id: str | None = Field(default=None, max_length=32)
    role_alert: str | None = Field(default=None, max_length=32)  # problem last reported
    updated_at: datetime = _dt()


class DiscordRoleTask(SQLModel, table=True):
    """A ticket-role change Discord refused (or could not take yet), retried until done.

    `action` is grant or remove for one member, or delete_role (user_id "*")."""

    __tablename__ = "discord_role_tasks"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    user_id: str = Field(primary_key=True, max_length=32)
    action: str = Field(max_length=16)
    attempts: int = 0
    last_error: str = Field(default="", max_length=300)
    created_at: datetime = _dt()
    updated_at: datetime = _dt()


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
    locked_at: datetime = _dt()


# =========================================================================================
# Billing (Stripe) — owned by billing/. Stripe's objects are mapped to ours through these
# tables by their ids; no Stripe id is stored anywhere else.
# =========================================================================================


class CheckoutKind(enum.StrEnum):
    TICKET = "ticket"
    TIP = "tip"


class CheckoutStatus(enum.StrEnum):
    """A Checkout Session as we last saw it: open until Stripe says paid or expired."""

    OPEN = "open"
    PAID = "paid"
    EXPIRED = "expired"


class RefundStatus(enum.StrEnum):
    PENDING = "pending"  # owed; the Stripe call may or may not have happened yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # Stripe refused for good (e.g. disputed); needs the operator


class TipStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    EXPIRED = "expired"


class BillingEvent(SQLModel, table=True):
    """A Stripe event we acted on, stored once by its id in the transaction of its
    effect: a second delivery finds it here and changes nothing."""

    __tablename__ = "billing_events"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    object_id: str = Field(max_length=255)
    received_at: datetime = _dt()


class BillingTip(SQLModel, table=True):
    __tablename__ = "billing_tips"

    id: str = Field(primary_key=True, max_length=32)
    tipper_id: int = Field(foreign_key="identities.id", index=True)
    host_id: int = Field(foreign_key="identities.id", index=True)
    space_id: int | None = Field(default=None, foreign_key="spaces.id")
    amount_minor: int
    currency: str = Field(max_length=3)
    fee_minor: int = 0
    message: str = Field(default="", max_length=300)
    public: bool = True
    status: TipStatus = Field(sa_type=_enum(TipStatus))
    created_at: datetime = _dt()
    paid_at: datetime | None = _dt(default=None, nullable=True)


class BillingCheckout(SQLModel, table=True):
    """One Checkout Session: for a hold (tickets) or a tip, with the payment it became."""

    __tablename__ = "billing_checkouts"
    __table_args__ = (
        sa.CheckConstraint(
            "(kind = 'ticket' AND hold_id IS NOT NULL AND tip_id IS NULL) OR "
            "(kind = 'tip' AND tip_id IS NOT NULL AND hold_id IS NULL)",
            name="ck_billing_checkout_kind",
        ),
        sa.Index("ix_billing_checkouts_status_created", "status", "created_at"),
    )

    session_id: str = Field(primary_key=True, max_length=255)
    kind: CheckoutKind = Field(sa_type=_enum(CheckoutKind))
    hold_id: str | None = Field(default=None, foreign_key="holds.id", unique=True, max_length=32)
    tip_id: str | None = Field(
        default=None, foreign_key="billing_tips.id", unique=True, max_length=32
    )
    amount_minor: int
    currency: str = Field(max_length=3)
    fee_minor: int = 0
    destination: str | None = Field(default=None, max_length=255)  # connected account
    status: CheckoutStatus = Field(sa_type=_enum(CheckoutStatus))
    payment_intent_id: str | None = Field(default=None, unique=True, max_length=255)
    charge_id: str | None = Field(default=None, unique=True, max_length=255)
    test_mode: bool = False
    created_at: datetime = _dt()
    paid_at: datetime | None = _dt(default=None, nullable=True)


class BillingRefund(SQLModel, table=True):
    """A refund we owe or made: one per ticket (`ticket:ID`) or per late-paid hold
    (`hold:ID`). The key is also the Stripe Idempotency-Key, so it is made once."""

    __tablename__ = "billing_refunds"

    key: str = Field(primary_key=True, max_length=80)
    ticket_id: str | None = Field(
        default=None, foreign_key="tickets.id", unique=True, max_length=32
    )
    hold_id: str = Field(foreign_key="holds.id", index=True, max_length=32)
    payment_intent_id: str = Field(max_length=255, index=True)
    amount_minor: int
    currency: str = Field(max_length=3)
    reason: str = Field(default="", max_length=500)
    status: RefundStatus = Field(sa_type=_enum(RefundStatus), index=True)
    refund_id: str | None = Field(default=None, max_length=255)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _dt()
    updated_at: datetime = _dt()


class BillingAccount(SQLModel, table=True):
    """A host's Stripe Connect (Express) account and what Stripe last said about it."""

    __tablename__ = "billing_accounts"

    identity_id: int = Field(foreign_key="identities.id", primary_key=True)
    account_id: str = Field(unique=True, max_length=255)
    charges_enabled: bool = False
    payouts_enabled: bool = False
    details_submitted: bool = False
    currently_due: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    disabled_reason: str | None = Field(default=None, max_length=255)
    created_at: datetime = _dt()
    updated_at: datetime = _dt()


class BillingDevObject(SQLModel, table=True):
    """The keyless TEST MODE checkout's stand-in for Stripe's own records (sessions,
    payments, refunds, events), so it survives a restart. Unused with a Stripe key."""

    __tablename__ = "billing_dev_objects"

    id: str = Field(primary_key=True, max_length=255)
    object: str = Field(max_length=40, index=True)
    created: int = Field(index=True)  # unix seconds, as Stripe's `created`
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


# --- Slack adapter --------------------------------------------------------------------------
# Tables only adapters/slack reads and writes: workspaces installed through OAuth, OAuth
# states in flight, and where each Space's announcement was posted. Slack ids are strings;
# "" stands for "none" in key columns (NULLs never collide in a unique key).


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
    enterprise_name: str = Field(default="", max_length=200)
    team_id: str = Field(default="", max_length=32, index=True)
    team_name: str = Field(default="", max_length=200)
    is_enterprise_install: bool = False
    # encrypted at rest (`fernet:...`, bot/encryption.py): room for a long rotating token
    bot_token: str = Field(max_length=1000)
    bot_refresh_token: str | None = Field(default=None, max_length=1000)
    bot_token_expires_at: datetime | None = _dt(default=None, nullable=True)
    bot_id: str = Field(max_length=32)
    bot_user_id: str = Field(max_length=32)
    bot_scopes: str = Field(default="", max_length=1000)  # comma-separated
    installer_user_id: str = Field(default="", max_length=32)
    announce_channel_id: str | None = Field(default=None, max_length=32)  # picked at install
    installed_at: datetime = _dt()


class SlackOAuthState(SQLModel, table=True):
    """An OAuth `state` issued by /slack/install, consumed once by /slack/oauth_redirect."""

    __tablename__ = "slack_oauth_states"

    nonce: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = _dt(index=True)


class SlackAnnouncement(SQLModel, table=True):
    """Where a Space was announced in Slack, so the message is updated (tickets left,
    status) instead of posted again."""

    __tablename__ = "slack_announcements"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    team_id: str = Field(max_length=32, index=True)
    channel_id: str = Field(max_length=32)
    ts: str = Field(max_length=32)
    posted_at: datetime = _dt()
    updated_at: datetime = _dt()


# --- outbox ---------------------------------------------------------------------------------
# Owned by bot/outbox.py: direct messages kept until their platform's adapter delivers them.


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # not delivered yet: (re)published when `next_attempt_at` is due
    SENT = "sent"
    REFUSED = "refused"  # the platform refused for good (DMs closed, no such user)
    GAVE_UP = "gave_up"  # every attempt failed or went unanswered


class OutboxMessage(SQLModel, table=True):
    """A direct message owed to one person, kept until its adapter acknowledges it."""

    __tablename__ = "outbox_messages"
    __table_args__ = (sa.Index("ix_outbox_messages_due", "status", "platform", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: Platform = Field(sa_type=_enum(Platform))
    identity_key: str = Field(max_length=300)
    text: str = Field(sa_type=sa.Text)
    links: list[list[str]] = Field(default_factory=list, sa_type=sa.JSON)  # [label, url]
    status: OutboxStatus = Field(sa_type=_enum(OutboxStatus))
    attempts: int = 0
    created_at: datetime = _dt()
    next_attempt_at: datetime = _dt()
    sent_at: datetime | None = _dt(default=None, nullable=True)
    last_error: str | None = Field(default=None, max_length=500)
