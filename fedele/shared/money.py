"""Money: a Decimal amount with an ISO-4217 currency. Never float, never mixed with integer cents.

One rounding rule for the whole product: ROUND_HALF_UP to the currency's minor unit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_precision, list_currencies

from fedele.shared.errors import ValidationFailed

_KNOWN_CURRENCIES = frozenset(list_currencies())


def minor_unit_exponent(currency: str) -> Decimal:
    """Decimal('0.01') for EUR, Decimal('1') for JPY, Decimal('0.001') for KWD."""
    digits = get_currency_precision(currency)
    return Decimal(1).scaleb(-digits)


def _to_decimal(value: Decimal | int | str) -> Decimal:
    if isinstance(value, float):
        raise TypeError("Money never takes a float; pass a Decimal, int or str.")
    try:
        result = Decimal(value)
    except (InvalidOperation, ValueError) as error:
        raise ValidationFailed(f"'{value}' is not a valid amount.", code="invalid_amount") from error
    if not result.is_finite():
        raise ValidationFailed(f"'{value}' is not a finite amount.", code="invalid_amount")
    return result


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        currency = str(self.currency).upper()
        if currency not in _KNOWN_CURRENCIES:
            raise ValidationFailed(f"Unknown currency '{self.currency}'.", code="invalid_currency")
        object.__setattr__(self, "currency", currency)
        amount = _to_decimal(self.amount)
        # -0.004 rounds to -0.00: keep zero unsigned so it never prints or serialises as "-0.00".
        object.__setattr__(self, "amount", amount.copy_abs() if amount.is_zero() else amount)

    # construction -------------------------------------------------------------------------------
    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str = "EUR") -> Money:
        """An amount rounded to the currency's minor unit (ROUND_HALF_UP)."""
        return cls(_to_decimal(amount), currency).rounded()

    @classmethod
    def zero(cls, currency: str = "EUR") -> Money:
        return cls(Decimal(0), currency).rounded()

    @classmethod
    def from_minor_units(cls, minor: int, currency: str = "EUR") -> Money:
        return cls(Decimal(minor) * minor_unit_exponent(currency), currency).rounded()

    # derived ------------------------------------------------------------------------------------
    @property
    def minor_units(self) -> int:
        return int(self.rounded().amount.scaleb(get_currency_precision(self.currency)))

    def rounded(self) -> Money:
        try:
            amount = self.amount.quantize(minor_unit_exponent(self.currency), rounding=ROUND_HALF_UP)
        except InvalidOperation as error:
            # More digits than the decimal context holds: refuse it instead of a raw decimal error.
            raise ValidationFailed(
                f"'{self.amount}' is too large an amount.", code="invalid_amount"
            ) from error
        return Money(amount, self.currency)

    def is_zero(self) -> bool:
        return self.amount == 0

    # arithmetic ---------------------------------------------------------------------------------
    def _same_currency(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"Cannot combine Money with {type(other).__name__}.")
        if other.currency != self.currency:
            raise ValidationFailed(
                f"Cannot combine {self.currency} with {other.currency}.", code="currency_mismatch"
            )
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._same_currency(other).amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._same_currency(other).amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, (float, Money)):
            raise TypeError("Multiply Money by a Decimal or int only.")
        return Money(self.amount * Decimal(factor), self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.amount), self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same_currency(other).amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same_currency(other).amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._same_currency(other).amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._same_currency(other).amount

    def allocate(self, ratios: Sequence[Decimal | int]) -> list[Money]:
        """Split into parts proportional to ratios; the parts add up to the rounded total exactly.

        Leftover minor units go one each to the parts with the largest remainders (ties: first).
        """
        if not ratios:
            raise ValidationFailed("Allocation needs at least one ratio.", code="invalid_allocation")
        if any(isinstance(r, float) for r in ratios):
            raise TypeError("Allocation ratios are Decimals or ints, never floats.")
        weights = [Decimal(r) for r in ratios]
        if any(w < 0 for w in weights) or sum(weights) == 0:
            raise ValidationFailed("Ratios must be non-negative and not all zero.", code="invalid_allocation")
        total_minor = self.minor_units
        sign = -1 if total_minor < 0 else 1
        magnitude = abs(total_minor)
        weight_sum = sum(weights)
        exact = [Decimal(magnitude) * w / weight_sum for w in weights]
        floors = [int(x.to_integral_value(rounding=ROUND_DOWN)) for x in exact]
        leftover = magnitude - sum(floors)
        order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
        for index in order[:leftover]:
            floors[index] += 1
        return [Money.from_minor_units(sign * part, self.currency) for part in floors]

    def split(self, parts: int) -> list[Money]:
        if parts <= 0:
            raise ValidationFailed("Split needs a positive number of parts.", code="invalid_allocation")
        return self.allocate([1] * parts)

    # presentation -------------------------------------------------------------------------------
    def format(self, locale: str = "it") -> str:
        return str(format_currency(self.rounded().amount, self.currency, locale=locale))

    def __str__(self) -> str:
        return f"{self.rounded().amount} {self.currency}"


def money_sum(values: Iterable[Money], currency: str = "EUR") -> Money:
    total = Money.zero(currency)
    for value in values:
        total = total + value
    return total
