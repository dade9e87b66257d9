"""Usage as it accrues: per metric value and estimated amount for the current period, daily series."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, Max, QuerySet, Sum
from django.db.models.functions import TruncDate

from fedele.billing import pricing
from fedele.billing.models import PlanCharge, Subscription, UsageEvent
from fedele.billing.usage_aggregation import BUSINESS_TIME_ZONE, aggregate_unbilled, period_boundary
from fedele.shared.money import Money


def plain(value: Decimal) -> Decimal:
    """Without trailing zeros and never in exponent form: 1500.000000 → 1500, 2.500000 → 2.5."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


@dataclass(frozen=True, slots=True)
class MetricUsage:
    metric_code: str
    metric_name: str
    unit: str
    aggregation: str
    charge_code: str
    value: Decimal
    estimated_amount: Money
    period_start: date
    period_end: date


def current_usage(subscription: Subscription) -> list[MetricUsage]:
    """One row per usage charge of the subscription's plan version: the unbilled usage its next
    invoice will bill (this period's events plus late ones of earlier periods), priced with the
    charge's price model. Metrics without events show zero (and a minimum commitment, if any)."""
    charges = list(
        PlanCharge.objects.filter(plan_version_id=subscription.plan_version_id, kind="usage")
        .select_related("metric", "plan_version")
        .order_by("position", "id")
    )
    if not charges:
        return []
    until = period_boundary(subscription.current_period_end)
    values = aggregate_unbilled([subscription.pk], until)
    rows = []
    for charge in charges:
        assert charge.metric is not None
        value = values.get((subscription.pk, charge.metric_id or 0), Decimal(0))
        rows.append(
            MetricUsage(
                metric_code=charge.metric.code,
                metric_name=charge.metric.name,
                unit=charge.metric.unit,
                aggregation=charge.metric.aggregation,
                charge_code=charge.code,
                value=plain(value),
                estimated_amount=pricing.charge_amount(charge.as_charge(), value).total,
                period_start=subscription.current_period_start,
                period_end=subscription.current_period_end,
            )
        )
    return rows


def estimated_total(rows: list[MetricUsage], currency: str) -> Money:
    total = Money.zero(currency)
    for row in rows:
        total = total + row.estimated_amount
    return total


@dataclass(frozen=True, slots=True)
class DailyPoint:
    day: date
    metric_code: str
    value: Decimal


def daily_usage(subscription: Subscription) -> list[DailyPoint]:
    """Per day (business time zone) and metric in the current period: the sum (sum metrics), the
    peak (max and last metrics) or the number of events (unique count)."""
    start = period_boundary(subscription.current_period_start)
    end = period_boundary(subscription.current_period_end)
    events: QuerySet[UsageEvent] = UsageEvent.objects.filter(
        subscription_id=subscription.pk, occurred_at__gte=start, occurred_at__lt=end
    ).order_by()
    rows = (
        events.annotate(day=TruncDate("occurred_at", tzinfo=ZoneInfo(BUSINESS_TIME_ZONE)))
        .values("day", "metric__code", "metric__aggregation")
        .annotate(total=Sum("quantity"), peak=Max("quantity"), count=Count("id"))
        .order_by("day", "metric__code")
    )
    points = []
    for row in rows:
        aggregation = row["metric__aggregation"]
        if aggregation == "sum":
            value = Decimal(row["total"])
        elif aggregation in ("max", "last"):
            value = Decimal(row["peak"])
        else:
            value = Decimal(row["count"])
        points.append(DailyPoint(row["day"], row["metric__code"], plain(value)))
    return points
