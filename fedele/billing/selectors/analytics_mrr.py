"""MRR, ARR, MRR movements, churn, net revenue retention, ARPA and cohorts, replayed from the
subscription history (``SubscriptionChange.after`` snapshots; see docs/billing-analytics.md).

The replay: a subscription's MRR on a day is the ``mrr`` of the ``after`` snapshot of its latest
change effective on or before that day (snapshots in another currency count as zero). A customer's
MRR is the sum over their subscriptions. Movements compare each customer's MRR at the end of the
previous month with their MRR at the end of the month, so opening + movements = closing exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from fedele.billing.models import SubscriptionChange
from fedele.billing.selectors.analytics_common import (
    add_months,
    month_end,
    month_range,
    month_start,
    months_between,
    next_month,
    percent,
    previous_month,
    validated_range,
)
from fedele.shared.money import Money

# Scheduling rows record an intention, not a state change: replaying their snapshot could bring back
# an older state on the scheduled date, after a later immediate change.
NOT_A_STATE_CHANGE = (
    SubscriptionChange.Kind.CHANGE_SCHEDULED,
    SubscriptionChange.Kind.CHANGE_UNSCHEDULED,
    SubscriptionChange.Kind.CANCEL_SCHEDULED,
)
ZERO = Decimal(0)

MonthEndMrr = dict[date, dict[int, Decimal]]
"""month → {account id: MRR at the end of that month}, positive values only."""


@dataclass(frozen=True, slots=True)
class MrrMonth:
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
    """Monthly NRR: (opening + expansion + contraction + churn) / opening, in percent."""
    net_revenue_retention_12m: Decimal | None
    """Today's MRR of the customers paying 12 months earlier / their MRR then, in percent."""

    @property
    def net_movement(self) -> Decimal:
        return self.new + self.expansion + self.contraction + self.churn + self.reactivation


@dataclass(frozen=True, slots=True)
class CohortRow:
    cohort: date
    customers: int
    starting_mrr: Decimal
    customers_retained: tuple[int, ...]
    """Index k: customers of the cohort still paying at the end of month cohort + k."""
    mrr_retained: tuple[Decimal, ...]
    customer_retention: tuple[Decimal | None, ...]
    mrr_retention: tuple[Decimal | None, ...]


def _snapshot_mrr(snapshot: Any, currency: str) -> Decimal:
    if not isinstance(snapshot, dict) or snapshot.get("currency", currency) != currency:
        return ZERO
    try:
        return Decimal(str(snapshot.get("mrr") or "0"))
    except ArithmeticError:
        return ZERO


def _history(until: date) -> Iterable[tuple[int, int, date, Any]]:
    return (
        SubscriptionChange.objects.filter(effective_on__lte=until)
        .exclude(kind__in=NOT_A_STATE_CHANGE)
        .order_by("effective_on", "id")
        .values_list("subscription_id", "subscription__account_id", "effective_on", "after")
        .iterator(chunk_size=5000)
    )


def month_end_mrr(*, until_month: date, currency: str) -> tuple[MonthEndMrr, date | None]:
    """Each account's MRR at every month end from the first change up to ``until_month`` (one query).

    Returns the snapshots and the first month of history (None when there is no history).
    """
    last_day = month_end(until_month)
    subscription_mrr: dict[int, Decimal] = {}
    account_mrr: dict[int, Decimal] = defaultdict(lambda: ZERO)
    snapshots: MonthEndMrr = {}
    month: date | None = None
    first_month: date | None = None

    def close_months_before(day: date) -> None:
        nonlocal month
        while month is not None and month_end(month) < day:
            snapshots[month] = {account: mrr for account, mrr in account_mrr.items() if mrr > 0}
            month = next_month(month)

    for subscription_id, account_id, effective_on, after in _history(last_day):
        if month is None:
            month = first_month = month_start(effective_on)
        close_months_before(effective_on)
        mrr = _snapshot_mrr(after, currency)
        account_mrr[account_id] += mrr - subscription_mrr.get(subscription_id, ZERO)
        subscription_mrr[subscription_id] = mrr
    if month is not None:
        close_months_before(next_month(until_month))
    return snapshots, first_month


def _account_mrr_at(snapshots: MonthEndMrr, month: date) -> dict[int, Decimal]:
    return snapshots.get(month, {})


