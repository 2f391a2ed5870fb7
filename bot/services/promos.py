"""Promo codes: a percent or an amount off each ticket of one Space, for a number of
tickets, until a moment.

A code's uses are taken in the claim's transaction (`redeem`, run by the claim batcher)
and an unpaid hold that lapses or is released gives them back (`give_back`); a refund
does not. Counted as invite links are (`bot.services.uses`). Codes are case-insensitive (stored
upper case), A-Z 0-9 - _, at most 32 characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from bot.actors import Actor
from bot.commands.times import format_when
from bot.db import table_of
from bot.errors import Conflict, InvalidInput, LimitExceeded, NotFound, UserError
from bot.models import PromoCode, PromoRedemption, Space
from bot.money import format_minor, parse_amount
from bot.permissions import Action, require
from bot.services.context import Service, ServiceContext
from bot.services.spaces import SpaceService
from bot.services.uses import UseCounter

_CODE = re.compile(r"^[A-Z0-9_-]{1,32}$")
_PROMOS = table_of(PromoCode)
_USES = UseCounter(_PROMOS, table_of(PromoRedemption), "promo_id")


def promo_code(text: str) -> str:
    """A code as typed -> its stored (upper-case) form, or `InvalidInput` saying why not."""
    code = text.strip().upper()
    if not _CODE.match(code):
        raise InvalidInput(
            f"{text.strip()[:40]!r} is not a code: use letters, digits, - and _, "
            "at most 32 characters.",
            field="code",
        )
    return code


def unit_price(price_minor: int, percent_off: int, amount_off_minor: int) -> int:
    """What one ticket costs with a code: the percent off rounded half up to a whole minor
    unit (exact fractions, as billing.fees does), or the amount off; never below zero."""
    if percent_off:
        off = (Fraction(price_minor * percent_off, 100) + Fraction(1, 2)).__floor__()
        return max(0, price_minor - off)
    return max(0, price_minor - amount_off_minor)


def describe(promo: PromoCode, currency: str) -> str:
    """`20% off` / `$5.00 off`."""
    if promo.percent_off:
        return f"{promo.percent_off}% off"
    return f"{format_minor(promo.amount_off_minor, currency)} off"


@dataclass(frozen=True, slots=True)
class Redeemed:
    """A code taken for a claim: which one, and what each ticket costs with it."""

    promo_id: int
    unit_minor: int


async def redeem(
    conn: AsyncConnection, space: Space, code: str, quantity: int, now: datetime
) -> Redeemed | UserError:
    """Take `quantity` uses of `code` for `space` in the caller's transaction, or the
    refusal saying why not (`UseCounter.take`: one conditional UPDATE decides)."""
    row = await _USES.take(
        conn,
        quantity,
        _PROMOS.c.space_id == space.id,
        _PROMOS.c.code == code,
        _PROMOS.c.active.is_(True),
        sa.or_(_PROMOS.c.until.is_(None), _PROMOS.c.until > now),
        returning=(_PROMOS.c.percent_off, _PROMOS.c.amount_off_minor),
    )
    if row is not None:
        unit = unit_price(space.price_minor, row.percent_off, row.amount_off_minor)
        return Redeemed(row.id, unit)
    found = (
        await conn.execute(
            sa.select(_PROMOS).where(_PROMOS.c.space_id == space.id, _PROMOS.c.code == code)
        )
    ).first()
    return _refusal(space, code, quantity, found, now)


def _refusal(
    space: Space, code: str, quantity: int, found: sa.Row[object] | None, now: datetime
) -> UserError:
    if found is None:
        return NotFound(f"There is no code {code} for Space #{space.id}.", field="code")
    promo = PromoCode.model_validate(found._mapping)
    if not promo.active:
        return Conflict(f"{code} is turned off for Space #{space.id}.", field="code")
    if promo.until is not None and promo.until <= now:
        ended = format_when(promo.until, ZoneInfo("UTC"))
        return Conflict(f"{code} ended {ended}.", field="code")
    left = promo.max_uses - promo.uses
    if left <= 0:
        return LimitExceeded(f"{code} is used up.", field="code")
    return LimitExceeded(
        f"{code} has only {left} use{'s' if left > 1 else ''} left; buy at most {left} "
        f"ticket{'s' if left > 1 else ''} with it ({quantity} asked).",
        field="code",
    )


async def give_back(conn: AsyncConnection, hold_id: str) -> None:
    """An unpaid hold's uses go back to its code (in the release's transaction)."""
    await _USES.give_back(conn, hold_id)


@dataclass(frozen=True, slots=True)
class PromoDraft:
    """A new code as the host typed it; `amount` is read in the Space's currency."""

    code: str
    uses: int
    percent: int | None = None
    amount: str | None = None
    until: datetime | None = None


