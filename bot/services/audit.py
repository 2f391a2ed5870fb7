"""The audit log: every state change, written in the transaction that made it."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.models import AuditEntry


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
    session.add(
        AuditEntry(
            at=clock.now(),
            actor_id=actor_id,
            action=action,
            space_id=space_id,
            subject=subject,
            details={k: v for k, v in details.items() if v is not None},
        )
    )