def _nrr_12_months(snapshots: MonthEndMrr, month: date) -> Decimal | None:
    base = _account_mrr_at(snapshots, add_months(month, -12))
    now = _account_mrr_at(snapshots, month)
    return percent(sum((now.get(account, ZERO) for account in base), ZERO), sum(base.values(), ZERO))


def mrr_movements(*, from_month: date, to_month: date, currency: str = "EUR") -> list[MrrMonth]:
    """One row per month of [from_month, to_month]; every amount is in ``currency``."""
    start, end, currency = validated_range(from_month, to_month, currency)
    snapshots, _ = month_end_mrr(until_month=end, currency=currency)
    ever_paying: set[int] = set()
    for month, accounts in snapshots.items():
        if month < previous_month(start):
            ever_paying.update(accounts)
    zero = Money.zero(currency).amount
    rows = []
    for month in month_range(start, end):
        opening = _account_mrr_at(snapshots, previous_month(month))
        closing = _account_mrr_at(snapshots, month)
        ever_paying.update(opening)
        totals = dict.fromkeys(("new", "expansion", "contraction", "churn", "reactivation"), zero)
        counts = dict.fromkeys(("new", "churn", "reactivation"), 0)
        for account in opening.keys() | closing.keys():
            before, after = opening.get(account, ZERO), closing.get(account, ZERO)
            if before == after:
                continue
            if before == 0:
                kind = "reactivation" if account in ever_paying else "new"
                counts[kind] += 1
            elif after == 0:
                kind = "churn"
                counts[kind] += 1
            else:
                kind = "expansion" if after > before else "contraction"
            totals[kind] += after - before
        opening_mrr = sum(opening.values(), zero)
        closing_mrr = sum(closing.values(), zero)
        retained = opening_mrr + totals["expansion"] + totals["contraction"] + totals["churn"]
        rows.append(
            MrrMonth(
                month=month,
                opening_mrr=opening_mrr,
                new=totals["new"],
                expansion=totals["expansion"],
                contraction=totals["contraction"],
                churn=totals["churn"],
                reactivation=totals["reactivation"],
                closing_mrr=closing_mrr,
                arr=closing_mrr * 12,
                customers_opening=len(opening),
                customers_closing=len(closing),
                new_customers=counts["new"],
                reactivated_customers=counts["reactivation"],
                churned_customers=counts["churn"],
                arpa=(closing_mrr / len(closing)).quantize(Decimal("0.01")) if closing else None,
                logo_churn_rate=percent(counts["churn"], len(opening)),
                revenue_churn_rate=percent(-(totals["churn"] + totals["contraction"]), opening_mrr),
                net_revenue_retention=percent(retained, opening_mrr),
                net_revenue_retention_12m=_nrr_12_months(snapshots, month),
            )
        )
    return rows


def cohort_retention(*, from_month: date, to_month: date, currency: str = "EUR") -> list[CohortRow]:
    """Customers grouped by the first month they ended paying (MRR > 0 at the month end), for the
    cohorts of [from_month, to_month]; retention measured at each later month end up to to_month."""
    start, end, currency = validated_range(from_month, to_month, currency)
    snapshots, first_month = month_end_mrr(until_month=end, currency=currency)
    cohort_of: dict[int, date] = {}
    if first_month is not None:
        for month in month_range(first_month, end):
            for account in _account_mrr_at(snapshots, month):
                cohort_of.setdefault(account, month)
    members: dict[date, list[int]] = defaultdict(list)
    for account, cohort in cohort_of.items():
        if start <= cohort <= end:
            members[cohort].append(account)
    rows = []
    for cohort in month_range(start, end):
        accounts = members.get(cohort, [])
        if not accounts:
            continue
        base = _account_mrr_at(snapshots, cohort)
        starting_mrr = sum((base[account] for account in accounts), ZERO)
        retained_counts: list[int] = []
        retained_mrr: list[Decimal] = []
        for offset in range(months_between(cohort, end) + 1):
            later = _account_mrr_at(snapshots, add_months(cohort, offset))
            retained_counts.append(sum(1 for account in accounts if account in later))
            retained_mrr.append(sum((later.get(account, ZERO) for account in accounts), ZERO))
        rows.append(
            CohortRow(
                cohort=cohort,
                customers=len(accounts),
                starting_mrr=starting_mrr,
                customers_retained=tuple(retained_counts),
                mrr_retained=tuple(retained_mrr),
                customer_retention=tuple(percent(count, len(accounts)) for count in retained_counts),
                mrr_retention=tuple(percent(amount, starting_mrr) for amount in retained_mrr),
            )
        )
    return rows
