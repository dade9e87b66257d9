"""Set-based aggregation of unbilled usage for the billing run, and marking it billed.

Both functions work on many subscriptions at once with a handful of SQL statements (chunked so the
number of bound parameters stays within SQLite's limit), never one query per subscription.

Late events: an event is billed by the first invoice that runs after it is *received*, whatever its
``occurred_at``. An event whose timestamp falls in a period that was already invoiced is therefore
neither lost nor billed twice: it is still unbilled (``invoice_id IS NULL``), ``occurred_at < until``
holds for the next run, so the next invoice of that subscription bills it and marks it.

Race with ingestion: an event can arrive between :func:`aggregate_unbilled` and :func:`mark_billed`.
Pass the same ``received_before`` (captured once, before aggregating) to both so that such an event
is neither marked billed without being counted nor counted twice; it waits for the next invoice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import (
    Count,
    F,
    Max,
    QuerySet,
    Sum,
    TextField,
    Window,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, RowNumber

from fedele.billing.contracts import UsageAggregation
from fedele.billing.models import Metric, UsageEvent

CHUNK_SIZE = 2000
"""Subscription ids per statement: well under SQLite's 32,766 bound parameters."""
MARK_CHUNK_SIZE = 500
"""Subscriptions per UPDATE in mark_billed (each adds a CASE branch with two parameters)."""


def _chunks(values: Sequence[int], size: int) -> Iterator[list[int]]:
    unique = sorted(set(values))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]


def _unbilled(
    subscription_ids: list[int], until: datetime, received_before: datetime | None
) -> QuerySet[UsageEvent]:
    events = UsageEvent.objects.filter(
        subscription_id__in=subscription_ids, invoice_id__isnull=True, occurred_at__lt=until
    )
    if received_before is not None:
        events = events.filter(received_at__lt=received_before)
    return events.order_by()


def _metrics_by_aggregation() -> dict[str, list[Metric]]:
    grouped: dict[str, list[Metric]] = defaultdict(list)
    for metric in Metric.objects.only("id", "aggregation", "unique_property"):
        grouped[metric.aggregation].append(metric)
    return grouped


def aggregate_unbilled(
    subscription_ids: Sequence[int],
    until: datetime,
    *,
    received_before: datetime | None = None,
) -> dict[tuple[int, int], Decimal]:
    """{(subscription id, metric id): value} over each subscription's unbilled events before ``until``.

    The value follows the metric's aggregation: ``sum`` and ``max`` of the quantities,
    ``unique_count`` the number of distinct values of ``properties[metric.unique_property]``
    (events without that property do not count; values are compared as text, so 7 and "7" are one),
    ``last`` the quantity of the latest event by (occurred_at, id). A (subscription, metric) pair
    without unbilled events is absent from the result (the caller treats it as zero usage).
    """
    if not subscription_ids:
        return {}
    metrics = _metrics_by_aggregation()
    result: dict[tuple[int, int], Decimal] = {}
    for chunk in _chunks(subscription_ids, CHUNK_SIZE):
        events = _unbilled(chunk, until, received_before)
        for aggregation, function in ((UsageAggregation.SUM, Sum), (UsageAggregation.MAX, Max)):
            metric_ids = [metric.pk for metric in metrics.get(aggregation, [])]
            if not metric_ids:
                continue
            rows = (
                events.filter(metric_id__in=metric_ids)
                .values("subscription_id", "metric_id")
                .annotate(value=function("quantity"))
                .values_list("subscription_id", "metric_id", "value")
            )
            for subscription_id, metric_id, value in rows:
                result[(subscription_id, metric_id)] = Decimal(value)
        _unique_counts(events, metrics.get(UsageAggregation.UNIQUE_COUNT, []), result)
        _last_values(events, metrics.get(UsageAggregation.LAST, []), result)
    return result


