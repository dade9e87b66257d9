"""Add-ons: prorated when added or removed mid-period, billed in advance with the subscription,
counted in MRR."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from fedele.billing.models import Invoice, OneOffCharge, Subscription, SubscriptionChange
from fedele.billing.services.addons import subscription_addon_add, subscription_addon_remove
from fedele.billing.services.billing_run import billing_run_execute, billing_run_start
from fedele.billing.snapshots import monthly_recurring_revenue
from fedele.billing.tests.factories import PlanFactory, flat_plan, subscription
from fedele.billing.tests.invoicing_helpers import italian_consumer_account
from fedele.shared.errors import Conflict, ValidationFailed

pytestmark = pytest.mark.django_db


def _run(day: date) -> None:
    with time_machine.travel(datetime(day.year, day.month, day.day, 9, tzinfo=UTC), tick=False):
        billing_run_execute(billing_run_start(as_of=day, execute=False).pk)


def _static_ip() -> object:
    return flat_plan("6.20", code="ip-statico", name="IP statico", is_addon=True)


def test_added_mid_period_charges_the_days_left_then_renews_with_the_plan():
    base = flat_plan("30.00", name="Fibra Casa")
    addon = _static_ip()
    sub = subscription(base, account=italian_consumer_account(), start=date(2026, 1, 1))
    _run(date(2026, 1, 1))  # the first period is invoiced
    with time_machine.travel(datetime(2026, 1, 16, 9, tzinfo=UTC), tick=False):
        row = subscription_addon_add(subscription=sub, plan_version=addon, quantity=1)
    # 16 of 31 days left: 6.20 x 16 / 31 = 3.2000 -> 3.20
    charge = OneOffCharge.objects.get()
    assert (charge.kind, charge.unit_amount) == ("proration_charge", Decimal("3.20"))
    change = SubscriptionChange.objects.get(kind="addon_added")
    assert change.before is not None and change.after is not None
    assert (change.proration_charge, change.before["mrr"], change.after["mrr"]) == (
        Decimal("3.20"),
        "30.00",
        "36.20",
    )
    _run(date(2026, 2, 1))
    renewal = Invoice.objects.order_by("id").last()
    amounts = sorted(renewal.lines.values_list("kind", "amount"))
    assert amounts == [
        ("proration_charge", Decimal("3.20")),
        ("recurring", Decimal("6.20")),
        ("recurring", Decimal("30.00")),
    ]
    assert renewal.subtotal == Decimal("39.40")
    with time_machine.travel(datetime(2026, 2, 15, 9, tzinfo=UTC), tick=False):
        subscription_addon_remove(addon=row)
    # February 2026: 28 days, 14 left: 6.20 x 14 / 28 = 3.10 credited.
    credit = OneOffCharge.objects.get(kind="proration_credit")
    assert credit.unit_amount == Decimal("-3.10")
    assert monthly_recurring_revenue(Subscription.objects.get(pk=sub.pk)) == Decimal("30.00")


def test_bad_add_ons_are_refused_and_change_nothing():
    base = flat_plan("30.00")
    sub = subscription(base, account=italian_consumer_account(), start=date(2026, 1, 1))
    not_addon = flat_plan("5.00")
    yearly = flat_plan("60.00", period="year", is_addon=True)
    usd = flat_plan("5.00", currency="USD", is_addon=True)
    for version, field in ((not_addon, "plan_version"), (yearly, "plan_version"), (usd, "plan_version")):
        with pytest.raises(ValidationFailed) as error:
            subscription_addon_add(subscription=sub, plan_version=version)
        assert field in error.value.fields
    with pytest.raises(ValidationFailed):
        subscription_addon_add(subscription=sub, plan_version=_static_ip(), quantity=0)
    assert SubscriptionChange.objects.filter(kind="addon_added").count() == 0
    assert OneOffCharge.objects.count() == 0


def test_the_same_add_on_twice_is_a_conflict_and_removing_twice_too():
    sub = subscription(flat_plan("30.00"), account=italian_consumer_account(), start=date(2026, 1, 1))
    addon = _static_ip()
    row = subscription_addon_add(subscription=sub, plan_version=addon)
    with pytest.raises(Conflict):
        subscription_addon_add(subscription=sub, plan_version=addon)
    subscription_addon_remove(addon=row)
    with pytest.raises(Conflict):
        subscription_addon_remove(addon=row)
    # Before the first invoice nothing is prorated: the first invoice bills what is there then.
    assert OneOffCharge.objects.count() == 0
    assert PlanFactory._meta.model.objects.filter(is_addon=True).count() == 1
