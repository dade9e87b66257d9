"""Usage trends: each metric's usage per calendar month (Europe/Rome), in total, per customer or
per plan, aggregated the way the metric bills (sum, max, unique count, last value)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Literal

from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from fedele.billing.contracts import UsageAggregation
from fedele.billing.models import Metric, UsageEvent
from fedele.billing.selectors.analytics_common import month_range, month_start, next_month, validated_range
from fedele.customers.facade import customer_summaries
from fedele.shared.errors import ValidationFailed

UsageGrouping = Literal["metric", "customer", "plan"]
GROUPINGS: tuple[UsageGrouping, ...] = ("metric", "customer", "plan")


@dataclass(frozen=True, slots=True)
class UsageRow:
    month: date
    metric_code: str
    unit: str
    aggregation: str
    group_key: str
    """'' for the metric total, the customer's public id, or the plan code ('' without a plan)."""
    group_label: str
    value: Decimal
    events: int


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    tz = timezone.get_default_timezone()
    return (
        timezone.make_aware(datetime.combine(start, time.min), tz),
        timezone.make_aware(datetime.combine(next_month(end), time.min), tz),
    )


def usage_trends(*, from_month: date, to_month: date, group_by: UsageGrouping = "metric") -> list[UsageRow]:
    """Rows ordered by metric, month and group. At most four queries whatever the data size."""
    start, end, _ = validated_range(from_month, to_month, "EUR")
    if group_by not in GROUPINGS:
        raise ValidationFailed(
            f"Unknown grouping '{group_by}'.",
            code="invalid_grouping",
            fields={"group_by": f"Use one of: {', '.join(GROUPINGS)}."},
        )
    since, until = _bounds(start, end)
    metrics = {metric.pk: metric for metric in Metric.objects.all()}
    group_field = {
        "metric": None,
        "customer": "account__customer_id",
        "plan": "subscription__plan__code",
    }[group_by]
    events = UsageEvent.objects.filter(occurred_at__gte=since, occurred_at__lt=until).annotate(
        month=TruncMonth("occurred_at", tzinfo=timezone.get_default_timezone())
    )
    keys = ["metric_id", "month"] + ([group_field] if group_field else [])
    values: dict[tuple[int, date, object], Decimal] = {}
    counts: dict[tuple[int, date, object], int] = {}
    for row in events.values(*keys).annotate(total=Sum("quantity"), peak=Max("quantity"), events=Count("id")):
        metric = metrics[row["metric_id"]]
        key = (metric.pk, _as_date(row["month"]), row.get(group_field) if group_field else "")
        counts[key] = row["events"]
        values[key] = row["peak"] if metric.aggregation == UsageAggregation.MAX else row["total"]
    special = [
        pk
        for pk, metric in metrics.items()
        if metric.aggregation in (UsageAggregation.UNIQUE_COUNT, UsageAggregation.LAST)
    ]
    if special:
        distinct: dict[tuple[int, date, object], set[str]] = defaultdict(set)
        last: dict[tuple[int, date, object], Decimal] = {}
        fields = ["metric_id", "occurred_at", "quantity", "properties"] + (
            [group_field] if group_field else []
        )
        tz = timezone.get_default_timezone()
        for row in events.filter(metric_id__in=special).order_by("occurred_at", "id").values(*fields):
            metric = metrics[row["metric_id"]]
            month = month_start(row["occurred_at"].astimezone(tz).date())
            key = (metric.pk, month, row.get(group_field) if group_field else "")
            if metric.aggregation == UsageAggregation.LAST:
                last[key] = row["quantity"]
            else:
                property_value = (row["properties"] or {}).get(metric.unique_property)
                if property_value is not None:
                    distinct[key].add(str(property_value))
        for key in [key for key in values if key[0] in special]:
            values[key] = (
                last[key]
                if metrics[key[0]].aggregation == UsageAggregation.LAST
                else Decimal(len(distinct[key]))
            )
    labels = _group_labels(group_by, {key[2] for key in values})
    rows = [
        UsageRow(
            month=month,
            metric_code=metrics[metric_id].code,
            unit=metrics[metric_id].unit,
            aggregation=metrics[metric_id].aggregation,
            group_key=labels[group][0],
            group_label=labels[group][1],
            value=values[(metric_id, month, group)],
            events=counts[(metric_id, month, group)],
        )
        for metric_id, month, group in values
    ]
    months = {month: index for index, month in enumerate(month_range(start, end))}
    rows.sort(key=lambda row: (row.metric_code, months[row.month], row.group_label, row.group_key))
    return rows


def _as_date(value: date | datetime) -> date:
    if isinstance(value, datetime):
        return (
            value.astimezone(timezone.get_default_timezone()).date()
            if timezone.is_aware(value)
            else value.date()
        )
    return value


def _group_labels(group_by: UsageGrouping, groups: set[object]) -> dict[object, tuple[str, str]]:
    if group_by == "customer":
        summaries = customer_summaries(int(str(group)) for group in groups if group)
        return {
            group: (
                (str(summaries[group].public_id), summaries[group].display_name)
                if group in summaries
                else ("", "")
            )
            for group in groups
        }
    return {group: (str(group or ""), str(group or "")) for group in groups}
