"""Pure pricing: a Charge and a quantity → a PricedCharge; day-based proration. No Django imports.

Rounding (the house rule, see ARCHITECTURE.md): every line is rounded on its own with
ROUND_HALF_UP to the currency's minor unit, and a total is the sum of the rounded lines, so an
invoice always adds up to what its lines show.

Zero quantity: flat, per-unit and package charges still produce their single line (a flat fee is
owed whatever the usage; the others come to 0.00). Tiered charges list only the tiers that
carry usage, so zero usage has no tier line and a zero total. A minimum commitment applies in
every case.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_CEILING, Decimal

from fedele.billing.contracts import (
    Charge,
    PricedCharge,
    PricedLine,
    PriceModel,
    ProrationResult,
    Tier,
)
from fedele.shared.errors import ValidationFailed
from fedele.shared.money import Money, money_sum

MINIMUM_COMMITMENT = "minimum commitment"


def _validated_quantity(quantity: Decimal | int) -> Decimal:
    if isinstance(quantity, bool) or not isinstance(quantity, (Decimal, int)):
        raise ValidationFailed(
            f"Quantity must be a Decimal or int, not {type(quantity).__name__}.",
            code="invalid_quantity",
            fields={"quantity": f"must be a Decimal or int, not {type(quantity).__name__}."},
        )
    value = Decimal(quantity)
    if not value.is_finite():
        raise ValidationFailed(
            f"Quantity '{quantity}' is not finite.",
            code="invalid_quantity",
            fields={"quantity": "must be a finite number."},
        )
    if value < 0:
        raise ValidationFailed(
            f"Quantity must not be negative (got {value}).",
            code="invalid_quantity",
            fields={"quantity": f"must not be negative (got {value})."},
        )
    # Keep zero unsigned: Decimal('-0') passes the check above and would print as "-0".
    return value.copy_abs() if value.is_zero() else value


def _line(
    description: str,
    currency: str,
    *,
    quantity: Decimal,
    unit_amount: Decimal,
    flat_amount: Decimal = Decimal(0),
    tier_index: int | None = None,
) -> PricedLine:
    amount = Money(quantity * unit_amount + flat_amount, currency).rounded()
    return PricedLine(
        description=description,
        quantity=quantity,
        unit_amount=unit_amount,
        flat_amount=flat_amount,
        amount=amount,
        tier_index=tier_index,
    )


def _tier_label(tiers: tuple[Tier, ...], index: int) -> str:
    lower = 0 if index == 0 else tiers[index - 1].up_to
    upper = tiers[index].up_to
    if upper is None:
        return f"tier {index + 1} (units > {lower})"
    return f"tier {index + 1} ({lower} < units ≤ {upper})"


def _graduated_lines(charge: Charge, quantity: Decimal) -> list[PricedLine]:
    lines: list[PricedLine] = []
    lower = Decimal(0)
    for index, tier in enumerate(charge.tiers):
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, Decimal(tier.up_to))
        units_in_tier = upper - lower
        lines.append(
            _line(
                _tier_label(charge.tiers, index),
                charge.currency,
                quantity=units_in_tier,
                unit_amount=tier.unit_amount,
                flat_amount=tier.flat_amount,
                tier_index=index,
            )
        )
        if tier.up_to is None:
            break
        lower = Decimal(tier.up_to)
    return lines


def _volume_lines(charge: Charge, quantity: Decimal) -> list[PricedLine]:
    if quantity.is_zero():
        return []
    for index, tier in enumerate(charge.tiers):
        if tier.up_to is None or quantity <= tier.up_to:
            return [
                _line(
                    _tier_label(charge.tiers, index),
                    charge.currency,
                    quantity=quantity,
                    unit_amount=tier.unit_amount,
                    flat_amount=tier.flat_amount,
                    tier_index=index,
                )
            ]
    raise AssertionError("a validated tier table always ends open-ended")  # pragma: no cover


def _package_lines(charge: Charge, quantity: Decimal) -> list[PricedLine]:
    assert charge.package_size is not None and charge.unit_amount is not None
    packages = (quantity / charge.package_size).to_integral_value(rounding=ROUND_CEILING)
    return [
        _line(
            f"{packages} package(s) of {charge.package_size} units for {quantity} units",
            charge.currency,
            quantity=packages,
            unit_amount=charge.unit_amount,
        )
    ]


def _lines_for_model(charge: Charge, quantity: Decimal) -> list[PricedLine]:
    if charge.model is PriceModel.FLAT:
        assert charge.flat_amount is not None
        return [_line("flat fee", charge.currency, quantity=Decimal(1), unit_amount=charge.flat_amount)]
    if charge.model is PriceModel.PER_UNIT:
        assert charge.unit_amount is not None
        return [_line("per unit", charge.currency, quantity=quantity, unit_amount=charge.unit_amount)]
    if charge.model is PriceModel.GRADUATED:
        return _graduated_lines(charge, quantity)
    if charge.model is PriceModel.VOLUME:
        return _volume_lines(charge, quantity)
    return _package_lines(charge, quantity)


def charge_amount(charge: Charge, quantity: Decimal | int) -> PricedCharge:
    """Price ``quantity`` (fractional usage allowed, never negative) with ``charge``.

    Raises ValidationFailed for a negative, non-finite or non-Decimal quantity, and for a
    quantity so large that an amount no longer fits the decimal context.
    """
    units = _validated_quantity(quantity)
    lines = _lines_for_model(charge, units)
    total = money_sum((line.amount for line in lines), charge.currency)
    if charge.minimum_amount is not None:
        minimum = Money(charge.minimum_amount, charge.currency).rounded()
        if total < minimum:
            top_up = minimum - total
            lines.append(
                PricedLine(
                    description=MINIMUM_COMMITMENT,
                    quantity=Decimal(1),
                    unit_amount=top_up.amount,
                    flat_amount=Decimal(0),
                    amount=top_up,
                )
            )
            total = minimum
    return PricedCharge(charge=charge, quantity=units, lines=tuple(lines), total=total)


# proration ---------------------------------------------------------------------------------------


def _period_days(period_start: date, period_end: date, change_date: date) -> tuple[int, int]:
    """(days_in_period, days_remaining); period_end is exclusive, change_date's day is remaining."""
    errors: dict[str, str] = {}
    for name, value in (
        ("period_start", period_start),
        ("period_end", period_end),
        ("change_date", change_date),
    ):
        # datetime is a date subclass; its time part would silently skew the day count.
        if isinstance(value, datetime) or not isinstance(value, date):
            errors[name] = f"must be a date (not {type(value).__name__})."
    if errors:
        raise ValidationFailed("Proration needs plain dates.", code="invalid_period", fields=errors)
    if period_end <= period_start:
        raise ValidationFailed(
            f"The period must end after it starts ({period_start} → {period_end}).",
            code="invalid_period",
            fields={"period_end": "must be after period_start."},
        )
    if not period_start <= change_date <= period_end:
        raise ValidationFailed(
            f"The change date {change_date} is outside the period {period_start} → {period_end}.",
            code="invalid_period",
            fields={"change_date": "must be within [period_start, period_end]."},
        )
    return (period_end - period_start).days, (period_end - change_date).days


