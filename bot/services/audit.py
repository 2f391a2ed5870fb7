"""The audit log: every state change, written in the transaction that made it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.models import AuditEntry


def entry(
    clock: Clock,
    action: str,
    *,
    actor_id: int | None = None,
    space_id: int | None = None,
    subject: str = "",
    **details: Any,
) -> AuditEntry:
    return AuditEntry(
        at=clock.now(),
        actor_id=actor_id,
        action=action,
        space_id=space_id,
        subject=subject,
        details={k: v for k, v in details.items() if v is not None},
    )


def record(
    session: AsyncSession,
    clock: Clock,
    action: str,
    *,
    actor_id: int | None = None,
    space_id: int | None = None,
    subject: str = "",
    **details: Any,
) -> None:
    """Add one entry to the caller's ORM session."""
    session.add(
        entry(clock, action, actor_id=actor_id, space_id=space_id, subject=subject, **details)
    )


async def record_many(conn: AsyncConnection, entries: Sequence[AuditEntry]) -> None:
    """Write many entries in the caller's transaction, in one statement."""
    if entries:
        await conn.execute(sa.insert(AuditEntry), [e.model_dump(exclude={"id"}) for e in entries])
