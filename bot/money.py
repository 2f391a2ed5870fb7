"""Money in integer minor units, with the currency's exponent.

`Money(500, "usd")` is five dollars; `Money(500, "jpy")` is five hundred yen (the yen has
no minor unit). Amounts are parsed from what people type and formatted for display here,
and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from bot.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    exponent: int
    symbol: str | None
    minimum_charge: int  # the smallest card charge Stripe accepts, in minor units


def _c(code: str, exponent: int, minimum: int, symbol: str | None = None) -> Currency:
    return Currency(code, exponent, symbol, minimum)


#: Currencies Stagepass sells in. Exponents follow ISO 4217 as Stripe applies it;
#: minimums are Stripe's minimum charge amounts.
CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        _c("usd", 2, 50, "$"),
        _c("eur", 2, 50, "€"),
        _c("gbp", 2, 30, "£"),
        _c("cad", 2, 50),
        _c("aud", 2, 50),
        _c("nzd", 2, 50),
        _c("chf", 2, 50),
        _c("sek", 2, 300),
        _c("nok", 2, 300),
        _c("dkk", 2, 250),
        _c("pln", 2, 200),
        _c("czk", 2, 1500),
        _c("brl", 2, 50),
        _c("mxn", 2, 1000),
        _c("inr", 2, 50),
        _c("sgd", 2, 50),
        _c("hkd", 2, 400),
        _c("zar", 2, 50),
        _c("jpy", 0, 50, "¥"),
        _c("krw", 0, 500),
        _c("clp", 0, 500),
        _c("vnd", 0, 10000),
    )
}


def currency(code: str) -> Currency:
    """Look a currency up by its ISO code, case-insensitively."""
    try:
        return CURRENCIES[code.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(CURRENCIES))
        raise InvalidInput(
            f"Unknown currency {code!r}. Use one of: {known}.", field="currency"
        ) from None


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self) -> None:
        currency(self.currency)  # validates

    @property
    def is_free(self) -> bool:
        return self.minor == 0

    def format(self) -> str:
        return format_minor(self.minor, self.currency)

    def __str__(self) -> str:
        return self.format()


_AMOUNT = re.compile(r"^\s*[$€£¥]?\s*(-?\d[\d_]*(?:\.\d*)?|-?\.\d+)\s*$")


def parse_amount(text: str, code: str) -> int:
    """Read a human amount (`5`, `4.99`, `$5`) into minor units of `code`.

    Raises `InvalidInput` for negative values, more decimals than the currency has, or
    anything that is not a number.
    """
    cur = currency(code)
    raw = text.strip().lower()
    if raw in {"free", "0"}:
        return 0
    match = _AMOUNT.match(raw)
    if match is None:
        raise InvalidInput(f"{text!r} is not an amount; write it like 5 or 4.99.", field="price")
    try:
        value = Decimal(match.group(1).replace("_", ""))
    except InvalidOperation:
        raise InvalidInput(f"{text!r} is not an amount.", field="price") from None
    if value < 0:
        raise InvalidInput("An amount cannot be negative.", field="price")
    minor = value.scaleb(cur.exponent)
    if minor != minor.to_integral_value():
        places = "no decimals" if cur.exponent == 0 else f"at most {cur.exponent} decimals"
        raise InvalidInput(
            f"{cur.code.upper()} amounts take {places}; {text!r} has more.", field="price"
        )
    return int(minor)


def format_minor(minor: int, code: str) -> str:
    """`format_minor(499, "usd") == "$4.99"`, `format_minor(500, "jpy") == "¥500"`."""
    cur = currency(code)
    sign = "-" if minor < 0 else ""
    digits = abs(minor)
    if cur.exponent:
        major, frac = divmod(digits, 10**cur.exponent)
        number = f"{major:,}.{frac:0{cur.exponent}d}"
    else:
        number = f"{digits:,}"
    if cur.symbol:
        return f"{sign}{cur.symbol}{number}"
    return f"{sign}{number} {cur.code.upper()}"
