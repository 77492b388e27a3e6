"""How many minor units a currency's major unit has, as the payment gateways count them.

Stripe takes amounts in minor units: cents for USD, fen for CNY, but whole yen for JPY (a
zero-decimal currency) and thousandths for KWD (a three-decimal currency, whose last digit must be
0). WeChat Pay sells in CNY only (fen).
"""

from __future__ import annotations

from decimal import Decimal

# Stripe's zero-decimal currencies: the amount is in major units.
ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF"}
    | {"UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
# Three-decimal currencies: Stripe counts thousandths but wants the last digit 0.
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# Two-decimal on the wire, but Stripe charges whole units only.
WHOLE_UNITS = frozenset({"ISK"})


def minor_exponent(currency: str) -> int:
    """10 ** this = minor units per major unit."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    return 3 if code in THREE_DECIMAL else 2


def price_decimals(currency: str) -> int:
    """The most decimals a price in this currency may have and still be charged exactly."""
    code = currency.upper()
    return 0 if code in WHOLE_UNITS else min(minor_exponent(code), 2)


def to_minor(amount: Decimal, currency: str) -> int:
    """A price in major units (yuan, dollars, yen) as the gateway's integer amount."""
    minor = amount.scaleb(minor_exponent(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} {currency} has more decimals than the currency")
    return int(minor)


def to_major(minor: int, currency: str) -> Decimal:
    """The gateway's integer amount in major units."""
    return Decimal(minor).scaleb(-minor_exponent(currency))
