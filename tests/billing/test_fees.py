"""The platform fee: exact integer arithmetic, one documented rounding rule, for zero- and
two-decimal currencies alike."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.fees import platform_fee, ticket_fee, tip_fee
from bot.money import CURRENCIES
from bot.settings import Settings

amounts = st.integers(min_value=0, max_value=10**11)
percents = st.decimals(min_value=0, max_value=100, places=3, allow_nan=False, allow_infinity=False)
minimums = st.integers(min_value=0, max_value=10**6)
currencies = st.sampled_from(sorted(CURRENCIES))


def reference_fee(amount_minor: int, code: str, percent: Decimal) -> int:
    """The rule as an accountant would compute it: in major units of the currency, the
    percentage rounded half up to the currency's smallest unit."""
    exponent = CURRENCIES[code].exponent
    major = Decimal(amount_minor).scaleb(-exponent)
    fee = (major * percent / 100).quantize(Decimal(1).scaleb(-exponent), ROUND_HALF_UP)
    return int(fee.scaleb(exponent))


@given(amounts, currencies, percents)
def test_matches_half_up_rounding_in_every_currency(
    amount: int, code: str, percent: Decimal
) -> None:
    assert platform_fee(amount, percent=percent) == reference_fee(amount, code, percent)


@given(amounts, percents, minimums)
def test_fee_is_within_the_charge_and_at_least_the_minimum(
    amount: int, percent: Decimal, minimum: int
) -> None:
    fee = platform_fee(amount, percent=percent, minimum_minor=minimum)
    assert isinstance(fee, int)
    assert 0 <= fee <= amount
    assert fee >= min(minimum, amount)
    exact = Fraction(amount) * Fraction(percent) / 100
    if minimum <= exact:
        assert abs(fee - exact) <= Fraction(1, 2)  # off by at most half a minor unit
    host_share = amount - fee
    assert host_share + fee == amount and host_share >= 0


@given(amounts, amounts, percents, minimums)
def test_more_money_never_means_a_smaller_fee(
    a: int, b: int, percent: Decimal, minimum: int
) -> None:
    low, high = sorted((a, b))
    assert platform_fee(low, percent=percent, minimum_minor=minimum) <= platform_fee(
        high, percent=percent, minimum_minor=minimum
    )


@pytest.mark.parametrize(
    ("amount", "percent", "minimum", "fee"),
    [
        (1500, "10", 0, 150),  # $15.00 -> $1.50
        (5, "10", 0, 1),  # half a cent rounds up
        (4, "10", 0, 0),  # 0.4 of a cent rounds down
        (99, "2.5", 0, 2),  # 2.475 cents
        (333, "7", 0, 23),  # ¥333 at 7 % = ¥23.31
        (150, "10", 0, 15),  # ¥150 at 10 %
        (1000, "10", 250, 250),  # the minimum applies
        (100, "10", 250, 100),  # ... but never more than the charge
        (0, "10", 250, 0),
        (123456789, "100", 0, 123456789),
        (123456789, "0", 0, 0),
    ],
)
def test_examples(amount: int, percent: str, minimum: int, fee: int) -> None:
    assert platform_fee(amount, percent=Decimal(percent), minimum_minor=minimum) == fee


def test_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        platform_fee(-1, percent=Decimal("10"))
    with pytest.raises(ValueError):
        platform_fee(100, percent=Decimal("101"))


def test_settings_pick_the_rate(settings: Settings) -> None:
    custom = settings.model_copy(
        update={
            "platform_fee_percent": Decimal("12.5"),
            "platform_fee_minimum": 30,
            "tip_fee_percent": Decimal("3"),
        }
    )
    assert ticket_fee(1000, custom) == 125
    assert ticket_fee(100, custom) == 30  # 12.5 cents < the 30-cent minimum
    assert tip_fee(100, custom) == 3  # tips: their own rate, no minimum
    assert tip_fee(1000, settings) == 0  # 0 % by default
