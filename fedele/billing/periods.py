"""Billing-period arithmetic on plain dates. No Django imports.

A period is [start, end): the end is exclusive and is the next period's start. Monthly, quarterly
and yearly periods keep the subscription's anchor day: with an anchor of 31 a monthly period runs
31 Jan → 28 Feb (29 Feb in a leap year) → 31 Mar → 30 Apr → 31 May; with an anchor of 29 a yearly
period started on 29 Feb 2024 renews on 28 Feb 2025 and on 29 Feb 2028.
"""

from __future__ import annotations

import calendar
from datetime import date

from fedele.billing.contracts import BillingPeriod
from fedele.shared.errors import ValidationFailed


def days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def add_months(day: date, months: int, anchor_day: int) -> date:
    """The date ``months`` months after ``day`` on ``anchor_day``, clamped to the month's length."""
    if not 1 <= anchor_day <= 31:
        raise ValidationFailed(
            f"The billing anchor day must be between 1 and 31 (got {anchor_day}).",
            code="invalid_anchor_day",
            fields={"billing_anchor_day": "must be between 1 and 31."},
        )
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(anchor_day, days_in_month(year, month)))


def period_end(start: date, period: BillingPeriod | str, anchor_day: int) -> date:
    return add_months(start, BillingPeriod(period).months, anchor_day)


def period_containing(
    first_start: date, period: BillingPeriod | str, anchor_day: int, day: date
) -> tuple[date, date]:
    """The [start, end) period of a series that began on ``first_start`` which contains ``day``."""
    if day < first_start:
        raise ValidationFailed(
            f"{day} is before the first period starts ({first_start}).",
            code="invalid_period",
            fields={"date": "must not be before the subscription starts."},
        )
    months = BillingPeriod(period).months
    # Jump close by month arithmetic, then step: clamping makes the series irregular near month ends.
    elapsed = (day.year - first_start.year) * 12 + (day.month - first_start.month)
    steps = max(0, elapsed // months - 1)
    start = add_months(first_start, steps * months, anchor_day) if steps else first_start
    end = add_months(first_start, (steps + 1) * months, anchor_day)
    while end <= day:
        steps += 1
        start = end
        end = add_months(first_start, (steps + 1) * months, anchor_day)
    return start, end
