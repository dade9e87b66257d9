"""Pricing of quote and order lines from the price book (plan versions), with discounts.

- plan line: recurring, per period; the list amount is what an invoice charges for the plan
  version's recurring charges at that quantity (``charge_amount`` of each, summed). A unit price may
  be overridden (then ``quantity * unit price`` is the list amount).
- a plan version with a setup fee adds a one-off ``setup_fee`` line (quantity 1) after its plan line.
- product line: one-off, priced by hand (``unit_amount`` required).
- line amount = round(list amount * (1 - line discount / 100)), ROUND_HALF_UP per line.
- quote-level discount: round(subtotal * discount / 100) once, allocated to the lines in proportion
  (largest remainder, so the lines' net amounts add up exactly to the total).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from fedele.billing import pricing
from fedele.billing.models import PlanVersion, Product
from fedele.shared.errors import ValidationFailed
from fedele.shared.money import Money

MAX_LINES = 200
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class LineInput:
    plan_version: PlanVersion | None = None
    product: Product | None = None
    quantity: Decimal = Decimal(1)
    unit_amount: Decimal | None = None
    discount_percent: Decimal = Decimal(0)
    description: str = ""


@dataclass(frozen=True, slots=True)
class PricedLine:
    kind: str
    plan_version: PlanVersion | None
    product: Product | None
    description: str
    quantity: Decimal
    list_unit_amount: Decimal | None
    unit_amount: Decimal
    discount_percent: Decimal
    recurring: bool
    amount: Decimal
    net_amount: Decimal


def _percent(value: object, name: str, errors: dict[str, list[str]]) -> Decimal:
    try:
        percent = Decimal(str(value))
    except InvalidOperation:
        errors[name] = ["must be a number."]
        return Decimal(0)
    if not percent.is_finite() or not Decimal(0) <= percent <= HUNDRED:
        errors[name] = ["must be between 0 and 100."]
    elif percent != percent.quantize(Decimal("0.01")):
        errors[name] = ["may have at most 2 decimal places."]
    return percent


def _rounded(amount: Decimal, currency: str) -> Decimal:
    return Money(amount, currency).rounded().amount


def plan_list_amount(version: PlanVersion, quantity: Decimal) -> Decimal:
    total = Decimal(0)
    for charge in version.charges.filter(kind="recurring"):
        total += pricing.charge_amount(charge.as_charge(), quantity).total.amount
    return total


def _price_one(index: int, line: LineInput, currency: str, errors: dict[str, list[str]]) -> list[PricedLine]:
    prefix = f"lines[{index}]"
    quantity = line.quantity
    if not isinstance(quantity, Decimal) or not quantity.is_finite() or quantity <= 0:
        errors[f"{prefix}.quantity"] = ["must be more than zero."]
        return []
    if quantity > Decimal("1000000") or quantity != quantity.quantize(Decimal("0.000001")):
        errors[f"{prefix}.quantity"] = ["must be at most 1,000,000 with at most 6 decimals."]
        return []
    discount = _percent(line.discount_percent, f"{prefix}.discount_percent", errors)
    if line.unit_amount is not None and (not line.unit_amount.is_finite() or line.unit_amount < 0):
        errors[f"{prefix}.unit_amount"] = ["must not be negative."]
        return []
    if (line.plan_version is None) == (line.product is None):
        errors[prefix] = ["give either a plan version or a product."]
        return []
    factor = (HUNDRED - discount) / HUNDRED
    if line.plan_version is not None:
        version = line.plan_version
        if version.published_at is None:
            errors[f"{prefix}.plan_version"] = ["is not published."]
            return []
        if version.currency != currency:
            errors[f"{prefix}.plan_version"] = [f"is priced in {version.currency}, the quote in {currency}."]
            return []
        list_amount = plan_list_amount(version, quantity)
        list_unit = (list_amount / quantity).quantize(Decimal("0.000001"))
        if line.unit_amount is not None:
            list_amount_for_line = line.unit_amount * quantity
            unit = line.unit_amount
        else:
            list_amount_for_line, unit = list_amount, list_unit
        description = line.description.strip() or f"{version.plan.name} ({version.plan.billing_period})"
        result = [
            PricedLine(
                "plan",
                version,
                None,
                description[:300],
                quantity,
                list_unit,
                unit,
                discount,
                True,
                _rounded(list_amount_for_line * factor, currency),
                Decimal(0),
            )
        ]
        if version.setup_fee:
            fee = version.setup_fee
            result.append(
                PricedLine(
                    "setup_fee",
                    version,
                    None,
                    f"Setup fee: {version.plan.name}"[:300],
                    Decimal(1),
                    fee,
                    fee,
                    discount,
                    False,
                    _rounded(fee * factor, currency),
                    Decimal(0),
                )
            )
        return result
    product = line.product
    assert product is not None
    if line.unit_amount is None:
        errors[f"{prefix}.unit_amount"] = ["is required for a product line."]
        return []
    description = line.description.strip() or product.name
    return [
        PricedLine(
            "product",
            None,
            product,
            description[:300],
            quantity,
            None,
            line.unit_amount,
            discount,
            False,
            _rounded(quantity * line.unit_amount * factor, currency),
            Decimal(0),
        )
    ]


def allocate(total_discount: Decimal, amounts: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Split ``total_discount`` over ``amounts`` in proportion, to the cent, largest remainder first."""
    subtotal = sum(amounts, Decimal(0))
    if not total_discount or not subtotal:
        return [Decimal(0)] * len(amounts)
    cent = Money.zero(currency).rounded().amount.as_tuple().exponent
    quantum = Decimal(1).scaleb(cent)  # type: ignore[arg-type]
    exact = [total_discount * amount / subtotal for amount in amounts]
    shares = [value.quantize(quantum, rounding=ROUND_DOWN) for value in exact]
    remainder = int((total_discount - sum(shares, Decimal(0))) / quantum)
    order = sorted(range(len(amounts)), key=lambda i: (exact[i] - shares[i], amounts[i]), reverse=True)
    for i in order[:remainder]:
        shares[i] += quantum
    return shares


def price_lines(
    lines: Sequence[LineInput], *, currency: str, discount_percent: Decimal = Decimal(0)
) -> list[PricedLine]:
    errors: dict[str, list[str]] = {}
    if not lines:
        errors["lines"] = ["add at least one line."]
    if len(lines) > MAX_LINES:
        errors["lines"] = [f"at most {MAX_LINES} lines."]
    quote_discount = _percent(discount_percent, "discount_percent", errors)
    priced: list[PricedLine] = []
    if "lines" not in errors:
        for index, line in enumerate(lines):
            priced += _price_one(index, line, currency, errors)
    if errors:
        raise ValidationFailed("The lines are not valid.", code="invalid_lines", fields=errors)
    subtotal = sum((line.amount for line in priced), Decimal(0))
    discount = _rounded(subtotal * quote_discount / HUNDRED, currency)
    shares = allocate(discount, [line.amount for line in priced], currency)
    return [replace(line, net_amount=line.amount - share) for line, share in zip(priced, shares, strict=True)]
