"""Uses counted in the claim's transaction: what invite links and promo codes share.

A counted thing (an `InviteLink`, a `PromoCode`) is a row with `uses` and `max_uses`. A
claim takes its uses with ONE conditional UPDATE in the claim's transaction, so racing
claims never take more than `max_uses` (the row lock it takes, and PostgreSQL's re-check
of the WHERE after waiting for it, keep them out); the claim records a redemption row
(`hold_id`, `quantity`, and the counted row's id). When an unpaid hold lapses or is
released, its redemption row is deleted and its uses go back, in the release's
transaction. A refund gives nothing back. A claim that takes uses of two rows (an invite
link and a promo code) and is refused by the second puts the first's back (`put_back`)
before its transaction commits: all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class UseCounter:
    """The counted table, its redemptions, and the redemptions' column naming the row."""

    counted: sa.Table
    redemptions: sa.Table
    counted_id: str

    async def take(
        self,
        conn: AsyncConnection,
        quantity: int,
        *where: sa.ColumnElement[bool],
        returning: tuple[sa.ColumnElement[object], ...] = (),
    ) -> sa.Row[tuple[object, ...]] | None:
        """Take `quantity` uses of the row `where` picks, if that many are left: the
        `returning` columns of the row taken, or None when nothing was taken."""
        uses = self.counted.c.uses
        return (
            await conn.execute(
                sa.update(self.counted)
                .where(*where, uses + quantity <= self.counted.c.max_uses)
                .values(uses=uses + quantity)
                .returning(self.counted.c.id, *returning)
            )
        ).first()

    async def give_back(self, conn: AsyncConnection, hold_id: str) -> None:
        """An unpaid hold's uses go back to the row they were taken from."""
        redemptions = self.redemptions
        row = (
            await conn.execute(
                sa.delete(redemptions)
                .where(redemptions.c.hold_id == hold_id)
                .returning(redemptions.c[self.counted_id], redemptions.c.quantity)
            )
        ).first()
        if row is not None:
            counted_id, quantity = row
            await self.put_back(conn, counted_id, quantity)

    async def put_back(self, conn: AsyncConnection, counted_id: object, quantity: int) -> None:
        """Undo a `take` of `quantity` uses of the row `counted_id` in the same transaction
        (a claim refused after it took them: it keeps nothing)."""
        await conn.execute(
            sa.update(self.counted)
            .where(self.counted.c.id == counted_id)
            .values(uses=self.counted.c.uses - quantity)
        )