def prorate(amount: Money, *, period_start: date, period_end: date, change_date: date) -> Money:
    """The share of ``amount`` for the days from ``change_date`` (included) to ``period_end`` (excluded).

    Day-based: ``amount * days_remaining / days_in_period``, computed exactly in Decimal (one
    multiplication, then one division) and rounded once, ROUND_HALF_UP to the currency's minor
    unit. A change on ``period_start`` returns the whole amount, one on ``period_end`` zero.
    Example: 30.00 EUR, period 1 Jan → 1 Feb (31 days), change 16 Jan: 16 days remain,
    30 * 16 / 31 = 15.4838… → 15.48 EUR.
    """
    days_in_period, days_remaining = _period_days(period_start, period_end, change_date)
    return Money(amount.amount * days_remaining / days_in_period, amount.currency).rounded()


def proration_for_change(
    old_price: Money,
    new_price: Money,
    period_start: date,
    period_end: date,
    change_date: date,
) -> ProrationResult:
    """Credit for the unused part of ``old_price`` and charge for the rest of the period at ``new_price``.

    Both are prorated with :func:`prorate` and rounded separately (they become two invoice lines);
    ``net = charge - credit`` of the rounded amounts, so the lines always add up to the net.
    A change on ``period_start`` or ``period_end`` is a boundary change: the new price simply
    applies to a whole period, nothing is prorated and every figure is zero.
    Raises ValidationFailed for a currency mismatch or a change date outside the period.
    """
    if old_price.currency != new_price.currency:
        raise ValidationFailed(
            f"Cannot prorate a change from {old_price.currency} to {new_price.currency}.",
            code="currency_mismatch",
            fields={"new_price": f"must be in {old_price.currency}, like the old price."},
        )
    days_in_period, days_remaining = _period_days(period_start, period_end, change_date)
    currency = old_price.currency
    if change_date in (period_start, period_end):
        zero = Money.zero(currency)
        return ProrationResult(
            credit=zero, charge=zero, net=zero, days_remaining=0, days_in_period=days_in_period
        )
    dates = {"period_start": period_start, "period_end": period_end, "change_date": change_date}
    credit = prorate(old_price, **dates)
    charge = prorate(new_price, **dates)
    return ProrationResult(
        credit=credit,
        charge=charge,
        net=charge - credit,
        days_remaining=days_remaining,
        days_in_period=days_in_period,
    )
