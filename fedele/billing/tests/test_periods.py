"""Billing-period arithmetic: anchor days at month ends, leap years, quarters, years, containment."""

from __future__ import annotations

from datetime import date

import pytest

from fedele.billing.periods import add_months, period_containing, period_end
from fedele.shared.errors import ValidationFailed


def test_anchor_31_follows_month_ends() -> None:
    starts = [date(2026, 1, 31)]
    for _ in range(5):
        starts.append(period_end(starts[-1], "month", 31))
    assert starts == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
        date(2026, 6, 30),
    ]


def test_anchor_31_in_a_leap_february() -> None:
    assert period_end(date(2028, 1, 31), "month", 31) == date(2028, 2, 29)
    assert period_end(date(2028, 2, 29), "month", 31) == date(2028, 3, 31)


def test_yearly_from_29_february() -> None:
    assert period_end(date(2024, 2, 29), "year", 29) == date(2025, 2, 28)
    assert period_end(date(2027, 2, 28), "year", 29) == date(2028, 2, 29)


def test_quarter_and_year() -> None:
    assert period_end(date(2026, 11, 30), "quarter", 30) == date(2027, 2, 28)
    assert period_end(date(2026, 1, 15), "quarter", 15) == date(2026, 4, 15)
    assert period_end(date(2026, 12, 31), "year", 31) == date(2027, 12, 31)
    assert add_months(date(2026, 1, 31), -1, 31) == date(2025, 12, 31)


def test_period_containing() -> None:
    assert period_containing(date(2026, 1, 31), "month", 31, date(2026, 3, 15)) == (
        date(2026, 2, 28),
        date(2026, 3, 31),
    )
    assert period_containing(date(2026, 1, 31), "month", 31, date(2026, 3, 31)) == (
        date(2026, 3, 31),
        date(2026, 4, 30),
    )
    # The end is exclusive: the period's last day belongs to it, the end date to the next one.
    assert period_containing(date(2026, 1, 1), "month", 1, date(2026, 1, 31)) == (
        date(2026, 1, 1),
        date(2026, 2, 1),
    )
    assert period_containing(date(2026, 1, 1), "month", 1, date(2026, 2, 1)) == (
        date(2026, 2, 1),
        date(2026, 3, 1),
    )
    assert period_containing(date(2024, 2, 29), "year", 29, date(2028, 2, 28)) == (
        date(2027, 2, 28),
        date(2028, 2, 29),
    )
    assert period_containing(date(2026, 1, 15), "quarter", 15, date(2026, 1, 15)) == (
        date(2026, 1, 15),
        date(2026, 4, 15),
    )


def test_period_errors() -> None:
    with pytest.raises(ValidationFailed):
        period_containing(date(2026, 1, 1), "month", 1, date(2025, 12, 31))
    with pytest.raises(ValidationFailed):
        period_end(date(2026, 1, 1), "month", 32)
    with pytest.raises(ValueError):
        period_end(date(2026, 1, 1), "week", 1)
