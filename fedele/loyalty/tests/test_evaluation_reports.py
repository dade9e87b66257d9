"""Programme evaluation: members against non-members, ROI, campaign uplift (Welch), the tier
migration matrix and enrolment cohorts — exact values on small hand-built data sets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.billing.contracts import CustomerActivity
from fedele.billing.tests.factories import flat_plan, subscription
from fedele.customers.models import Customer
from fedele.customers.tests.factories import CustomerFactory
from fedele.loyalty.models import Campaign, CampaignAssignment, Member, Programme
from fedele.loyalty.selectors.evaluation import Options, evaluation_period, report, report_table
from fedele.loyalty.selectors.evaluation_campaigns import campaign_uplift, cohorts, tier_migration, welch
from fedele.loyalty.selectors.evaluation_members import members_comparison, programme_roi
from fedele.loyalty.selectors.evaluation_stats import t_cdf, t_quantile
from fedele.loyalty.services.ledger import transaction_reverse
from fedele.loyalty.services.members import member_enrol
from fedele.loyalty.services.tiers import tier_set_manual
from fedele.loyalty.tests.evaluation_support import earn, member_at, period, redeem, rome
from fedele.loyalty.tests.factories import ProgrammeFactory, standard_tiers
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed

pytestmark = pytest.mark.django_db

Windows = dict[tuple[date, date], list[CustomerActivity]]


def activity(
    customer: Customer,
    *,
    paid: int = 0,
    net: str = "0.00",
    subscriptions: int = 0,
    at_end: int = 0,
    cancelled_on: date | None = None,
) -> CustomerActivity:
    return CustomerActivity(
        customer_id=str(customer.public_id),
        invoices_paid=paid,
        amount_paid_net=Decimal(net),
        amount_paid_gross=Decimal(net),
        first_payment_on=None,
        last_payment_on=None,
        subscriptions_in_window=subscriptions,
        active_subscriptions_at_end=at_end,
        cancelled_on=cancelled_on,
    )


def source(windows: Windows):  # type: ignore[no-untyped-def]
    def read(start: date, end: date) -> Sequence[CustomerActivity]:
        return windows[(start, end)]

    return read


def enrolled(programme: Programme, customer: Customer, day: date) -> Member:
    with time_machine.travel(rome(day.year, day.month, day.day), tick=False):
        return member_enrol(actor=None, programme=programme, customer_public_id=str(customer.public_id))


# -- members against non-members ----------------------------------------------------------------


def test_members_against_non_members_with_group_sizes() -> None:
    programme: Programme = ProgrammeFactory()
    m1, m2, m3, n1, n2 = (CustomerFactory() for _ in range(5))
    for customer in (m1, m2, m3):
        enrolled(programme, customer, date(2025, 12, 1))
    enrolled(programme, n2, date(2026, 7, 5))  # enrolled after the period: a non-member for it
    window = period(programme, date(2026, 1, 1), date(2026, 6, 30))
    first, second = window.halves()
    assert (first, second) == ((date(2026, 1, 1), date(2026, 4, 1)), (date(2026, 4, 2), date(2026, 6, 30)))
    windows: Windows = {
        (window.start, window.end): [
            activity(m1, paid=3, net="300.00", subscriptions=1, at_end=1),
            activity(m2, paid=1, net="50.50", subscriptions=1, cancelled_on=date(2026, 3, 3)),
            activity(m3, subscriptions=1, at_end=1),
            activity(n1, paid=2, net="100.00", subscriptions=1, cancelled_on=date(2026, 5, 1)),
            activity(n2, paid=1, net="20.00"),
        ],
        first: [activity(m1, paid=2), activity(m2, paid=1), activity(n1, paid=1), activity(n2, paid=1)],
        second: [activity(m1, paid=1), activity(n1, paid=1), activity(m3, subscriptions=1)],
    }
    result = members_comparison(window, activity=source(windows))
    members, others = result.groups
    assert (members.group, members.customers, members.spend_total, members.spend_per_customer) == (
        "members",
        3,
        Decimal("350.50"),
        Decimal("116.83"),
    )
    assert (members.purchases, members.purchase_frequency) == (4, Decimal("1.33"))
    assert (members.active_first_half, members.retained, members.retention_rate) == (2, 1, Decimal("50.00"))
    assert (members.subscribers, members.churned, members.churn_rate) == (3, 1, Decimal("33.33"))
    assert (others.group, others.customers, others.spend_total, others.spend_per_customer) == (
        "non_members",
        2,
        Decimal("120.00"),
        Decimal("60.00"),
    )
    assert (others.purchases, others.purchase_frequency) == (3, Decimal("1.50"))
    assert (others.active_first_half, others.retained, others.retention_rate) == (2, 1, Decimal("50.00"))
    assert (others.subscribers, others.churned, others.churn_rate) == (1, 1, Decimal("100.00"))


def test_an_empty_group_has_undefined_rates_not_zero() -> None:
    programme: Programme = ProgrammeFactory()
    alone = CustomerFactory()
    window = period(programme, date(2026, 1, 1), date(2026, 1, 1))
    windows: Windows = {(window.start, window.end): [activity(alone, paid=1, net="10.00")]}
    members, others = members_comparison(window, activity=source(windows)).groups
    assert (members.customers, members.spend_per_customer, members.purchase_frequency) == (0, None, None)
    assert (members.retention_rate, members.churn_rate) == (None, None)
    assert (others.customers, others.spend_per_customer, others.retention_rate) == (
        1,
        Decimal("10.00"),
        Decimal("100.00"),
    )


def test_members_comparison_reads_billing_through_its_facade() -> None:
    programme: Programme = ProgrammeFactory()
    version = flat_plan("20.00")
    member_subscription = subscription(version, start=date(2025, 6, 1))
    other_subscription = subscription(version, start=date(2026, 2, 1))
    enrolled(programme, member_subscription.account.customer, date(2026, 1, 2))
    members, others = members_comparison(period(programme, date(2026, 1, 1), date(2026, 3, 31))).groups
    assert (members.customers, members.subscribers, members.churned) == (1, 1, 0)
    assert (others.customers, others.subscribers) == (1, 1)
    assert other_subscription.account.customer_id != member_subscription.account.customer_id


# -- ROI --------------------------------------------------------------------------------------------


def test_roi_from_matched_incremental_margin_and_costs() -> None:
    programme: Programme = ProgrammeFactory(point_value=Decimal("0.010000"))
    m1, m2, m4, n1, n2, n3 = (CustomerFactory() for _ in range(6))
    member_one = enrolled(programme, m1, date(2026, 1, 1))
    for customer in (m2, m4):
        enrolled(programme, customer, date(2026, 1, 1))
    window = period(programme, date(2026, 4, 1), date(2026, 6, 30))
    baseline = window.previous()
    assert baseline == (date(2025, 12, 31), date(2026, 3, 31))
    windows: Windows = {
        baseline: [
            activity(m1, paid=1, net="100.00"),
            activity(n1, paid=1, net="100.00"),
            activity(m4, subscriptions=1, at_end=1),
        ],
        (window.start, window.end): [
            activity(m1, paid=3, net="300.00"),
            activity(m2, paid=1, net="80.00"),
            activity(m4, paid=1, net="999.00"),  # no comparable non-member: left out
            activity(n1, paid=2, net="200.00"),
            activity(n2, paid=1, net="20.00"),
            activity(n3, paid=1, net="40.00"),
        ],
    }
    # 500 points redeemed in the period (a further 200 redeemed and reversed, and 100 after it).
    earn(member_one, 1000, rome(2026, 3, 1))
    redeem(member_one, 500, rome(2026, 5, 1))
    reversed_redemption = redeem(member_one, 200, rome(2026, 5, 2))
    with time_machine.travel(rome(2026, 5, 3), tick=False):
        transaction_reverse(actor=None, transaction=reversed_redemption, reason="mistake")
    redeem(member_one, 100, rome(2026, 7, 2))
    result = programme_roi(window, reward_costs=Decimal("10"), activity=source(windows))
    strata = {(row.baseline_spend_band, row.subscribed_at_baseline_end): row for row in result.strata}
    # Baseline spend 0, no subscription: m2 (80) against n2, n3 (mean 30) → +50.
    nothing = strata[("0", False)]
    assert (
        nothing.members,
        nothing.non_members,
        nothing.member_mean_spend,
        nothing.non_member_mean_spend,
    ) == (
        1,
        2,
        Decimal("80.00"),
        Decimal("30.00"),
    )
    assert nothing.incremental_spend == Decimal("50.00")
    # Baseline spend in the first quartile: m1 (300) against n1 (200) → +100.
    assert strata[("q1", False)].incremental_spend == Decimal("100.00")
    assert (strata[("0", True)].members, strata[("0", True)].incremental_spend) == (1, None)
    assert (result.matched_members, result.unmatched_members) == (2, 1)
    assert (result.incremental_spend, result.incremental_margin) == (Decimal("150.00"), Decimal("45.00"))
    assert (result.points_redeemed, result.points_cost, result.reward_costs) == (
        500,
        Decimal("5.00"),
        Decimal("10.00"),
    )
    assert (result.total_cost, result.net_benefit, result.roi_percent) == (
        Decimal("15.00"),
        Decimal("30.00"),
        Decimal("200.00"),
    )
    assert result.margin_percent == Decimal("30.00")


def test_roi_is_undefined_without_costs_and_margin_is_a_parameter() -> None:
    programme: Programme = ProgrammeFactory()
    m1, n1 = CustomerFactory(), CustomerFactory()
    enrolled(programme, m1, date(2026, 1, 1))
    window = period(programme, date(2026, 2, 1), date(2026, 2, 28))
    windows: Windows = {
        window.previous(): [],
        (window.start, window.end): [activity(m1, paid=1, net="100.00"), activity(n1, paid=1, net="60.00")],
    }
    result = programme_roi(window, margin_percent=Decimal("50"), activity=source(windows))
    assert (result.incremental_spend, result.incremental_margin) == (Decimal("40.00"), Decimal("20.00"))
    assert (result.total_cost, result.net_benefit, result.roi_percent) == (
        Decimal("0.00"),
        Decimal("20.00"),
        None,
    )


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"margin_percent": Decimal("-1")}, "margin_percent"),
        ({"margin_percent": Decimal("100.01")}, "margin_percent"),
        ({"reward_costs": Decimal("-0.01")}, "reward_costs"),
    ],
)
def test_roi_options_are_validated(options: dict[str, Decimal], field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        Options(**options)  # type: ignore[arg-type]
    assert refused.value.code == "invalid_parameters"
    assert field in refused.value.fields


# -- campaign uplift ------------------------------------------------------------------------------


def _campaign(programme: Programme) -> Campaign:
    return Campaign.objects.create(
        programme=programme,
        code="spring",
        name_it="Primavera",
        name_en="Spring",
        starts_at=rome(2026, 3, 1, 0),
        ends_at=rome(2026, 4, 1, 0),
        holdout_percent=30,
        status="active",
    )


def _assign(campaign: Campaign, member: Member, group: str) -> None:
    CampaignAssignment.objects.create(
        campaign=campaign, member=member, group=group, assigned_at=campaign.starts_at
    )


def test_uplift_difference_and_welch_interval_with_known_groups() -> None:
    programme: Programme = ProgrammeFactory()
    campaign = _campaign(programme)
    treatment = [member_at(programme, rome(2026, 1, 1)) for _ in range(4)]
    holdout = [member_at(programme, rome(2026, 1, 1)) for _ in range(3)]
    for member in treatment:
        _assign(campaign, member, "treatment")
    for member in holdout:
        _assign(campaign, member, "holdout")
    # Treatment spends 60+40, 50, 30, nothing; holdout 20, 10, nothing.
    earn(treatment[0], 60, rome(2026, 3, 2), amount="60.00")
    earn(treatment[0], 40, rome(2026, 3, 20), amount="40.00")
    earn(treatment[1], 50, rome(2026, 3, 5), amount="50.00")
    earn(treatment[2], 30, rome(2026, 3, 31, 23, 59), amount="30.00")
    earn(holdout[0], 20, rome(2026, 3, 10), amount="20.00")
    earn(holdout[1], 10, rome(2026, 3, 11), amount="10.00")
    # Outside the campaign, or reversed: not counted.
    earn(treatment[3], 99, rome(2026, 4, 1, 0, 0), amount="99.00")
    earn(holdout[2], 77, rome(2026, 2, 28, 23, 59), amount="77.00")
    fraud = earn(holdout[2], 500, rome(2026, 3, 15), amount="500.00")
    with time_machine.travel(rome(2026, 3, 16), tick=False):
        transaction_reverse(actor=None, transaction=fraud, reason="fraud")
    result = campaign_uplift(period(programme, date(2026, 1, 1), date(2026, 12, 31)))
    assert (result.campaign, result.holdout_percent) == ("spring", 30)
    spend, events = result.metrics
    assert (spend.metric, spend.treatment_members, spend.holdout_members) == ("spend", 4, 3)
    assert (spend.treatment_mean, spend.holdout_mean, spend.difference) == (
        Decimal("45.00"),
        Decimal("10.00"),
        Decimal("35.00"),
    )
    assert spend.relative_uplift == Decimal("350.00")
    # Welch by hand: s²(treatment) = 5300/3, s²(holdout) = 100; SE² = 5300/12 + 100/3 = 475.
    se = math.sqrt(475)
    df = 475**2 / ((5300 / 12) ** 2 / 3 + (100 / 3) ** 2 / 2)
    assert spend.degrees_of_freedom == Decimal(str(round(df, 2)))
    critical = t_quantile(0.975, df)
    assert spend.ci_low == Decimal(f"{35 - critical * se:.2f}")
    assert spend.ci_high == Decimal(f"{35 + critical * se:.2f}")
    assert spend.ci_low is not None and spend.difference is not None
    assert spend.ci_low < 0 < spend.difference  # wide: small groups
    assert spend.p_value == Decimal(f"{2 * (1 - t_cdf(35 / se, df)):.4f}")
    assert (events.treatment_mean, events.holdout_mean, events.difference) == (
        Decimal("1.00"),
        Decimal("0.67"),
        Decimal("0.33"),
    )


def test_welch_edge_cases() -> None:
    single = welch([Decimal(5)], [Decimal(1), Decimal(3)], "spend")
    assert (single.difference, single.ci_low, single.ci_high, single.p_value) == (
        Decimal("3.00"),
        None,
        None,
        None,
    )
    flat = welch([Decimal(4), Decimal(4)], [Decimal(1), Decimal(1)], "spend")
    assert (flat.difference, flat.ci_low, flat.ci_high, flat.degrees_of_freedom) == (
        Decimal("3.00"),
        Decimal("3.00"),
        Decimal("3.00"),
        None,
    )
    empty = welch([], [Decimal(1)], "spend")
    assert (empty.treatment_mean, empty.difference, empty.relative_uplift) == (None, None, None)
    zero_base = welch([Decimal(2), Decimal(4)], [Decimal(0), Decimal(0)], "spend")
    assert (zero_base.difference, zero_base.relative_uplift) == (Decimal("3.00"), None)


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.7062047362), (2, 4.3026527297), (5, 2.5705818356), (10, 2.2281388520), (30, 2.0422724563)],
)
def test_t_quantile_matches_the_published_table(df: float, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-9)
    assert t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-9)


def test_uplift_picks_the_named_or_latest_campaign() -> None:
    programme: Programme = ProgrammeFactory()
    spring = _campaign(programme)
    later = Campaign.objects.create(
        programme=programme,
        code="autumn",
        name_it="Autunno",
        name_en="Autumn",
        starts_at=rome(2026, 9, 1),
        ends_at=rome(2026, 10, 1),
    )
    window = period(programme, date(2026, 1, 1), date(2026, 12, 31))
    assert campaign_uplift(window).campaign == later.code
    assert campaign_uplift(window, campaign_code="spring").campaign == spring.code
    with pytest.raises(NotFound):
        campaign_uplift(window, campaign_code="winter")
    other = ProgrammeFactory()
    with pytest.raises(NotFound):
        campaign_uplift(period(other, date(2026, 1, 1), date(2026, 1, 31)), campaign_code="spring")


# -- tier migration and cohorts -------------------------------------------------------------------


def test_tier_migration_matrix_counts_changes_in_the_period() -> None:
    programme: Programme = ProgrammeFactory()
    tiers = {tier.code: tier for tier in standard_tiers(programme)}
    staff = actor_for(user_with_roles("loyalty_manager"))
    people = [CustomerFactory() for _ in range(4)]
    members = [enrolled(programme, customer, date(2026, 1, 10)) for customer in people]  # 4 × none → bronze
    earn(members[0], 1200, rome(2026, 2, 1))  # bronze → silver
    earn(members[0], 4000, rome(2026, 3, 1))  # silver → gold
    earn(members[1], 6000, rome(2026, 2, 2))  # bronze → gold
    earn(members[2], 1500, rome(2026, 2, 3))  # bronze → silver
    with time_machine.travel(rome(2026, 3, 5), tick=False):
        tier_set_manual(
            actor=staff, member=members[1], tier=tiers["silver"], reason="goodwill"
        )  # gold → silver
    earn(members[3], 1000, rome(2026, 5, 1))  # after the period
    result = tier_migration(period(programme, date(2026, 1, 1), date(2026, 3, 31)))
    assert [tier.code for tier in result.tiers] == ["bronze", "silver", "gold"]
    matrix = {row.from_tier: row.counts for row in result.rows}
    assert matrix[""] == {"bronze": 4, "silver": 0, "gold": 0}
    assert matrix["bronze"] == {"bronze": 0, "silver": 2, "gold": 1}
    assert matrix["silver"] == {"bronze": 0, "silver": 0, "gold": 1}
    assert matrix["gold"] == {"bronze": 0, "silver": 1, "gold": 0}
    assert [row.total for row in result.rows] == [4, 3, 1, 1]
    assert result.total == 9
    only_march = tier_migration(period(programme, date(2026, 3, 1), date(2026, 3, 31)))
    assert only_march.total == 2


def test_cohorts_share_still_active_by_months_since_enrolment() -> None:
    programme: Programme = ProgrammeFactory()
    january = [member_at(programme, rome(2026, 1, 5 + index)) for index in range(4)]
    february = [member_at(programme, rome(2026, 2, 1, 0, 30))]  # 31 January in UTC: February in Rome
    for member in january:
        earn(member, 10, rome(2026, 1, 20))
    earn(january[0], 10, rome(2026, 2, 10))
    earn(january[1], 10, rome(2026, 2, 11))
    earn(january[1], 10, rome(2026, 2, 12))  # twice in a month counts once
    earn(january[0], 10, rome(2026, 3, 1))
    redeem(january[0], 5, rome(2026, 3, 2))
    earn(february[0], 10, rome(2026, 3, 3))
    result = cohorts(period(programme, date(2026, 1, 1), date(2026, 3, 31)))
    assert [(row.month, row.members, row.active) for row in result] == [
        (date(2026, 1, 1), 4, [4, 2, 1]),
        (date(2026, 2, 1), 1, [0, 1]),
        (date(2026, 3, 1), 0, [0]),
    ]
    assert result[0].share == [Decimal("100.00"), Decimal("50.00"), Decimal("25.00")]
    assert result[1].share == [Decimal("0.00"), Decimal("100.00")]
    assert result[2].share == [None]


# -- entry points ---------------------------------------------------------------------------------


def test_reports_need_the_reports_permission_and_a_known_programme() -> None:
    programme: Programme = ProgrammeFactory(code="club-eval")
    analyst = actor_for(user_with_roles("analyst"))
    window = evaluation_period(actor=analyst, programme_code="club-eval", start=None, end=None)
    assert window.programme == programme
    with pytest.raises(PermissionDenied):
        evaluation_period(
            actor=actor_for(user_with_roles("agent")), programme_code="club-eval", start=None, end=None
        )
    with pytest.raises(NotFound):
        evaluation_period(actor=analyst, programme_code="nope", start=None, end=None)


@time_machine.travel(rome(2026, 8, 15), tick=False)
def test_default_period_is_the_last_twelve_months_and_bad_periods_are_refused() -> None:
    programme: Programme = ProgrammeFactory(code="club-period")
    window = evaluation_period(actor=None, programme_code="club-period", start=None, end=None)
    assert (window.start, window.end) == (date(2025, 9, 1), date(2026, 8, 15))
    with pytest.raises(ValidationFailed) as inverted:
        evaluation_period(
            actor=None, programme_code=programme.code, start=date(2026, 2, 1), end=date(2026, 1, 1)
        )
    assert inverted.value.fields == {"to": ["The end must be on or after the start."]}
    with pytest.raises(ValidationFailed):
        evaluation_period(
            actor=None,
            programme_code=programme.code,
            start=date(2015, 12, 1),
            end=date(2026, 1, 1) - timedelta(days=1),
        )


def test_csv_table_carries_the_same_numbers_as_the_result() -> None:
    programme: Programme = ProgrammeFactory(expiry_months=1)
    member = member_at(programme, rome(2026, 1, 1))
    earn(member, 1000, rome(2026, 1, 2))
    redeem(member, 850, rome(2026, 1, 20))
    result = report("liability", period(programme, date(2026, 1, 1), date(2026, 1, 31)))
    lines = report_table("liability", result).as_csv().splitlines()
    assert lines == [
        "month_end,available,pending,reserved,debt,outstanding,value_eur",
        "2026-01-31,150,0,0,0,150,1.50",
    ]
