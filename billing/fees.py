"""The platform's cut, in ONE place.

Rounding rule: the fee is `percent` of the amount, rounded half up to a whole minor unit
of the currency (a cent for USD, a yen for JPY: amounts are already in minor units, so
the same rule is exact for zero- and two-decimal currencies), then raised to the
configured minimum, and never more than the amount itself. The arithmetic is done with
exact fractions: no float ever touches money.

The fee is computed once per charge (a hold of three tickets is one charge and one fee);
the minimum applies per charge.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from bot.settings import Settings


def platform_fee(amount_minor: int, *, percent: Decimal, minimum_minor: int = 0) -> int:
    """The platform's cut of a charge of `amount_minor`, in the same minor units."""
    if amount_minor < 0:
        raise ValueError("a charge cannot be negative")
    if not 0 <= percent <= 100 or minimum_minor < 0:
        raise ValueError("the fee percent must be within 0..100 and the minimum >= 0")
    exact = Fraction(amount_minor) * Fraction(percent) / 100
    rounded = (exact + Fraction(1, 2)).__floor__()  # half up; exact is never negative
    return min(amount_minor, max(rounded, minimum_minor))


def ticket_fee(amount_minor: int, settings: Settings) -> int:
    """The cut of a ticket sale (`STAGEPASS_PLATFORM_FEE_PERCENT`, `_MINIMUM`)."""
    return platform_fee(
        amount_minor,
        percent=settings.platform_fee_percent,
        minimum_minor=settings.platform_fee_minimum,
    )


def tip_fee(amount_minor: int, settings: Settings) -> int:
    """The cut of a tip (`STAGEPASS_TIP_FEE_PERCENT`; no minimum)."""
    return platform_fee(amount_minor, percent=settings.tip_fee_percent)
