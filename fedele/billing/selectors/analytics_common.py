"""Shared vocabulary of the revenue analytics: calendar months, ratios, and tables that export to CSV.

A month is represented by the date of its first day. Every figure is a Decimal (money to the cent,
rates in percent to two decimals, ROUND_HALF_UP); a rate whose denominator is zero is ``None``
("not defined"), never 0 and never a division error.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from fedele.shared.errors import ValidationFailed
from fedele.shared.money import Money

MAX_MONTHS = 120
"""Ten years: the longest range one request may ask for (bounds the work of a single call)."""

PERCENT = Decimal("0.01")
DAYS = Decimal("0.01")


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def month_end(month: date) -> date:
    """The last day of the month (inclusive)."""
    return next_month(month) - timedelta(days=1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> int:
    """How many months ``last`` is after ``first`` (both first days of months)."""
    return (last.year - first.year) * 12 + (last.month - first.month)


def month_range(first: date, last: date) -> Iterator[date]:
    month = month_start(first)
    while month <= last:
        yield month
        month = next_month(month)


def validated_range(from_month: date, to_month: date, currency: str) -> tuple[date, date, str]:
    """Both ends as first days of months, the currency normalised; ValidationFailed otherwise."""
    errors: dict[str, str] = {}
    start, end = month_start(from_month), month_start(to_month)
    if end < start:
        errors["to"] = "must not be before the start of the range."
    elif months_between(start, end) >= MAX_MONTHS:
        errors["to"] = f"the range may span at most {MAX_MONTHS} months."
    try:
        code = Money.zero(currency).currency
    except ValidationFailed:
        errors["currency"] = f"'{currency}' is not an ISO-4217 currency code."
        code = currency
    if errors:
        raise ValidationFailed(
            "; ".join(f"{name}: {message}" for name, message in errors.items()),
            code="invalid_range",
            fields=errors,
        )
    return start, end, code


def percent(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """``numerator / denominator`` in percent with two decimals, or None when nothing to divide by."""
    if not denominator:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(PERCENT, rounding=ROUND_HALF_UP)


def cents(amount: Decimal, currency: str) -> Decimal:
    return Money(amount, currency).rounded().amount


def median(values: Sequence[int]) -> Decimal | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return Decimal(ordered[middle]).quantize(DAYS)
    return (Decimal(ordered[middle - 1] + ordered[middle]) / 2).quantize(DAYS, rounding=ROUND_HALF_UP)


def average(values: Sequence[int]) -> Decimal | None:
    if not values:
        return None
    return (Decimal(sum(values)) / len(values)).quantize(DAYS, rounding=ROUND_HALF_UP)


MONTH_COLUMNS = frozenset({"month", "cohort"})


@dataclass(frozen=True, slots=True)
class Table:
    """Rows ready for a page table or a CSV file: ``columns`` are (key, header) pairs."""

    name: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[dict[str, object], ...]

    @property
    def headers(self) -> list[str]:
        return [header for _, header in self.columns]

    def matrix(self) -> list[list[object]]:
        """The rows as lists of cells in column order, for the page: months read as 2026-03."""
        return [
            [
                f"{row[key]:%Y-%m}" if key in MONTH_COLUMNS and row.get(key) else row.get(key)
                for key, _ in self.columns
            ]
            for row in self.rows
        ]

    def as_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([header for _, header in self.columns])
        for row in self.rows:
            writer.writerow([_csv_cell(row.get(key)) for key, _ in self.columns])
        return buffer.getvalue()


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    # A cell a spreadsheet would run as a formula (CSV injection) is quoted with a leading apostrophe.
    if text[:1] in ("=", "+", "@") or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True
