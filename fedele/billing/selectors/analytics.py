"""Revenue and behaviour analytics: the reads behind the Revenue page, its CSV files and the API.

The figures are computed in ``analytics_mrr`` (MRR replay, movements, churn, NRR, ARPA, cohorts),
``analytics_finance`` (deferred revenue, ageing, payment behaviour) and ``analytics_usage``; this
module shapes them into tables (page and CSV share one shape) and carries the KPI summary.
Definitions: docs/billing-analytics.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils.translation import gettext as _

from fedele.billing.selectors.analytics_common import Table, add_months, month_start
from fedele.billing.selectors.analytics_finance import (
    AGEING_BUCKETS,
    Ageing,
    DeferredMonth,
    PaymentBehaviour,
    deferred_revenue,
    payment_behaviour,
    receivables_ageing,
)
from fedele.billing.selectors.analytics_mrr import CohortRow, MrrMonth, cohort_retention, mrr_movements
from fedele.billing.selectors.analytics_usage import UsageGrouping, UsageRow, usage_trends

__all__ = [
    "TABLE_NAMES",
    "AnalyticsQuery",
    "Kpis",
    "ageing_table",
    "cohort_retention",
    "cohort_table",
    "deferred_revenue",
    "deferred_table",
    "kpis",
    "mrr_movements",
    "mrr_table",
    "payment_behaviour",
    "payment_customers_table",
    "payment_months_table",
    "receivables_ageing",
    "table",
    "usage_table",
    "usage_trends",
]


@dataclass(frozen=True, slots=True)
class AnalyticsQuery:
    from_month: date
    to_month: date
    currency: str = "EUR"
    as_of: date | None = None
    group_by: UsageGrouping = "metric"

    @classmethod
    def last_twelve_months(cls, today: date, currency: str = "EUR") -> AnalyticsQuery:
        month = month_start(today)
        return cls(from_month=add_months(month, -11), to_month=month, currency=currency, as_of=today)


@dataclass(frozen=True, slots=True)
class Kpis:
    month: date
    mrr: Decimal
    arr: Decimal
    paying_customers: int
    arpa: Decimal | None
    net_revenue_retention_12m: Decimal | None
    net_revenue_retention: Decimal | None
    logo_churn_rate: Decimal | None
    revenue_churn_rate: Decimal | None


def kpis(rows: list[MrrMonth]) -> Kpis | None:
    """The KPI cards: the figures of the last month of the range."""
    if not rows:
        return None
    last = rows[-1]
    return Kpis(
        month=last.month,
        mrr=last.closing_mrr,
        arr=last.arr,
        paying_customers=last.customers_closing,
        arpa=last.arpa,
        net_revenue_retention_12m=last.net_revenue_retention_12m,
        net_revenue_retention=last.net_revenue_retention,
        logo_churn_rate=last.logo_churn_rate,
        revenue_churn_rate=last.revenue_churn_rate,
    )


def mrr_table(rows: list[MrrMonth]) -> Table:
    columns = (
        ("month", _("Month")),
        ("opening_mrr", _("Opening MRR")),
        ("new", _("New")),
        ("expansion", _("Expansion")),
        ("contraction", _("Contraction")),
        ("churn", _("Churn")),
        ("reactivation", _("Reactivation")),
        ("closing_mrr", _("Closing MRR")),
        ("arr", _("ARR")),
        ("customers_closing", _("Paying customers")),
        ("new_customers", _("New customers")),
        ("churned_customers", _("Churned customers")),
        ("reactivated_customers", _("Reactivated customers")),
        ("arpa", _("ARPA")),
        ("logo_churn_rate", _("Logo churn %")),
        ("revenue_churn_rate", _("Revenue churn %")),
        ("net_revenue_retention", _("NRR monthly %")),
        ("net_revenue_retention_12m", _("NRR 12 months %")),
    )
    return Table("mrr", columns, tuple({key: getattr(row, key) for key, _header in columns} for row in rows))


def cohort_table(rows: list[CohortRow]) -> Table:
    width = max((len(row.customers_retained) for row in rows), default=0)
    columns = [
        ("cohort", _("Cohort")),
        ("customers", _("Customers")),
        ("starting_mrr", _("Starting MRR")),
    ]
    for offset in range(width):
        columns.append((f"customers_{offset}", _("Customers %% month %(offset)s") % {"offset": offset}))
    for offset in range(width):
        columns.append((f"mrr_{offset}", _("MRR %% month %(offset)s") % {"offset": offset}))
    table_rows = []
    for row in rows:
        cells: dict[str, object] = {
            "cohort": row.cohort,
            "customers": row.customers,
            "starting_mrr": row.starting_mrr,
        }
        for offset, value in enumerate(row.customer_retention):
            cells[f"customers_{offset}"] = value
        for offset, amount in enumerate(row.mrr_retention):
            cells[f"mrr_{offset}"] = amount
        table_rows.append(cells)
    return Table("cohorts", tuple(columns), tuple(table_rows))


def deferred_table(rows: list[DeferredMonth]) -> Table:
    columns = (
        ("month", _("Month")),
        ("billed", _("Billed")),
        ("recognised", _("Recognised")),
        ("deferred_closing", _("Deferred at month end")),
    )
    return Table(
        "deferred", columns, tuple({key: getattr(row, key) for key, _header in columns} for row in rows)
    )


def ageing_labels() -> dict[str, str]:
    return {
        "current": _("Not yet due"),
        "days_1_30": _("1–30 days"),
        "days_31_60": _("31–60 days"),
        "days_61_90": _("61–90 days"),
        "days_over_90": _("Over 90 days"),
    }


def ageing_table(ageing: Ageing) -> Table:
    labels = ageing_labels()
    columns = (
        ("customer", _("Customer")),
        ("customer_id", _("Customer id")),
        ("invoices", _("Open invoices")),
        *((bucket, labels[bucket]) for bucket in AGEING_BUCKETS),
        ("total", _("Total")),
    )
    rows: list[dict[str, object]] = [
        {
            "customer": row.customer_name,
            "customer_id": row.customer_public_id,
            "invoices": row.invoices,
            **row.buckets,
            "total": row.total,
        }
        for row in ageing.rows
    ]
    rows.append({"customer": _("Total"), "invoices": ageing.invoices, **ageing.totals, "total": ageing.total})
    return Table("ageing", columns, tuple(rows))


def usage_table(rows: list[UsageRow]) -> Table:
    columns = (
        ("month", _("Month")),
        ("metric_code", _("Metric")),
        ("unit", _("Unit")),
        ("aggregation", _("Aggregation")),
        ("group_label", _("Group")),
        ("group_key", _("Group id")),
        ("value", _("Usage")),
        ("events", _("Events")),
    )
    return Table(
        "usage", columns, tuple({key: getattr(row, key) for key, _header in columns} for row in rows)
    )


def payment_months_table(behaviour: PaymentBehaviour) -> Table:
    columns = (
        ("month", _("Month")),
        ("invoices_paid", _("Invoices paid")),
        ("average_days_to_pay", _("Average days to pay")),
        ("median_days_to_pay", _("Median days to pay")),
        ("paid_late", _("Paid late")),
        ("payments_succeeded", _("Payments succeeded")),
        ("payments_failed", _("Payments failed")),
        ("payments_pending", _("Payments pending")),
        ("failure_rate", _("Failure rate %")),
    )
    return Table(
        "payments",
        columns,
        tuple({key: getattr(row, key) for key, _header in columns} for row in behaviour.months),
    )


def payment_customers_table(behaviour: PaymentBehaviour) -> Table:
    columns = (
        ("customer_name", _("Customer")),
        ("customer_public_id", _("Customer id")),
        ("invoices_paid", _("Invoices paid")),
        ("average_days_to_pay", _("Average days to pay")),
        ("median_days_to_pay", _("Median days to pay")),
        ("paid_late", _("Paid late")),
        ("payments_failed", _("Payments failed")),
    )
    return Table(
        "payers",
        columns,
        tuple({key: getattr(row, key) for key, _header in columns} for row in behaviour.customers),
    )


def _mrr(query: AnalyticsQuery) -> Table:
    return mrr_table(
        mrr_movements(from_month=query.from_month, to_month=query.to_month, currency=query.currency)
    )


def _cohorts(query: AnalyticsQuery) -> Table:
    return cohort_table(
        cohort_retention(from_month=query.from_month, to_month=query.to_month, currency=query.currency)
    )


def _deferred(query: AnalyticsQuery) -> Table:
    return deferred_table(
        deferred_revenue(from_month=query.from_month, to_month=query.to_month, currency=query.currency)
    )


def _ageing(query: AnalyticsQuery) -> Table:
    return ageing_table(receivables_ageing(as_of=query.as_of or query.to_month, currency=query.currency))


def _usage(query: AnalyticsQuery) -> Table:
    return usage_table(
        usage_trends(from_month=query.from_month, to_month=query.to_month, group_by=query.group_by)
    )


def _payments(query: AnalyticsQuery) -> Table:
    return payment_months_table(
        payment_behaviour(from_month=query.from_month, to_month=query.to_month, currency=query.currency)
    )


def _payers(query: AnalyticsQuery) -> Table:
    return payment_customers_table(
        payment_behaviour(from_month=query.from_month, to_month=query.to_month, currency=query.currency)
    )


_TABLES: dict[str, Callable[[AnalyticsQuery], Table]] = {
    "mrr": _mrr,
    "cohorts": _cohorts,
    "deferred": _deferred,
    "ageing": _ageing,
    "usage": _usage,
    "payments": _payments,
    "payers": _payers,
}
TABLE_NAMES = tuple(_TABLES)


def table(name: str, query: AnalyticsQuery) -> Table:
    """One named table (the CSV exports); KeyError for an unknown name."""
    return _TABLES[name](query)
