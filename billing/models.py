"""Billing's tables (Stripe). Stripe's objects are mapped to ours through these tables by
their ids; no Stripe id is stored anywhere else.

Registered with the shared metadata through the ``stagepass.models`` entry point.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.models import enum_type, utc_field


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
    received_at: datetime = utc_field()


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
    status: TipStatus = Field(sa_type=enum_type(TipStatus))
    created_at: datetime = utc_field()
    paid_at: datetime | None = utc_field(default=None, nullable=True)


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
    kind: CheckoutKind = Field(sa_type=enum_type(CheckoutKind))
    hold_id: str | None = Field(default=None, foreign_key="holds.id", unique=True, max_length=32)
    tip_id: str | None = Field(
        default=None, foreign_key="billing_tips.id", unique=True, max_length=32
    )
    amount_minor: int
    currency: str = Field(max_length=3)
    fee_minor: int = 0
    destination: str | None = Field(default=None, max_length=255)  # connected account
    status: CheckoutStatus = Field(sa_type=enum_type(CheckoutStatus))
    payment_intent_id: str | None = Field(default=None, unique=True, max_length=255)
    charge_id: str | None = Field(default=None, unique=True, max_length=255)
    test_mode: bool = False
    created_at: datetime = utc_field()
    paid_at: datetime | None = utc_field(default=None, nullable=True)


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
    status: RefundStatus = Field(sa_type=enum_type(RefundStatus), index=True)
    refund_id: str | None = Field(default=None, max_length=255)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()


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
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()


class BillingDevObject(SQLModel, table=True):
    """The keyless TEST MODE checkout's stand-in for Stripe's own records (sessions,
    payments, refunds, events), so it survives a restart. Unused with a Stripe key."""

    __tablename__ = "billing_dev_objects"

    id: str = Field(primary_key=True, max_length=255)
    object: str = Field(max_length=40, index=True)
    created: int = Field(index=True)  # unix seconds, as Stripe's `created`
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
