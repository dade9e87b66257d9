"""Revenue analytics on hand-built histories: every figure is worked out by hand in the comments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from fedele.billing.models import SubscriptionChange
from fedele.billing.selectors import analytics
from fedele.billing.selectors.analytics_common import Table, median
from fedele.billing.selectors.analytics_finance import ageing_bucket, recognition_schedule
from fedele.billing.snapshots import subscription_snapshot
from fedele.billing.tests import analytics_helpers as h
from fedele.billing.tests.factories import MetricFactory, flat_plan, subscription
from fedele.shared.errors import ValidationFailed

pytestmark = pytest.mark.django_db
D = Decimal
JAN, FEB, MAR, APR = (date(2026, month, 1) for month in (1, 2, 3, 4))


@pytest.fixture
def story() -> dict[str, object]:
    """Month-end MRR per customer (EUR):
    Dec 2025: D 200
    Jan: A 100, B 50, E 40            (D cancelled 31 Jan; G on 5 Jan and off 25 Jan: never at a month end)
    Feb: A 100, C 30, E 50            (B cancelled 20 Feb; C trial 3 Feb, paying 17 Feb; E second sub)
    Mar: A 150, C 20, E 10            (A up 10 Mar; C down 31 Mar; E first sub cancelled 15 Mar)
    Apr: A 150, B 60, C 20, E 10      (B back 5 Apr: reactivation)
    F pays 99 USD throughout (another currency).
    """
    a, b, c, d, e, f, g = (h.account(name) for name in "ABCDEFG")
    sub_a = h.mrr_history(a, [(date(2026, 1, 1), "100.00"), (date(2026, 3, 10), "150.00")])
    h.mrr_history(b, [(date(2026, 1, 15), "50.00"), (date(2026, 2, 20), "0"), (date(2026, 4, 5), "60.00")])
    h.mrr_history(c, [(date(2026, 2, 3), "0"), (date(2026, 2, 17), "30.00"), (date(2026, 3, 31), "20.00")])
    h.mrr_history(d, [(date(2025, 12, 1), "200.00"), (date(2026, 1, 31), "0")])
    h.mrr_history(e, [(date(2026, 1, 1), "40.00"), (date(2026, 3, 15), "0")])
    h.mrr_history(e, [(date(2026, 2, 1), "10.00")])
    h.mrr_history(f, [(date(2026, 1, 1), "99.00")], currency="USD")
    h.mrr_history(g, [(date(2026, 1, 5), "70.00"), (date(2026, 1, 25), "0")])
    # A scheduled cancellation carries a stale snapshot; it is not a state change and must not count.
    h.change(
        sub_a,
        SubscriptionChange.Kind.CANCEL_SCHEDULED,
        date(2026, 4, 1),
        before=h.snapshot("100.00"),
        after=h.snapshot("999.00"),
    )
    return {"a": a, "b": b, "c": c, "e": e}


def test_mrr_movements_month_by_month(story: dict[str, object]) -> None:
    rows = analytics.mrr_movements(from_month=JAN, to_month=APR)
    assert [row.month for row in rows] == [JAN, FEB, MAR, APR]
    jan, feb, mar, apr = rows
    assert (jan.opening_mrr, jan.new, jan.expansion, jan.contraction, jan.churn, jan.reactivation) == (
        D("200.00"),
        D("190.00"),
        0,
        0,
        D("-200.00"),
        0,
    )
    assert (jan.closing_mrr, jan.arr, jan.customers_closing, jan.new_customers, jan.churned_customers) == (
        D("190.00"),
        D("2280.00"),
        3,
        3,
        1,
    )
    assert (jan.arpa, jan.logo_churn_rate, jan.revenue_churn_rate, jan.net_revenue_retention) == (
        D("63.33"),
        D("100.00"),
        D("100.00"),
        D("0.00"),
    )
    assert (feb.opening_mrr, feb.new, feb.expansion, feb.churn, feb.closing_mrr) == (
        D("190.00"),
        D("30.00"),
        D("10.00"),
        D("-50.00"),
        D("180.00"),
    )
    # 1 of 3 logos lost; 50 / 190 = 26.315..%; (190 + 10 - 50) / 190 = 78.947..%
    assert (feb.logo_churn_rate, feb.revenue_churn_rate, feb.net_revenue_retention, feb.arpa) == (
        D("33.33"),
        D("26.32"),
        D("78.95"),
        D("60.00"),
    )
    assert (mar.expansion, mar.contraction, mar.churn, mar.closing_mrr) == (
        D("50.00"),
        D("-50.00"),
        0,
        D("180.00"),
    )
    assert (mar.logo_churn_rate, mar.revenue_churn_rate, mar.net_revenue_retention) == (
        D("0.00"),
        D("27.78"),
        D("100.00"),
    )
    assert (apr.reactivation, apr.reactivated_customers, apr.new, apr.closing_mrr, apr.customers_closing) == (
        D("60.00"),
        1,
        0,
        D("240.00"),
        4,
    )
    assert apr.net_revenue_retention_12m is None  # nobody paid in April 2025


def test_opening_plus_movements_is_closing_every_month(story: dict[str, object]) -> None:
    rows = analytics.mrr_movements(from_month=date(2025, 11, 1), to_month=date(2026, 6, 1))
    previous_closing = D(0)
    for row in rows:
        assert row.opening_mrr == previous_closing
        assert row.opening_mrr + row.net_movement == row.closing_mrr
        previous_closing = row.closing_mrr
    assert [row.closing_mrr for row in rows] == [
        0,
        D("200.00"),
        D("190.00"),
        D("180.00"),
        D("180.00"),
        D("240.00"),
        D("240.00"),
        D("240.00"),
    ]


def test_mrr_in_another_currency_is_separate(story: dict[str, object]) -> None:
    rows = analytics.mrr_movements(from_month=JAN, to_month=FEB, currency="usd")
    assert [(row.new, row.closing_mrr, row.customers_closing) for row in rows] == [
        (D("99.00"), D("99.00"), 1),
        (0, D("99.00"), 1),
    ]


def test_nrr_twelve_months_follows_last_years_payers() -> None:
    x, y, z = h.account("X"), h.account("Y"), h.account("Z")
    h.mrr_history(x, [(date(2025, 1, 10), "100.00"), (date(2026, 1, 10), "120.00")])
    h.mrr_history(y, [(date(2025, 1, 10), "50.00"), (date(2025, 7, 1), "0")])
    h.mrr_history(z, [(date(2026, 1, 2), "80.00")])  # new this year: not in the base
    (row,) = analytics.mrr_movements(from_month=JAN, to_month=JAN)
    assert row.net_revenue_retention_12m == D("80.00")  # 120 / 150


def test_reactivation_needs_a_paid_month_end_before() -> None:
    """A customer who paid only inside a month (on and off before its end) comes back as new."""
    blip = h.account("Blip")
    h.mrr_history(blip, [(date(2026, 1, 5), "70.00"), (date(2026, 1, 25), "0"), (date(2026, 3, 1), "70.00")])
    rows = analytics.mrr_movements(from_month=JAN, to_month=MAR)
    assert [(row.new, row.reactivation) for row in rows] == [(0, 0), (0, 0), (D("70.00"), 0)]


def test_mrr_replays_real_snapshots_normalised_to_a_month() -> None:
    """A yearly plan of 120.00 is 10.00 MRR; a flat 30.00 monthly fee stays 30.00 whatever the quantity."""
    yearly = subscription(flat_plan("120.00", period="year"), start=date(2026, 1, 1))
    monthly = subscription(flat_plan("30.00"), start=date(2026, 1, 1), quantity=3)
    for sub in (yearly, monthly):
        h.change(
            sub,
            SubscriptionChange.Kind.CREATED,
            date(2026, 1, 1),
            before=None,
            after=subscription_snapshot(sub),
        )
    (row,) = analytics.mrr_movements(from_month=JAN, to_month=JAN)
    assert (row.new, row.closing_mrr, row.arpa) == (D("40.00"), D("40.00"), D("20.00"))


def test_no_history_gives_zero_months_and_undefined_rates() -> None:
    rows = analytics.mrr_movements(from_month=JAN, to_month=FEB)
    assert [(row.opening_mrr, row.closing_mrr, row.arpa, row.logo_churn_rate) for row in rows] == [
        (0, 0, None, None),
        (0, 0, None, None),
    ]
    assert analytics.cohort_retention(from_month=JAN, to_month=FEB) == []


@pytest.mark.parametrize(
    ("start", "end", "currency", "field"),
    [(FEB, JAN, "EUR", "to"), (JAN, date(2036, 1, 1), "EUR", "to"), (JAN, FEB, "EURO", "currency")],
)
def test_bad_ranges_are_refused(start: date, end: date, currency: str, field: str) -> None:
    with pytest.raises(ValidationFailed) as failure:
        analytics.mrr_movements(from_month=start, to_month=end, currency=currency)
    assert failure.value.code == "invalid_range"
    assert field in failure.value.fields


def test_cohort_grid(story: dict[str, object]) -> None:
    rows = analytics.cohort_retention(from_month=JAN, to_month=APR)
    assert [(row.cohort, row.customers, row.starting_mrr) for row in rows] == [
        (JAN, 3, D("190.00")),
        (FEB, 1, D("30.00")),
    ]
    jan, feb = rows
    assert jan.customers_retained == (3, 2, 2, 3)
    assert jan.mrr_retained == (D("190.00"), D("150.00"), D("160.00"), D("220.00"))
    assert jan.customer_retention == (D("100.00"), D("66.67"), D("66.67"), D("100.00"))
    assert jan.mrr_retention == (D("100.00"), D("78.95"), D("84.21"), D("115.79"))
    assert feb.customer_retention == (D("100.00"), D("100.00"), D("100.00"))
    assert feb.mrr_retention == (D("100.00"), D("66.67"), D("66.67"))


def test_history_is_read_in_one_query(
    story: dict[str, object], django_assert_max_num_queries: object
) -> None:
    with django_assert_max_num_queries(1):  # type: ignore[operator]
        analytics.mrr_movements(from_month=JAN, to_month=APR)
    with django_assert_max_num_queries(1):  # type: ignore[operator]
        analytics.cohort_retention(from_month=JAN, to_month=APR)


# deferred revenue ------------------------------------------------------------------------------


def test_recognition_schedule_allocates_every_cent() -> None:
    # 100.00 over 15 Jan → 15 Feb: 17 and 14 days of 31; 54.838.. and 45.161.. → the spare cent to January.
    assert recognition_schedule(
        D("100.00"), "EUR", date(2026, 1, 15), date(2026, 2, 15), date(2026, 1, 15)
    ) == [
        (JAN, D("54.84")),
        (FEB, D("45.16")),
    ]
    # Leap year: 29.00 over 15 Feb → 15 Mar 2028 is 15 days of February and 14 of March.
    assert recognition_schedule(
        D("29.00"), "EUR", date(2028, 2, 15), date(2028, 3, 15), date(2028, 2, 1)
    ) == [
        (date(2028, 2, 1), D("15.00")),
        (date(2028, 3, 1), D("14.00")),
    ]
    # A negative line (a proration credit) is split the same way.
    assert recognition_schedule(
        D("-0.01"), "EUR", date(2026, 1, 31), date(2026, 2, 2), date(2026, 1, 31)
    ) == [
        (JAN, D("-0.01")),
        (FEB, D("0.00")),
    ]
    # No service period: earned when issued.
    assert recognition_schedule(D("25.00"), "EUR", None, None, date(2026, 3, 9)) == [(MAR, D("25.00"))]


def test_deferred_revenue_schedule() -> None:
    owner = h.account("Deferred")
    h.invoice(
        owner,
        issued=date(2026, 1, 15),
        lines=[("100.00", date(2026, 1, 15), date(2026, 2, 15)), ("25.00", None, None)],
    )
    # Usage billed in arrears: earned in January, billed in February, never deferred.
    h.invoice(
        owner, issued=date(2026, 2, 1), lines=[("31.00", date(2026, 1, 1), date(2026, 2, 1))], status="paid"
    )
    h.invoice(owner, issued=date(2026, 2, 10), lines=[("10.00", None, None)], kind="credit_note")
    # A quarter billed in advance on 25 March: 30 + 31 + 30 days → 29.67, 30.66 (the spare cent), 29.67.
    h.invoice(owner, issued=date(2026, 3, 25), lines=[("90.00", date(2026, 4, 1), date(2026, 7, 1))])
    h.invoice(owner, issued=date(2026, 1, 5), lines=[("500.00", None, None)], status="void")
    h.invoice(owner, issued=date(2026, 1, 5), lines=[("400.00", None, None)], status="draft")
    h.invoice(owner, issued=date(2026, 1, 5), lines=[("300.00", None, None)], currency="USD")
    rows = analytics.deferred_revenue(from_month=JAN, to_month=date(2026, 6, 1))
    assert [(row.billed, row.recognised, row.deferred_closing) for row in rows] == [
        (D("125.00"), D("110.84"), D("45.16")),
        (D("21.00"), D("35.16"), D("0.00")),
        (D("90.00"), D("0"), D("90.00")),
        (D("0"), D("29.67"), D("60.33")),
        (D("0"), D("30.66"), D("29.67")),
        (D("0"), D("29.67"), D("0")),
    ]
    # Everything billed is recognised by the end: 125 + 21 + 90 = 110.84 + 35.16 + 29.67 + 30.66 + 29.67.
    assert sum(row.billed for row in rows) == sum(row.recognised for row in rows) == D("236.00")


def test_deferred_revenue_in_a_later_range_keeps_earlier_billing_deferred(
    django_assert_max_num_queries: object,
) -> None:
    owner = h.account("Yearly")
    h.invoice(owner, issued=date(2026, 1, 1), lines=[("365.00", date(2026, 1, 1), date(2027, 1, 1))])
    with django_assert_max_num_queries(1):  # type: ignore[operator]
        rows = analytics.deferred_revenue(from_month=date(2026, 11, 1), to_month=date(2027, 1, 1))
    assert [(row.billed, row.recognised, row.deferred_closing) for row in rows] == [
        (0, D("30.00"), D("31.00")),
        (0, D("31.00"), D("0.00")),
        (0, 0, 0),
    ]


# receivables ageing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (-5, "current"),
        (0, "current"),
        (1, "days_1_30"),
        (30, "days_1_30"),
        (31, "days_31_60"),
        (60, "days_31_60"),
        (61, "days_61_90"),
        (90, "days_61_90"),
        (91, "days_over_90"),
        (4000, "days_over_90"),
    ],
)
def test_ageing_bucket_edges(days: int, bucket: str) -> None:
    assert ageing_bucket(days) == bucket


def test_receivables_ageing(django_assert_max_num_queries: object) -> None:
    first, second = h.account("Anna"), h.account("Bruno")
    issued = date(2026, 1, 1)
    h.invoice(first, issued=issued, lines=[("100.00", None, None)], due=date(2026, 5, 31))
    h.invoice(first, issued=issued, lines=[("200.00", None, None)], due=date(2026, 5, 1), paid="50.00")
    h.invoice(
        first, issued=issued, lines=[("80.00", None, None)], due=date(2026, 3, 1), status="paid", paid="80"
    )
    h.invoice(first, issued=issued, lines=[("70.00", None, None)], due=date(2026, 3, 1), credited="70.00")
    h.invoice(second, issued=issued, lines=[("300.00", None, None)], due=date(2026, 3, 31))
    h.invoice(second, issued=issued, lines=[("40.00", None, None)], due=date(2026, 3, 2))
    h.invoice(second, issued=issued, lines=[("10.00", None, None)], due=date(2026, 3, 1))
    h.invoice(second, issued=issued, lines=[("5.00", None, None)], due=date(2026, 5, 1))
    h.invoice(second, issued=issued, lines=[("25.00", None, None)], due=date(2026, 4, 30))
    h.invoice(second, issued=issued, lines=[("9.00", None, None)], due=date(2026, 1, 2), status="draft")
    h.invoice(second, issued=issued, lines=[("9.00", None, None)], due=date(2026, 1, 2), status="void")
    h.invoice(second, issued=issued, lines=[("9.00", None, None)], due=date(2026, 1, 2), kind="credit_note")
    h.invoice(second, issued=issued, lines=[("9.00", None, None)], due=date(2026, 1, 2), currency="USD")
    h.invoice(second, issued=date(2026, 6, 1), lines=[("9.00", None, None)], due=date(2026, 1, 2))
    with django_assert_max_num_queries(2):  # type: ignore[operator]
        ageing = analytics.receivables_ageing(as_of=date(2026, 5, 31))
    assert ageing.totals == {
        "current": D("100.00"),
        "days_1_30": D("155.00"),
        "days_31_60": D("25.00"),
        "days_61_90": D("340.00"),
        "days_over_90": D("10.00"),
    }
    assert (ageing.total, ageing.invoices) == (D("630.00"), 7)
    assert [(row.customer_name, row.invoices, row.total) for row in ageing.rows] == [
        ("Bruno", 5, D("380.00")),
        ("Anna", 2, D("250.00")),
    ]
    assert ageing.rows[1].buckets["days_1_30"] == D("150.00")
    assert ageing.rows[0].customer_public_id == str(second.customer.public_id)
    csv_text = analytics.ageing_table(ageing).as_csv()
    assert csv_text.splitlines()[-1] == "Total,,7,100.00,155.00,25.00,340.00,10.00,630.00"


# payment behaviour -------------------------------------------------------------------------------


def test_payment_behaviour(django_assert_max_num_queries: object) -> None:
    first, second = h.account("Carla"), h.account("Dario")
    h.invoice(
        first,
        issued=date(2026, 1, 10),
        lines=[("10", None, None)],
        due=date(2026, 2, 9),
        status="paid",
        paid="10",
        paid_at=h.rome(2026, 2, 5),
    )
    h.invoice(
        first,
        issued=date(2026, 1, 20),
        lines=[("10", None, None)],
        due=date(2026, 2, 19),
        status="paid",
        paid="10",
        paid_at=h.rome(2026, 2, 25),
    )
    # Days count from finalisation (3 February here), not from the issue date; not in January's range.
    h.invoice(
        first,
        issued=date(2026, 1, 31),
        lines=[("10", None, None)],
        due=date(2026, 3, 10),
        status="paid",
        paid="10",
        paid_at=h.rome(2026, 3, 5),
        finalised_at=h.rome(2026, 2, 3, 9),
    )
    # 23:30 in Rome on 1 February is 22:30 UTC: paid the day it was issued.
    h.invoice(
        second,
        issued=date(2026, 2, 1),
        lines=[("10", None, None)],
        due=date(2026, 3, 3),
        status="paid",
        paid="10",
        paid_at=h.rome(2026, 2, 1, 23, 30),
    )
    # 00:30 in Rome on 2 March is still 1 March in UTC: a March payment after 29 days.
    h.invoice(
        second,
        issued=date(2026, 2, 1),
        lines=[("10", None, None)],
        due=date(2026, 3, 3),
        status="paid",
        paid="10",
        paid_at=h.rome(2026, 3, 2, 0, 30),
    )
    h.invoice(second, issued=date(2026, 2, 1), lines=[("10", None, None)], due=date(2026, 3, 3))  # unpaid
    for status in ("succeeded", "succeeded", "failed", "succeeded", "pending"):
        h.payment(first if status != "failed" else second, received=date(2026, 2, 10), status=status)
    h.payment(second, received=date(2026, 2, 10), status="failed", currency="USD")
    with django_assert_max_num_queries(3):  # type: ignore[operator]
        behaviour = analytics.payment_behaviour(from_month=FEB, to_month=APR)
    feb, mar, apr = behaviour.months
    assert (feb.invoices_paid, feb.average_days_to_pay, feb.median_days_to_pay, feb.paid_late) == (
        3,
        D("20.67"),
        D("26.00"),
        1,
    )
    assert (feb.payments_succeeded, feb.payments_failed, feb.payments_pending, feb.failure_rate) == (
        3,
        1,
        1,
        D("25.00"),
    )
    assert (mar.invoices_paid, mar.average_days_to_pay, mar.median_days_to_pay, mar.failure_rate) == (
        2,
        D("29.50"),
        D("29.50"),
        None,
    )
    assert (apr.invoices_paid, apr.average_days_to_pay) == (0, None)
    assert [
        (
            row.customer_name,
            row.invoices_paid,
            row.average_days_to_pay,
            row.median_days_to_pay,
            row.paid_late,
            row.payments_failed,
        )
        for row in behaviour.customers
    ] == [
        ("Carla", 3, D("30.67"), D("30.00"), 1, 0),
        ("Dario", 2, D("14.50"), D("14.50"), 0, 1),
    ]


def test_median_of_even_and_odd_counts() -> None:
    assert (median([]), median([5]), median([1, 2]), median([3, 1, 2]), median([1, 2, 4, 10])) == (
        None,
        D("5.00"),
        D("1.50"),
        D("2.00"),
        D("3.00"),
    )


# usage trends ------------------------------------------------------------------------------------


@pytest.fixture
def usage_story() -> dict[str, object]:
    calls = MetricFactory(code="calls", aggregation="sum", unit="call")
    seats = MetricFactory(code="seats", aggregation="max", unit="seat")
    users = MetricFactory(code="users", aggregation="unique_count", unique_property="user")
    storage = MetricFactory(code="storage", aggregation="last", unit="GB")
    first, second = h.account("Elena"), h.account("Fabio")
    sub_first = subscription(flat_plan("10.00", code="pro"), account=first)
    sub_second = subscription(flat_plan("10.00", code="basic"), account=second)
    # 31 January 23:30 in Rome is January; 1 February 00:30 in Rome is February (both 31 Jan in UTC).
    h.usage(first, calls, "100", h.rome(2026, 1, 10), sub=sub_first)
    h.usage(first, calls, "0.5", h.rome(2026, 1, 31, 23, 30), sub=sub_first)
    h.usage(first, calls, "7", h.rome(2026, 2, 1, 0, 30), sub=sub_first)
    h.usage(second, calls, "20", h.rome(2026, 1, 15), sub=sub_second)
    h.usage(second, calls, "3", h.rome(2026, 1, 16))  # no subscription: plan ''
    h.usage(first, seats, "4", h.rome(2026, 1, 3), sub=sub_first)
    h.usage(first, seats, "9", h.rome(2026, 1, 4), sub=sub_first)
    h.usage(first, seats, "2", h.rome(2026, 1, 5), sub=sub_first)
    h.usage(first, users, "1", h.rome(2026, 1, 3), sub=sub_first, properties={"user": "u1"})
    h.usage(first, users, "1", h.rome(2026, 1, 4), sub=sub_first, properties={"user": "u1"})
    h.usage(first, users, "1", h.rome(2026, 1, 5), sub=sub_first, properties={"user": "u2"})
    h.usage(first, storage, "5", h.rome(2026, 1, 5), sub=sub_first)
    h.usage(first, storage, "3", h.rome(2026, 1, 20), sub=sub_first)
    h.usage(first, calls, "999", h.rome(2025, 12, 31))  # before the range
    return {"first": first, "second": second}


def test_usage_per_metric_per_month(
    usage_story: dict[str, object], django_assert_max_num_queries: object
) -> None:
    with django_assert_max_num_queries(3):  # type: ignore[operator]
        rows = analytics.usage_trends(from_month=JAN, to_month=FEB)
    assert [(row.metric_code, row.month, row.value, row.events) for row in rows] == [
        ("calls", JAN, D("123.5"), 4),
        ("calls", FEB, D("7"), 1),
        ("seats", JAN, D("9"), 3),
        ("storage", JAN, D("3"), 2),
        ("users", JAN, D("2"), 3),
    ]


def test_usage_per_customer_and_per_plan(usage_story: dict[str, object]) -> None:
    by_customer = analytics.usage_trends(from_month=JAN, to_month=JAN, group_by="customer")
    calls = [(row.group_label, row.value) for row in by_customer if row.metric_code == "calls"]
    assert calls == [("Elena", D("100.5")), ("Fabio", D("23"))]
    by_plan = analytics.usage_trends(from_month=JAN, to_month=JAN, group_by="plan")
    calls = [(row.group_key, row.value, row.events) for row in by_plan if row.metric_code == "calls"]
    assert calls == [("", D("3"), 1), ("basic", D("20"), 1), ("pro", D("100.5"), 2)]


def test_unknown_usage_grouping_is_refused() -> None:
    with pytest.raises(ValidationFailed) as failure:
        analytics.usage_trends(from_month=JAN, to_month=JAN, group_by="region")  # type: ignore[arg-type]
    assert failure.value.fields == {"group_by": ["Use one of: metric, customer, plan."]}


# tables and CSV ----------------------------------------------------------------------------------


def test_every_table_exports_csv(story: dict[str, object]) -> None:
    query = analytics.AnalyticsQuery(from_month=JAN, to_month=APR, as_of=date(2026, 4, 30))
    for name in analytics.TABLE_NAMES:
        table = analytics.table(name, query)
        lines = table.as_csv().splitlines()
        assert len(lines) == len(table.rows) + 1
        assert lines[0].split(",")[0] == table.columns[0][1]
    assert analytics.table("mrr", query).matrix()[0][:2] == ["2026-01", D("200.00")]
    mrr_lines = analytics.table("mrr", query).as_csv().splitlines()
    assert mrr_lines[2].startswith(
        "2026-02-01,190.00,30.00,10.00,0.00,-50.00,0.00,180.00,2160.00,3,1,1,0,60.00,33.33,26.32,78.95,"
    )


def test_csv_neutralises_spreadsheet_formulas() -> None:
    table = Table(
        "x", (("name", "Name"), ("amount", "Amount")), ({"name": "=HYPERLINK(1)", "amount": D("-5.00")},)
    )
    assert table.as_csv() == "Name,Amount\r\n'=HYPERLINK(1),-5.00\r\n"


def test_kpis_are_the_last_month() -> None:
    x = h.account("X")
    h.mrr_history(x, [(date(2026, 1, 10), "100.00")])
    kpis = analytics.kpis(analytics.mrr_movements(from_month=JAN, to_month=FEB))
    assert kpis is not None
    assert (kpis.month, kpis.mrr, kpis.arr, kpis.paying_customers, kpis.arpa, kpis.logo_churn_rate) == (
        FEB,
        D("100.00"),
        D("1200.00"),
        1,
        D("100.00"),
        D("0.00"),
    )
    assert analytics.kpis([]) is None
