"""The persisted domain: communities, identities, Spaces, holds, tickets, stage state,
reminders and the audit log (SQLModel tables; schema changes go through Alembic).

A person is a platform identity `(platform, community, user_id)`; everything a person
owns (holds, tickets, reminders, stage seats) points at an `Identity` row.

Only the core's tables live here. Each outer package keeps its own in its `models`
module (scheduler, billing, the Discord and Slack adapters), built with the column
helpers below (`UTCDateTime`, `enum_type`, `utc_field`) and registered as a
``stagepass.models`` entry point, which Alembic's env loads (`bot.host.load_models`).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from bot.clock import as_utc
from bot.errors import NUL


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
    MATRIX = "matrix"


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


class Visibility(enum.StrEnum):
    """PUBLIC Spaces are listed and have a public page; INVITE ones are reached only
    through an invite link (`/space invite`)."""

    PUBLIC = "public"
    INVITE = "invite"


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


def enum_type(cls: type[enum.Enum]) -> sa.Enum:
    """Stored as the enum's string value in a VARCHAR, read back as the enum."""
    return sa.Enum(
        cls,
        native_enum=False,
        length=16,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


def utc_field(**kw: Any) -> Any:
    """A field stored as an aware UTC datetime (`UTCDateTime`); `kw` go to `Field`."""
    return Field(sa_type=UTCDateTime, **kw)


NAME_LENGTH = 200
"""Characters a name a platform gives (a person's display name, a community's name) is
stored in. Matrix sets no limit on either: a longer one is cut (`platform_name`), never
refused, as nobody typed it as a command."""


def platform_name(text: str) -> str:
    """A name a platform gave, as it is stored: its NULs dropped (PostgreSQL stores none)
    and cut to `NAME_LENGTH`."""
    return text.replace(NUL, "")[:NAME_LENGTH]


class Community(SQLModel, table=True):
    __tablename__ = "communities"

    id: str = Field(primary_key=True, max_length=120)  # "discord:1234", "shell:local"
    platform: Platform = Field(sa_type=enum_type(Platform))
    external_id: str = Field(max_length=100)
    name: str = Field(default="", max_length=NAME_LENGTH)
    created_at: datetime = utc_field()


class CommunityLink(SQLModel, table=True):
    """Two communities one host runs, linked from both sides (`/community link`): a Space
    of one may be announced in the other (`also:`). Stored once, `first_id < second_id`."""

    __tablename__ = "community_links"
    __table_args__ = (sa.CheckConstraint("first_id < second_id", name="ck_community_link_order"),)

    first_id: str = Field(foreign_key="communities.id", primary_key=True, max_length=120)
    second_id: str = Field(foreign_key="communities.id", primary_key=True, max_length=120)
    linked_by: int = Field(foreign_key="identities.id")  # who confirmed with the code
    created_at: datetime = utc_field()


class CommunityLinkCode(SQLModel, table=True):
    """A one-time code from `/community link`, entered on the other side to confirm."""

    __tablename__ = "community_link_codes"

    code: str = Field(primary_key=True, max_length=16)
    community_id: str = Field(foreign_key="communities.id", max_length=120)
    created_by: int = Field(foreign_key="identities.id")
    expires_at: datetime = utc_field(index=True)


class Identity(SQLModel, table=True):
    __tablename__ = "identities"
    __table_args__ = (sa.UniqueConstraint("community_id", "user_id", name="uq_identity"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: Platform = Field(sa_type=enum_type(Platform))
    community_id: str = Field(foreign_key="communities.id", max_length=120)
    user_id: str = Field(max_length=100)
    display_name: str = Field(default="", max_length=NAME_LENGTH)
    tz: str = Field(default="UTC", max_length=64)
    created_at: datetime = utc_field()

    @property
    def key(self) -> str:
        """`platform:community:user` — stable, printable, used in tokens and logs."""
        return f"{self.community_id}:{self.user_id}"


MAX_ID = 2**31 - 1
"""The largest id (and whole number) an INTEGER column holds on PostgreSQL (SQLite's hold
64 bits). Ids and counts people type are bounded by it at the edges (chat, HTTP), so a
number no row can have is refused there, never a database error."""


def row_id(text: str) -> int | None:
    """``text`` as an id a row can have, or None: decimal digits only (any script's, as
    `int` reads them; ``"²".isdigit()`` is true, but ``int("²")`` fails), 1 to `MAX_ID`."""
    if text.isdecimal() and len(text) <= 10 and 1 <= int(text) <= MAX_ID:
        return int(text)
    return None


TITLE_LENGTH = 200
"""Characters a Space's (and a slot's) title is stored in; `STAGEPASS_MAX_TITLE_LENGTH` may
only lower the limit people meet."""
DESCRIPTION_LENGTH = 2000
"""Characters a Space's (and a slot's) description is stored in: the limit people meet."""


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
    title: str = Field(max_length=TITLE_LENGTH)
    description: str = Field(default="", max_length=DESCRIPTION_LENGTH)
    starts_at: datetime = utc_field()
    duration_minutes: int
    status: SpaceStatus = Field(sa_type=enum_type(SpaceStatus), index=True)
    price_minor: int
    currency: str = Field(max_length=3)
    capacity: int
    sold: int = 0  # valid tickets
    held: int = Field(default=0, sa_column_kwargs={"server_default": "0"})  # active holds' seats
    per_buyer_limit: int = 1
    manual_start: bool = False
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    started_at: datetime | None = utc_field(default=None, nullable=True)
    ended_at: datetime | None = utc_field(default=None, nullable=True)
    cancel_reason: str | None = Field(default=None, max_length=500)
    voice_bridge: BridgeMode = Field(
        default=BridgeMode.DEFAULT,
        sa_type=enum_type(BridgeMode),
        sa_column_kwargs={"server_default": BridgeMode.DEFAULT.value},
    )
    visibility: Visibility = Field(
        default=Visibility.PUBLIC,
        sa_type=enum_type(Visibility),
        sa_column_kwargs={"server_default": Visibility.PUBLIC.value},
    )
    # Replays: days after the end that holders may play the recordings (None: the
    # STAGEPASS_REPLAY_DAYS default); when the scheduled job deleted them, past that.
    replay_days: int | None = None
    replays_deleted_at: datetime | None = utc_field(default=None, nullable=True)

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


class SpaceShare(SQLModel, table=True):
    """A linked community a Space is announced in besides its own: its people see and buy
    the same seats ("Space #12" resolves there too)."""

    __tablename__ = "space_communities"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    community_id: str = Field(
        foreign_key="communities.id", primary_key=True, max_length=120, index=True
    )
    created_at: datetime = utc_field()


class SpaceCohost(SQLModel, table=True):
    __tablename__ = "space_cohosts"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    identity_id: int = Field(foreign_key="identities.id", primary_key=True)
    added_at: datetime = utc_field()


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
    status: HoldStatus = Field(sa_type=enum_type(HoldStatus))
    expires_at: datetime = utc_field()
    created_at: datetime = utc_field()
    resolved_at: datetime | None = utc_field(default=None, nullable=True)


class BuyerQuota(SQLModel, table=True):
    """How many tickets (held or issued) one buyer has for one Space: the per-buyer limit
    is enforced by a conditional upsert on this row."""

    __tablename__ = "buyer_quotas"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    buyer_id: int = Field(foreign_key="identities.id", primary_key=True)
    taken: int = 0


class PromoCode(SQLModel, table=True):
    """A discount code for one Space: a percent or an amount off each ticket, up to
    `max_uses` tickets, until `until`. `uses` moves only in the claim batcher's transaction
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
    until: datetime | None = utc_field(default=None, nullable=True)
    created_by: int = Field(foreign_key="identities.id")
    created_at: datetime = utc_field()


class PromoRedemption(SQLModel, table=True):
    """Which code an unpaid or paid hold used, and for how many tickets: a hold that
    lapses or is released gives its uses back (a refund does not)."""

    __tablename__ = "promo_redemptions"

    hold_id: str = Field(foreign_key="holds.id", primary_key=True, max_length=32)
    promo_id: int = Field(foreign_key="promo_codes.id", index=True)
    quantity: int


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"  # in line for a seat
    OFFERED = "offered"  # a freed seat was held for them (`hold_id`)
    LEFT = "left"  # they left the line (or no longer may take a seat)


class WaitlistEntry(SQLModel, table=True):
    """One person in line for a sold-out Space; the line is first come, first served
    (`id` order). Owned by `bot.services.waitlist`: seats move only through the claim
    batcher's conditional seat update (`claims.TAKE_SEATS`)."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        sa.Index("ix_waitlist_line", "space_id", "status", "id"),
        sa.Index(
            "uq_waitlist_waiting",
            "space_id",
            "identity_id",
            unique=True,
            sqlite_where=sa.text("status = 'waiting'"),
            postgresql_where=sa.text("status = 'waiting'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    space_id: int = Field(foreign_key="spaces.id")
    identity_id: int = Field(foreign_key="identities.id", index=True)
    status: WaitlistStatus = Field(sa_type=enum_type(WaitlistStatus))
    joined_at: datetime = utc_field()
    offered_at: datetime | None = utc_field(default=None, nullable=True)
    hold_id: str | None = Field(default=None, foreign_key="holds.id", max_length=32)


class InviteLink(SQLModel, table=True):
    """An invite link to an invite-only (or any) Space: a signed token names `id`; each
    redemption takes uses in the claim's transaction, so racing redeemers never take
    more than `max_uses`, nor any once it is revoked (`bot.services.invites.take`)."""

    __tablename__ = "invite_links"
    __table_args__ = (sa.CheckConstraint("uses >= 0 AND uses <= max_uses", name="ck_invite_uses"),)

    id: str = Field(primary_key=True, max_length=32)
    space_id: int = Field(foreign_key="spaces.id", index=True)
    max_uses: int
    uses: int = 0
    created_by: int = Field(foreign_key="identities.id")
    created_at: datetime = utc_field()
    #: when the host withdrew it (`/space invite SPACE revoke:ID`): redemptions are refused
    revoked_at: datetime | None = utc_field(default=None, nullable=True)


class InviteRedemption(SQLModel, table=True):
    """Which invite a hold came through: a hold that lapses or is released unpaid gives
    its use back (as promo codes do)."""

    __tablename__ = "invite_redemptions"

    hold_id: str = Field(foreign_key="holds.id", primary_key=True, max_length=32)
    invite_id: str = Field(foreign_key="invite_links.id", index=True, max_length=32)
    quantity: int


class StageInvite(SQLModel, table=True):
    """Someone the host invited to speak: they become a speaker when they join."""

    __tablename__ = "stage_invites"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    identity_id: int = Field(foreign_key="identities.id", primary_key=True)
    invited_by: int = Field(foreign_key="identities.id")
    created_at: datetime = utc_field()


class Ticket(SQLModel, table=True):
    __tablename__ = "tickets"

    id: str = Field(primary_key=True, max_length=32)
    space_id: int = Field(foreign_key="spaces.id", index=True)
    holder_id: int = Field(foreign_key="identities.id", index=True)
    hold_id: str = Field(foreign_key="holds.id", index=True)
    status: TicketStatus = Field(sa_type=enum_type(TicketStatus))
    price_minor: int
    fee_minor: int = 0
    currency: str = Field(max_length=3)
    issued_at: datetime = utc_field()
    closed_at: datetime | None = utc_field(default=None, nullable=True)
    close_reason: str | None = Field(default=None, max_length=500)


class StageMember(SQLModel, table=True):
    """A person's place on a Space's stage: speaker or listener, hand, mute."""

    __tablename__ = "stage_members"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    identity_id: int = Field(foreign_key="identities.id", primary_key=True)
    role: StageRole = Field(sa_type=enum_type(StageRole))
    hand_raised_at: datetime | None = utc_field(default=None, nullable=True)
    muted: bool = False
    removed: bool = False
    updated_at: datetime = utc_field()


class Reminder(SQLModel, table=True):
    """A listener's wish to be reminded of a Space."""

    __tablename__ = "reminders"

    space_id: int = Field(foreign_key="spaces.id", primary_key=True)
    identity_id: int = Field(foreign_key="identities.id", primary_key=True)
    created_at: datetime = utc_field()


class AuditEntry(SQLModel, table=True):
    """Every state change: who did what to which Space, and when."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_field()
    actor_id: int | None = Field(default=None, foreign_key="identities.id")
    action: str = Field(max_length=64, index=True)
    space_id: int | None = Field(default=None, foreign_key="spaces.id", index=True)
    subject: str = Field(default="", max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


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
    platform: Platform = Field(sa_type=enum_type(Platform))
    identity_key: str = Field(max_length=300)
    text: str = Field(sa_type=sa.Text)
    links: list[list[str]] = Field(default_factory=list, sa_type=sa.JSON)  # [label, url]
    status: OutboxStatus = Field(sa_type=enum_type(OutboxStatus))
    attempts: int = 0
    created_at: datetime = utc_field()
    next_attempt_at: datetime = utc_field()
    sent_at: datetime | None = utc_field(default=None, nullable=True)
    last_error: str | None = Field(default=None, max_length=500)
