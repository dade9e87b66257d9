"""Billing API: revenue analytics (permission ``billing.view_revenue``), JSON or CSV.

Every endpoint takes ``from`` and ``to`` months (``2026-01`` or any date in the month; default the
last twelve months) and a ``currency`` (default EUR); ``format=csv`` returns the same table as a
CSV file. Amounts are decimal strings, rates are percent with two decimals (null when undefined).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from pydantic import field_validator

from fedele.accounts.facade import actor_for
from fedele.billing.selectors import analytics
from fedele.billing.selectors.analytics_common import Table, add_months, month_start, validated_range
from fedele.shared import clock
from fedele.shared.api import ERROR_RESPONSES, require_scope
from fedele.shared.errors import PermissionDenied

router = Router(tags=["billing: analytics"])

MONTH = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


def parse_month(value: Any) -> date | None:
    """'2026-03' or '2026-03-17' → 1 March 2026; ValueError for anything else."""
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return month_start(value)
    match = MONTH.match(str(value).strip())
    if not match:
        raise ValueError("Use a month as YYYY-MM (or a date as YYYY-MM-DD).")
    year, month, day = match.groups()
    return month_start(date(int(year), int(month), int(day or 1)))


class RangeQuery(Schema):
    from_month: date | None = Field(None, alias="from", description="First month, YYYY-MM.")
    to_month: date | None = Field(None, alias="to", description="Last month, YYYY-MM (default: this month).")
    currency: str = Field("EUR", min_length=3, max_length=3)
    format: Literal["json", "csv"] = "json"

    @field_validator("from_month", "to_month", mode="before")
    @classmethod
    def _month(cls, value: Any) -> date | None:
        return parse_month(value)

    def query(self, **extra: Any) -> analytics.AnalyticsQuery:
        today = clock.today()
        to_month = self.to_month or month_start(today)
        from_month = self.from_month or add_months(to_month, -11)
        from_month, to_month, currency = validated_range(from_month, to_month, self.currency)
        return analytics.AnalyticsQuery(from_month=from_month, to_month=to_month, currency=currency, **extra)


class AgeingQuery(Schema):
    as_of: date | None = Field(None, description="Age the receivables on this day (default: today).")
    currency: str = Field("EUR", min_length=3, max_length=3)
    format: Literal["json", "csv"] = "json"


class UsageQuery(RangeQuery):
    group_by: Literal["metric", "customer", "plan"] = "metric"


class MrrMonthOut(Schema):
    month: date
    opening_mrr: Decimal
    new: Decimal
    expansion: Decimal
    contraction: Decimal
    churn: Decimal
    reactivation: Decimal
    closing_mrr: Decimal
    arr: Decimal
    customers_opening: int
    customers_closing: int
    new_customers: int
    reactivated_customers: int
    churned_customers: int
    arpa: Decimal | None
    logo_churn_rate: Decimal | None
    revenue_churn_rate: Decimal | None
    net_revenue_retention: Decimal | None
    net_revenue_retention_12m: Decimal | None


class CohortOut(Schema):
    cohort: date
    customers: int
    starting_mrr: Decimal
    customers_retained: list[int]
    mrr_retained: list[Decimal]
    customer_retention: list[Decimal | None]
    mrr_retention: list[Decimal | None]


class DeferredMonthOut(Schema):
    month: date
    billed: Decimal
    recognised: Decimal
    deferred_closing: Decimal


class AgeingRowOut(Schema):
    customer_id: str
    customer_name: str
    invoices: int
    buckets: dict[str, Decimal]
    total: Decimal


class AgeingOut(Schema):
    as_of: date
    currency: str
    invoices: int
    totals: dict[str, Decimal]
    total: Decimal
    customers: list[AgeingRowOut]


class UsageRowOut(Schema):
    month: date
    metric_code: str
    unit: str
    aggregation: str
    group_key: str
    group_label: str
    value: Decimal
    events: int


class PaymentMonthOut(Schema):
    month: date
    invoices_paid: int
    average_days_to_pay: Decimal | None
    median_days_to_pay: Decimal | None
    paid_late: int
    payments_succeeded: int
    payments_failed: int
    payments_pending: int
    failure_rate: Decimal | None


class PayerOut(Schema):
    customer_id: str
    customer_name: str
    invoices_paid: int
    average_days_to_pay: Decimal | None
    median_days_to_pay: Decimal | None
    paid_late: int
    payments_failed: int


class RangeOut(Schema):
    from_month: date = Field(..., serialization_alias="from")
    to_month: date = Field(..., serialization_alias="to")
    currency: str


class MrrOut(RangeOut):
    months: list[MrrMonthOut]


class CohortsOut(RangeOut):
    cohorts: list[CohortOut]


class DeferredOut(RangeOut):
    months: list[DeferredMonthOut]


class UsageOut(RangeOut):
    group_by: str
    rows: list[UsageRowOut]


class PaymentsOut(RangeOut):
    months: list[PaymentMonthOut]
    customers: list[PayerOut]


def _authorise(request: HttpRequest) -> None:
    require_scope(request, "read")
    if not actor_for(request.user).can("billing.view_revenue"):
        raise PermissionDenied("You do not have permission to see revenue analytics.")


def csv_response(table: Table, query: analytics.AnalyticsQuery) -> HttpResponse:
    response = HttpResponse(table.as_csv(), content_type="text/csv; charset=utf-8")
    name = f"{table.name}-{query.currency}-{query.from_month:%Y-%m}-{query.to_month:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _range(query: analytics.AnalyticsQuery) -> dict[str, Any]:
    return {"from_month": query.from_month, "to_month": query.to_month, "currency": query.currency}


@router.get(
    "/analytics/mrr",
    response={200: MrrOut, **ERROR_RESPONSES},
    by_alias=True,
    summary="MRR, ARR and MRR movements per month",
)
def mrr(request: HttpRequest, params: Query[RangeQuery]) -> Any:
    _authorise(request)
    query = params.query()
    rows = analytics.mrr_movements(
        from_month=query.from_month, to_month=query.to_month, currency=query.currency
    )
    if params.format == "csv":
        return csv_response(analytics.mrr_table(rows), query)
    return {**_range(query), "months": rows}


@router.get(
    "/analytics/cohorts",
    response={200: CohortsOut, **ERROR_RESPONSES},
    by_alias=True,
    summary="Cohort retention grid (customers and MRR)",
)
def cohorts(request: HttpRequest, params: Query[RangeQuery]) -> Any:
    _authorise(request)
    query = params.query()
    rows = analytics.cohort_retention(
        from_month=query.from_month, to_month=query.to_month, currency=query.currency
    )
    if params.format == "csv":
        return csv_response(analytics.cohort_table(rows), query)
    return {**_range(query), "cohorts": rows}


@router.get(
    "/analytics/deferred-revenue",
    response={200: DeferredOut, **ERROR_RESPONSES},
    by_alias=True,
    summary="Billed, recognised and deferred revenue per month",
)
def deferred(request: HttpRequest, params: Query[RangeQuery]) -> Any:
    _authorise(request)
    query = params.query()
    rows = analytics.deferred_revenue(
        from_month=query.from_month, to_month=query.to_month, currency=query.currency
    )
    if params.format == "csv":
        return csv_response(analytics.deferred_table(rows), query)
    return {**_range(query), "months": rows}


@router.get(
    "/analytics/ageing",
    response={200: AgeingOut, **ERROR_RESPONSES},
    summary="Receivables by days past due, per customer and in total",
)
def ageing(request: HttpRequest, params: Query[AgeingQuery]) -> Any:
    _authorise(request)
    as_of = params.as_of or clock.today()
    result = analytics.receivables_ageing(as_of=as_of, currency=params.currency)
    if params.format == "csv":
        month = month_start(as_of)
        query = analytics.AnalyticsQuery(from_month=month, to_month=month, currency=result.currency)
        return csv_response(analytics.ageing_table(result), query)
    return {
        "as_of": result.as_of,
        "currency": result.currency,
        "invoices": result.invoices,
        "totals": result.totals,
        "total": result.total,
        "customers": [
            {
                "customer_id": row.customer_public_id,
                "customer_name": row.customer_name,
                "invoices": row.invoices,
                "buckets": row.buckets,
                "total": row.total,
            }
            for row in result.rows
        ],
    }


@router.get(
    "/analytics/usage",
    response={200: UsageOut, **ERROR_RESPONSES},
    by_alias=True,
    summary="Usage per metric per month, in total, per customer or per plan",
)
def usage(request: HttpRequest, params: Query[UsageQuery]) -> Any:
    _authorise(request)
    query = params.query(group_by=params.group_by)
    rows = analytics.usage_trends(
        from_month=query.from_month, to_month=query.to_month, group_by=params.group_by
    )
    if params.format == "csv":
        return csv_response(analytics.usage_table(rows), query)
    return {**_range(query), "group_by": params.group_by, "rows": rows}


@router.get(
    "/analytics/payments",
    response={200: PaymentsOut, **ERROR_RESPONSES},
    by_alias=True,
    summary="Days to pay and payment failure rate per month and per customer",
)
def payments(request: HttpRequest, params: Query[RangeQuery]) -> Any:
    _authorise(request)
    query = params.query()
    behaviour = analytics.payment_behaviour(
        from_month=query.from_month, to_month=query.to_month, currency=query.currency
    )
    if params.format == "csv":
        return csv_response(analytics.payment_months_table(behaviour), query)
    return {
        **_range(query),
        "months": behaviour.months,
        "customers": [
            {
                "customer_id": row.customer_public_id,
                "customer_name": row.customer_name,
                "invoices_paid": row.invoices_paid,
                "average_days_to_pay": row.average_days_to_pay,
                "median_days_to_pay": row.median_days_to_pay,
                "paid_late": row.paid_late,
                "payments_failed": row.payments_failed,
            }
            for row in behaviour.customers
        ],
    }