class PromoService(Service):
    """Hosts and co-hosts make, list and turn off a Space's codes."""

    def __init__(self, ctx: ServiceContext, spaces: SpaceService) -> None:
        super().__init__(ctx)
        self.spaces = spaces

    async def _space(self, actor: Actor, space_id: int) -> Space:
        space = await self.spaces.get_in(space_id, actor.community_id)
        require(Action.MANAGE_PROMOS, await self.spaces.roles(space, actor))
        return space

    async def create(self, actor: Actor, space_id: int, draft: PromoDraft) -> PromoCode:
        space = await self._space(actor, space_id)
        if space.is_free:
            raise Conflict(f"Space #{space_id} is free; a code would have nothing to take off.")
        if (draft.percent is None) == (draft.amount is None):
            raise InvalidInput("Give either percent: or amount: (not both).", field="percent")
        percent = draft.percent or 0
        if draft.percent is not None and not 1 <= percent <= 100:
            raise InvalidInput("percent: must be within 1..100.", field="percent")
        amount = 0
        if draft.amount is not None:
            amount = parse_amount(draft.amount, space.currency)
            if amount <= 0:
                raise InvalidInput("amount: must be more than zero.", field="amount")
        if not 1 <= draft.uses <= 1_000_000:
            raise InvalidInput("uses: must be within 1..1,000,000.", field="uses")
        now = self.clock.now()
        if draft.until is not None and draft.until <= now:
            raise InvalidInput("until: must be in the future.", field="until")
        me = await self.identities.ensure(actor)
        assert me.id is not None
        promo = PromoCode(
            space_id=space_id,
            code=promo_code(draft.code),
            percent_off=percent,
            amount_off_minor=amount,
            max_uses=draft.uses,
            until=draft.until,
            created_by=me.id,
            created_at=now,
        )
        async with self.db.write() as session:
            clash = await session.exec(
                select(PromoCode.id).where(
                    PromoCode.space_id == space_id, PromoCode.code == promo.code
                )
            )
            if clash.first() is not None:
                raise Conflict(
                    f"{promo.code} already exists for Space #{space_id}; "
                    f"turn it off with /space promo {space_id} code:{promo.code} off.",
                    field="code",
                )
            session.add(promo)
            await session.flush()
            await session.refresh(promo)
        return promo

    async def list_codes(self, actor: Actor, space_id: int) -> tuple[Space, list[PromoCode]]:
        space = await self._space(actor, space_id)
        async with self.db.session() as session:
            rows = await session.exec(
                select(PromoCode)
                .where(PromoCode.space_id == space_id)
                .order_by(col(PromoCode.created_at), col(PromoCode.id))
            )
            return space, list(rows)

    async def set_active(self, actor: Actor, space_id: int, code: str, active: bool) -> PromoCode:
        await self._space(actor, space_id)
        code = promo_code(code)
        async with self.db.write() as session:
            promo = (
                await session.exec(
                    select(PromoCode).where(PromoCode.space_id == space_id, PromoCode.code == code)
                )
            ).first()
            if promo is None:
                raise NotFound(f"There is no code {code} for Space #{space_id}.", field="code")
            promo.active = active
            session.add(promo)
            await session.flush()
            await session.refresh(promo)
        return promo