def _unique_counts(
    events: QuerySet[UsageEvent], metrics: list[Metric], result: dict[tuple[int, int], Decimal]
) -> None:
    by_property: dict[str, list[int]] = defaultdict(list)
    for metric in metrics:
        by_property[metric.unique_property].append(metric.pk)
    for property_name, metric_ids in by_property.items():
        selected = events.filter(metric_id__in=metric_ids)
        if not property_name:
            # A unique-count metric without a property has nothing to count distinct values of;
            # its events still exist, so report zero rather than dropping the usage line.
            for subscription_id, metric_id in selected.values_list("subscription_id", "metric_id").distinct():
                result[(subscription_id, metric_id)] = Decimal(0)
            continue
        rows = (
            selected.annotate(
                unique_value=Cast(KeyTextTransform(property_name, "properties"), output_field=TextField())
            )
            .values("subscription_id", "metric_id")
            .annotate(value=Count("unique_value", distinct=True))
            .values_list("subscription_id", "metric_id", "value")
        )
        for subscription_id, metric_id, value in rows:
            result[(subscription_id, metric_id)] = Decimal(value)


def _last_values(
    events: QuerySet[UsageEvent], metrics: list[Metric], result: dict[tuple[int, int], Decimal]
) -> None:
    metric_ids = [metric.pk for metric in metrics]
    if not metric_ids:
        return
    rows = (
        events.filter(metric_id__in=metric_ids)
        .annotate(
            position=Window(
                RowNumber(),
                partition_by=[F("subscription_id"), F("metric_id")],
                order_by=[F("occurred_at").desc(), F("id").desc()],
            )
        )
        .filter(position=1)
        .values_list("subscription_id", "metric_id", "quantity")
    )
    for subscription_id, metric_id, quantity in rows:
        result[(subscription_id, metric_id)] = Decimal(quantity)


def mark_billed(
    subscription_ids: Sequence[int],
    until: datetime,
    invoice_by_subscription: Mapping[int, int],
    *,
    received_before: datetime | None = None,
) -> int:
    """Set ``invoice_id`` on the events :func:`aggregate_unbilled` counted; returns how many.

    Only subscriptions present in ``invoice_by_subscription`` are marked: a subscription the run
    skipped (no invoice) keeps its events unbilled for the next invoice. Call it in the same
    transaction that creates the invoices, so a rollback un-marks them too. Idempotent: events
    already billed are left alone.
    """
    targets = sorted(sid for sid in set(subscription_ids) if sid in invoice_by_subscription)
    table = connection.ops.quote_name(UsageEvent._meta.db_table)
    marked = 0
    for chunk in _chunks(targets, MARK_CHUNK_SIZE):
        # One UPDATE ... FROM a VALUES list per chunk (PostgreSQL and SQLite >= 3.33): a join on the
        # subscription id instead of a CASE with one branch per subscription evaluated on every row.
        values = ", ".join(["(%s, %s)"] * len(chunk))
        params: list[Any] = []
        for sid in chunk:
            params += [sid, invoice_by_subscription[sid]]
        received = ""
        params.append(connection.ops.adapt_datetimefield_value(until))
        if received_before is not None:
            received = " AND e.received_at < %s"
            params.append(connection.ops.adapt_datetimefield_value(received_before))
        # VALUES columns are column1, column2 on both engines; the statement must start with UPDATE
        # for SQLite to report the row count.
        sql = (
            f"UPDATE {table} AS e SET invoice_id = v.column2 FROM (VALUES {values}) AS v "  # noqa: S608
            "WHERE e.subscription_id = v.column1 AND e.invoice_id IS NULL "
            f"AND e.occurred_at < %s{received}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            marked += cursor.rowcount
    return marked


BUSINESS_TIME_ZONE = "Europe/Rome"


def period_boundary(day: date) -> datetime:
    """The instant a billing period boundary (a date) falls on: midnight in the business time zone.

    Use it for ``until`` so that usage at 00:30 in Rome on the 1st belongs to the new period."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(BUSINESS_TIME_ZONE))
