"""Billing pages: the Revenue page (KPIs, charts and tables) and its CSV exports."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from fedele.accounts.facade import actor_for
from fedele.billing.api.analytics import csv_response, parse_month
from fedele.billing.selectors import analytics
from fedele.billing.selectors.analytics_common import add_months, month_end, validated_range
from fedele.billing.selectors.analytics_finance import AGEING_BUCKETS
from fedele.shared import clock
from fedele.shared.errors import PermissionDenied, ValidationFailed

CURRENCIES = ("EUR", "USD", "GBP", "CHF")


def _authorise(request: HttpRequest) -> None:
    if not actor_for(request.user).can("billing.view_revenue"):
        raise PermissionDenied(_("You do not have permission to see revenue analytics."))


def _query(request: HttpRequest) -> tuple[analytics.AnalyticsQuery, dict[str, str]]:
    """The range from the query string; a bad value falls back to the default with a message."""
    today = clock.today()
    default = analytics.AnalyticsQuery.last_twelve_months(today)
    errors: dict[str, str] = {}
    try:
        to_month = parse_month(request.GET.get("to")) or default.to_month
    except ValueError:
        to_month, errors["to"] = default.to_month, _("Use a month as YYYY-MM.")
    try:
        from_month = parse_month(request.GET.get("from")) or add_months(to_month, -11)
    except ValueError:
        from_month, errors["from"] = add_months(to_month, -11), _("Use a month as YYYY-MM.")
    currency = (request.GET.get("currency") or "EUR").upper()[:3]
    group_by = request.GET.get("group_by", "metric")
    if group_by not in ("metric", "customer", "plan"):
        group_by = "metric"
    try:
        from_month, to_month, currency = validated_range(from_month, to_month, currency)
    except ValidationFailed as failure:
        errors.update({name: " ".join(messages) for name, messages in failure.fields.items()})
        from_month, to_month, currency = default.from_month, default.to_month, "EUR"
    as_of = min(today, month_end(to_month))
    query = analytics.AnalyticsQuery(
        from_month=from_month,
        to_month=to_month,
        currency=currency,
        as_of=as_of,
        group_by=group_by,  # type: ignore[arg-type]
    )
    return query, errors


def _number(value: Decimal | None) -> float | None:
    # Chart data only (ECharts plots numbers); every table and CSV keeps the exact Decimal.
    return None if value is None else float(value)


def _charts(
    movements: list[Any], cohorts: list[Any], deferred: list[Any], ageing: analytics.Ageing
) -> dict[str, Any]:
    labels = [f"{row.month:%Y-%m}" for row in movements]
    width = max((len(row.mrr_retention) for row in cohorts), default=0)
    heat = [
        [offset, index, _number(value)]
        for index, row in enumerate(cohorts)
        for offset, value in enumerate(row.customer_retention)
    ]
    bucket_labels = analytics.ageing_labels()
    return {
        "movements": {
            "labels": labels,
            "series": [
                {"name": _("New"), "values": [_number(row.new) for row in movements]},
                {"name": _("Expansion"), "values": [_number(row.expansion) for row in movements]},
                {"name": _("Reactivation"), "values": [_number(row.reactivation) for row in movements]},
                {"name": _("Contraction"), "values": [_number(row.contraction) for row in movements]},
                {"name": _("Churn"), "values": [_number(row.churn) for row in movements]},
            ],
            "line": {"name": _("MRR"), "values": [_number(row.closing_mrr) for row in movements]},
        },
        "cohorts": {
            "x": [str(offset) for offset in range(width)],
            "y": [f"{row.cohort:%Y-%m}" for row in cohorts],
            "values": heat,
            "x_name": _("Months since start"),
        },
        "deferred": {
            "labels": [f"{row.month:%Y-%m}" for row in deferred],
            "series": [
                {"name": _("Billed"), "values": [_number(row.billed) for row in deferred]},
                {"name": _("Recognised"), "values": [_number(row.recognised) for row in deferred]},
            ],
            "line": {
                "name": _("Deferred at month end"),
                "values": [_number(row.deferred_closing) for row in deferred],
            },
        },
        "ageing": {
            "labels": [str(bucket_labels[bucket]) for bucket in AGEING_BUCKETS],
            "values": [_number(ageing.totals[bucket]) for bucket in AGEING_BUCKETS],
        },
    }


@login_required
@require_GET
def revenue(request: HttpRequest) -> HttpResponse:
    _authorise(request)
    query, errors = _query(request)
    start, end, currency = query.from_month, query.to_month, query.currency
    movements = analytics.mrr_movements(from_month=start, to_month=end, currency=currency)
    cohorts = analytics.cohort_retention(from_month=start, to_month=end, currency=currency)
    deferred = analytics.deferred_revenue(from_month=start, to_month=end, currency=currency)
    ageing = analytics.receivables_ageing(as_of=query.as_of or clock.today(), currency=query.currency)
    usage = analytics.usage_trends(
        from_month=query.from_month, to_month=query.to_month, group_by=query.group_by
    )
    behaviour = analytics.payment_behaviour(from_month=start, to_month=end, currency=currency)
    params = {
        "from": f"{query.from_month:%Y-%m}",
        "to": f"{query.to_month:%Y-%m}",
        "currency": query.currency,
        "group_by": query.group_by,
    }
    context = {
        "query": query,
        "params": params,
        "errors": errors,
        "currencies": CURRENCIES,
        "kpis": analytics.kpis(movements),
        "tables": {
            "mrr": analytics.mrr_table(movements),
            "cohorts": analytics.cohort_table(cohorts),
            "deferred": analytics.deferred_table(deferred),
            "ageing": analytics.ageing_table(ageing),
            "usage": analytics.usage_table(usage),
            "payments": analytics.payment_months_table(behaviour),
            "payers": analytics.payment_customers_table(behaviour),
        },
        "ageing": ageing,
        "charts": _charts(movements, cohorts, deferred, ageing),
    }
    return render(request, "billing/analytics/revenue.html", context, status=422 if errors else 200)


@login_required
@require_GET
def revenue_export(request: HttpRequest, name: str) -> HttpResponse:
    _authorise(request)
    if name not in analytics.TABLE_NAMES:
        raise Http404(name)
    query, errors = _query(request)
    if errors:
        raise ValidationFailed(_("The date range is not valid."), code="invalid_range", fields=errors)
    return csv_response(analytics.table(name, query), query)


urlpatterns: list[URLPattern] = [
    path("revenue/", revenue, name="revenue"),
    path("revenue/<slug:name>.csv", revenue_export, name="revenue_export"),
]
