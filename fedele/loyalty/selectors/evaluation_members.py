"""Members against non-members (billing behaviour) and the programme's ROI.

Both read billing through ``fedele.billing.facade.customer_activity`` (paid EUR invoices, net of VAT,
and subscription standing per customer). The population of a period is every customer billing saw
in it: an invoice paid or a subscription live on at least one day. A customer is a *member* when
enrolled in the programme by the end of the period (whatever the status), otherwise a non-member.

* spend per customer = Σ net paid / customers in the group;
* purchase frequency = invoices paid / customers in the group;
* retention = customers who paid in both halves of the period / customers who paid in the first;
* churn rate = customers who churned (their last live subscription ended in the period) /
  customers with a subscription live in the period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Sum

from fedele.billing.contracts import CustomerActivity
from fedele.billing.facade import customer_activity
from fedele.loyalty.models import Member, PointsEntry
from fedele.loyalty.selectors.evaluation_common import (
    CENT,
    DEFAULT_MARGIN_PERCENT,
    HUNDRED,
    Period,
    cents,
    percent,
    points_value,
    ratio,
)
from fedele.loyalty.selectors.evaluation_ledger import REDEEMING_ACCOUNTS

ActivitySource = Callable[[date, date], Sequence[CustomerActivity]]
MEMBERS, NON_MEMBERS = "members", "non_members"


def billing_activity(start: date, end: date) -> list[CustomerActivity]:
    return customer_activity(start=start, end=end)


def member_customers(period: Period) -> set[str]:
    """Public ids of the customers enrolled in the programme by the end of the period."""
    return {
        str(public_id)
        for public_id in Member.objects.filter(
            programme=period.programme, enrolled_at__lt=period.ends_at
        ).values_list("customer__public_id", flat=True)
    }


@dataclass(frozen=True, slots=True)
class GroupFigures:
    group: str
    customers: int
    spend_total: Decimal
    spend_per_customer: Decimal | None
    purchases: int
    purchase_frequency: Decimal | None
    active_first_half: int
    retained: int
    retention_rate: Decimal | None
    subscribers: int
    churned: int
    churn_rate: Decimal | None


@dataclass(frozen=True, slots=True)
class MembersComparison:
    start: date
    end: date
    first_half: tuple[date, date]
    second_half: tuple[date, date]
    groups: list[GroupFigures]


def _group(
    name: str, rows: list[CustomerActivity], paid_first: set[str], paid_second: set[str]
) -> GroupFigures:
    spend = sum((row.amount_paid_net for row in rows), Decimal("0.00"))
    purchases = sum(row.invoices_paid for row in rows)
    ids = {row.customer_id for row in rows}
    active_first = ids & paid_first
    retained = active_first & paid_second
    subscribers = [row for row in rows if row.subscriptions_in_window > 0]
    churned = sum(1 for row in subscribers if row.cancelled_on is not None)
    return GroupFigures(
        group=name,
        customers=len(rows),
        spend_total=cents(spend),
        spend_per_customer=cents(spend / len(rows)) if rows else None,
        purchases=purchases,
        purchase_frequency=ratio(purchases, len(rows)),
        active_first_half=len(active_first),
        retained=len(retained),
        retention_rate=percent(len(retained), len(active_first)),
        subscribers=len(subscribers),
        churned=churned,
        churn_rate=percent(churned, len(subscribers)),
    )


def members_comparison(period: Period, *, activity: ActivitySource = billing_activity) -> MembersComparison:
    """Members and non-members side by side over the period (see the module docstring)."""
    rows = list(activity(period.start, period.end))
    first, second = period.halves()
    paid_first = {row.customer_id for row in activity(*first) if row.invoices_paid > 0}
    paid_second = {row.customer_id for row in activity(*second) if row.invoices_paid > 0}
    members = member_customers(period)
    return MembersComparison(
        start=period.start,
        end=period.end,
        first_half=first,
        second_half=second,
        groups=[
            _group(MEMBERS, [row for row in rows if row.customer_id in members], paid_first, paid_second),
            _group(
                NON_MEMBERS, [row for row in rows if row.customer_id not in members], paid_first, paid_second
            ),
        ],
    )


# ----------------------------------------------------------------------------------------------
# ROI


@dataclass(frozen=True, slots=True)
class Stratum:
    baseline_spend_band: str
    subscribed_at_baseline_end: bool
    members: int
    non_members: int
    member_mean_spend: Decimal | None
    non_member_mean_spend: Decimal | None
    incremental_spend: Decimal | None


@dataclass(frozen=True, slots=True)
class Roi:
    start: date
    end: date
    baseline_start: date
    baseline_end: date
    margin_percent: Decimal
    matched_members: int
    unmatched_members: int
    incremental_spend: Decimal
    incremental_margin: Decimal
    points_redeemed: int
    points_cost: Decimal
    reward_costs: Decimal
    total_cost: Decimal
    net_benefit: Decimal
    roi_percent: Decimal | None
    strata: list[Stratum]


def _bands(values: list[Decimal]) -> list[Decimal]:
    """Quartile cut points of the positive baseline spends (empty when there are none)."""
    positive = sorted(value for value in values if value > 0)
    if not positive:
        return []
    return [positive[(len(positive) - 1) * quarter // 4] for quarter in (1, 2, 3)]


def _band(spend: Decimal, cuts: list[Decimal]) -> str:
    if spend <= 0:
        return "0"
    for index, cut in enumerate(cuts):
        if spend <= cut:
            return f"q{index + 1}"
    return "q4"


def programme_roi(
    period: Period,
    *,
    margin_percent: Decimal = DEFAULT_MARGIN_PERCENT,
    reward_costs: Decimal = Decimal("0.00"),
    activity: ActivitySource = billing_activity,
) -> Roi:
    """ROI = (incremental spend margin − cost of the points redeemed − reward costs) / cost.

    Incremental spend: members are compared with *matched* non-members — customers in the same
    stratum of the baseline (the period of the same length just before): spend band in that baseline
    (nothing, or which quartile of the positive baseline spends) × whether they had a live
    subscription at its end. In each stratum with both groups, incremental spend = members ×
    (members' mean period spend − non-members' mean period spend); members in a stratum without
    non-members are left out (``unmatched_members``). The margin is ``margin_percent`` of it.
    Cost of the points: points redeemed in the period (ledger, operator and partner burns, net of
    reversals) × the programme's point value. ``reward_costs``: EUR the operator spent on rewards
    beyond what the point value prices (stock, shipping, fulfilment) — an input, since the catalogue
    carries no purchase cost. ``roi_percent`` is null when the cost is zero."""
    rows = list(activity(period.start, period.end))
    baseline_start, baseline_end = period.previous()
    baseline = {row.customer_id: row for row in activity(baseline_start, baseline_end)}
    members = member_customers(period)
    cuts = _bands([row.amount_paid_net for row in baseline.values()])
    strata: dict[tuple[str, bool], dict[str, list[Decimal]]] = defaultdict(
        lambda: {MEMBERS: [], NON_MEMBERS: []}
    )
    for row in rows:
        before = baseline.get(row.customer_id)
        key = (
            _band(before.amount_paid_net if before else Decimal(0), cuts),
            bool(before and before.active_subscriptions_at_end > 0),
        )
        strata[key][MEMBERS if row.customer_id in members else NON_MEMBERS].append(row.amount_paid_net)
    incremental = Decimal(0)
    matched = unmatched = 0
    stratum_rows = []
    for (band, subscribed), groups in sorted(strata.items()):
        member_spends, other_spends = groups[MEMBERS], groups[NON_MEMBERS]
        member_mean = _mean(member_spends)
        other_mean = _mean(other_spends)
        gain = None
        if member_mean is not None and other_mean is not None:
            gain = (member_mean - other_mean) * len(member_spends)
            incremental += gain
            matched += len(member_spends)
        else:
            unmatched += len(member_spends)
        stratum_rows.append(
            Stratum(
                baseline_spend_band=band,
                subscribed_at_baseline_end=subscribed,
                members=len(member_spends),
                non_members=len(other_spends),
                member_mean_spend=cents(member_mean) if member_mean is not None else None,
                non_member_mean_spend=cents(other_mean) if other_mean is not None else None,
                incremental_spend=cents(gain) if gain is not None else None,
            )
        )
    redeemed = int(
        PointsEntry.objects.filter(
            period.within("created_at"), programme=period.programme, account__in=REDEEMING_ACCOUNTS
        ).aggregate(total=Sum("points"))["total"]
        or 0
    )
    points_cost = points_value(redeemed, period.programme)
    reward_costs = cents(reward_costs)
    total_cost = points_cost + reward_costs
    margin = cents(incremental * margin_percent / HUNDRED)
    net = margin - total_cost
    return Roi(
        start=period.start,
        end=period.end,
        baseline_start=baseline_start,
        baseline_end=baseline_end,
        margin_percent=margin_percent.quantize(CENT, rounding=ROUND_HALF_UP),
        matched_members=matched,
        unmatched_members=unmatched,
        incremental_spend=cents(incremental),
        incremental_margin=margin,
        points_redeemed=redeemed,
        points_cost=points_cost,
        reward_costs=reward_costs,
        total_cost=total_cost,
        net_benefit=net,
        roi_percent=percent(net, total_cost) if total_cost > 0 else None,
        strata=stratum_rows,
    )


def _mean(values: list[Decimal]) -> Decimal | None:
    return sum(values, Decimal(0)) / len(values) if values else None
