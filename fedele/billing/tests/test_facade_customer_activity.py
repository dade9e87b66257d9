"""billing.facade.customer_activity: paid invoices and subscription standing per customer over a window
(loyalty's programme evaluation reads it to compare members with non-members)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fedele.billing import facade
from fedele.billing.contracts import CustomerActivity
from fedele.billing.models import BillingAccount, Invoice, Subscription
from fedele.billing.tests.factories import BillingAccountFactory, flat_plan, subscription
from fedele.shared.errors import ValidationFailed

pytestmark = pytest.mark.django_db
ROME = ZoneInfo("Europe/Rome")
_numbers = iter(range(1, 10_000))


def _paid(
    account: BillingAccount,
    paid_at: datetime,
    net: str,
    gross: str,
    *,
    kind: str = "invoice",
    currency: str = "EUR",
) -> Invoice:
    number = next(_numbers)
    return Invoice.objects.create(
        account=account,
        kind=kind,
        number=f"ACT-{number:06d}",
        status="paid",
        currency=currency,
        issue_date=paid_at.date(),
        subtotal=Decimal(net),
        total=Decimal(gross),
        amount_paid=Decimal(gross),
        paid_at=paid_at,
        first_paid_at=paid_at,
        created_at=paid_at,
        updated_at=paid_at,
    )


def _ended(sub: Subscription, ended_on: date) -> Subscription:
    sub.status = "cancelled"
    sub.ended_on = ended_on
    sub.cancelled_at = datetime(ended_on.year, ended_on.month, ended_on.day, 9, tzinfo=UTC)
    sub.save(update_fields=["status", "ended_on", "cancelled_at"])
    return sub


def _by_customer(rows: list[CustomerActivity]) -> dict[str, CustomerActivity]:
    return {row.customer_id: row for row in rows}


def test_paid_invoices_are_counted_and_summed_per_customer_in_the_window() -> None:
    alice = BillingAccountFactory()
    bob = BillingAccountFactory()
    _paid(alice, datetime(2026, 1, 5, 10, tzinfo=ROME), "100.00", "122.00")
    _paid(alice, datetime(2026, 2, 20, 18, tzinfo=ROME), "50.50", "61.61")
    _paid(alice, datetime(2026, 4, 1, 10, tzinfo=ROME), "999.00", "999.00")  # after the window
    _paid(alice, datetime(2026, 1, 10, tzinfo=ROME), "10.00", "10.00", kind="credit_note")  # not spend
    _paid(alice, datetime(2026, 1, 11, tzinfo=ROME), "10.00", "10.00", currency="USD")  # not EUR
    _paid(bob, datetime(2026, 3, 31, 23, 30, tzinfo=ROME), "0.01", "0.01")  # last minute, Rome time
    rows = _by_customer(facade.customer_activity(start=date(2026, 1, 1), end=date(2026, 3, 31)))
    first = rows[str(alice.customer.public_id)]
    assert (first.invoices_paid, first.amount_paid_net, first.amount_paid_gross) == (
        2,
        Decimal("150.50"),
        Decimal("183.61"),
    )
    assert (first.first_payment_on, first.last_payment_on) == (date(2026, 1, 5), date(2026, 2, 20))
    assert (first.subscriptions_in_window, first.active_subscriptions_at_end, first.cancelled_on) == (
        0,
        0,
        None,
    )
    second = rows[str(bob.customer.public_id)]
    assert (second.invoices_paid, second.amount_paid_net, second.last_payment_on) == (
        1,
        Decimal("0.01"),
        date(2026, 3, 31),
    )
    assert len(rows) == 2


def test_window_edges_follow_the_business_time_zone_across_dst() -> None:
    account = BillingAccountFactory()
    # 29 March 2026 is the DST change in Rome: 00:30 local on 30 March is 22:30 UTC on the 29th.
    _paid(account, datetime(2026, 3, 29, 22, 30, tzinfo=UTC), "10.00", "12.20")
    # 23:59 local on 28 March (UTC+1) = 22:59 UTC: still the 28th.
    _paid(account, datetime(2026, 3, 28, 22, 59, tzinfo=UTC), "5.00", "6.10")
    only_30 = facade.customer_activity(start=date(2026, 3, 30), end=date(2026, 3, 30))
    assert [(row.invoices_paid, row.amount_paid_net, row.first_payment_on) for row in only_30] == [
        (1, Decimal("10.00"), date(2026, 3, 30))
    ]
    only_28 = facade.customer_activity(start=date(2026, 3, 28), end=date(2026, 3, 28))
    assert [(row.invoices_paid, row.amount_paid_net) for row in only_28] == [(1, Decimal("5.00"))]
    assert facade.customer_activity(start=date(2026, 3, 29), end=date(2026, 3, 29)) == []


def test_subscriptions_live_at_end_and_churn_in_the_window() -> None:
    version = flat_plan("20.00")
    kept = subscription(version, start=date(2025, 6, 1))
    churned = _ended(subscription(version, start=date(2025, 6, 1)), date(2026, 2, 14))
    # Churned one subscription but another is still live at the end: not churn.
    switcher_first = _ended(subscription(version, start=date(2025, 1, 1)), date(2026, 1, 31))
    subscription(version, account=switcher_first.account, start=date(2026, 2, 1))
    # Ended before the window, started after it: not in the window at all.
    _ended(subscription(version, start=date(2024, 1, 1)), date(2025, 12, 31))
    subscription(version, start=date(2026, 4, 1))
    # Ended on the last day of the window: churned on that day (not live at the end of it).
    last_day = _ended(subscription(version, start=date(2026, 3, 1)), date(2026, 3, 31))
    # Ends the day after the window: live at the end.
    later = _ended(subscription(version, start=date(2026, 1, 1)), date(2026, 4, 1))
    paused = subscription(version, start=date(2025, 1, 1), status="paused")
    rows = _by_customer(facade.customer_activity(start=date(2026, 1, 1), end=date(2026, 3, 31)))

    def standing(sub: Subscription) -> tuple[int, int, date | None]:
        row = rows[str(sub.account.customer.public_id)]
        return row.subscriptions_in_window, row.active_subscriptions_at_end, row.cancelled_on

    assert standing(kept) == (1, 1, None)
    assert standing(churned) == (1, 0, date(2026, 2, 14))
    assert standing(switcher_first) == (2, 1, None)
    assert standing(last_day) == (1, 0, date(2026, 3, 31))
    assert standing(later) == (1, 1, None)
    assert standing(paused) == (1, 1, None)
    assert len(rows) == 6
    assert all(row.invoices_paid == 0 and row.amount_paid_net == Decimal("0.00") for row in rows.values())


def test_two_queries_whatever_the_number_of_customers() -> None:
    version = flat_plan("20.00")
    for index in range(12):
        sub = subscription(version, start=date(2026, 1, 1))
        _paid(sub.account, datetime(2026, 1, 2 + index, 12, tzinfo=ROME), "1.00", "1.22")
    with CaptureQueriesContext(connection) as queries:
        rows = facade.customer_activity(start=date(2026, 1, 1), end=date(2026, 1, 31))
    assert len(queries.captured_queries) == 2
    assert len(rows) == 12
    assert sum(row.amount_paid_net for row in rows) == Decimal("12.00")
    assert rows == sorted(rows, key=lambda row: row.customer_id)


def test_an_inverted_window_is_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        facade.customer_activity(start=date(2026, 2, 1), end=date(2026, 1, 31))
    assert refused.value.code == "invalid_window"
    assert facade.customer_activity(start=date(2026, 2, 1), end=date(2026, 2, 1)) == []
