"""An immediate cancellation gets a final invoice: the usage up to the cancellation day and the
prorated credit, nothing recurring; the subscription is then never billed again."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from fedele.billing.models import Invoice, InvoiceLine, Subscription, UsageEvent
from fedele.billing.services.billing_run import billing_run_execute, billing_run_start
from fedele.billing.services.subscriptions import subscription_cancel
from fedele.billing.tests.factories import MetricFactory, flat_plan, subscription, usage_charge
from fedele.billing.tests.invoicing_helpers import italian_consumer_account

pytestmark = pytest.mark.django_db


def _run(day: date) -> None:
    with time_machine.travel(datetime(day.year, day.month, day.day, 9, tzinfo=UTC), tick=False):
        run = billing_run_start(as_of=day, execute=False)
        billing_run_execute(run.pk)


def test_cancel_now_bills_usage_so_far_and_the_credit_once():
    version = flat_plan("30.00")
    metric = MetricFactory(code="calls")
    usage_charge(version, metric, unit_amount=Decimal("0.10"))
    sub = subscription(version, account=italian_consumer_account(), start=date(2026, 1, 1))
    _run(date(2026, 1, 1))  # first invoice: 30.00 + 22% = 36.60
    first = Invoice.objects.get()
    assert (first.number, first.total) == ("INV-2026-000001", Decimal("36.60"))
    UsageEvent.objects.create(
        account=sub.account,
        subscription=sub,
        metric=metric,
        external_id="u1",
        quantity=Decimal(100),
        occurred_at=datetime(2026, 1, 10, 12, tzinfo=UTC),
        received_at=datetime(2026, 1, 10, 12, tzinfo=UTC),
    )
    with time_machine.travel(datetime(2026, 1, 16, 9, tzinfo=UTC), tick=False):
        subscription_cancel(
            subscription=Subscription.objects.get(pk=sub.pk), at="now", reason="moving abroad"
        )
    _run(date(2026, 1, 16))
    final = Invoice.objects.exclude(pk=first.pk).get()
    lines = sorted(InvoiceLine.objects.filter(invoice=final).values_list("kind", "amount"))
    # Usage 100 x 0.10 = 10.00 billed; 16 of 31 days unused: 30.00 x 16 / 31 = 15.48 credited.
    # Net -5.48: issued as a credit note (lines negated), 5.48 + 22% VAT (1.21) = 6.69 of credit.
    assert final.kind == "credit_note"
    assert lines == [("proration_credit", Decimal("15.48")), ("usage", Decimal("-10.00"))]
    assert (final.subtotal, final.tax_total, final.total) == (
        Decimal("5.48"),
        Decimal("1.21"),
        Decimal("6.69"),
    )
    assert UsageEvent.objects.get().invoice_id == final.pk
    cancelled = Subscription.objects.get(pk=sub.pk)
    assert (cancelled.status, cancelled.next_billing_on) == ("cancelled", None)
    _run(date(2026, 2, 1))  # never billed again
    assert Invoice.objects.count() == 2


def test_line_descriptions_are_written_in_the_invoicing_language():
    version = flat_plan("49.00", name="API Pro")
    metric = MetricFactory(code="api-calls")
    usage_charge(
        version,
        metric,
        model="graduated",
        tiers=[
            {"up_to": 1000, "unit_amount": "0", "flat_amount": "0"},
            {"up_to": 5000, "unit_amount": "0.002", "flat_amount": "0"},
            {"up_to": None, "unit_amount": "0.001", "flat_amount": "0"},
        ],
    )
    version.setup_fee = Decimal("10.00")
    version.save()
    sub = subscription(version, account=italian_consumer_account(), start=date(2026, 1, 1))
    _run(date(2026, 1, 1))
    UsageEvent.objects.create(
        account=sub.account,
        subscription=sub,
        metric=metric,
        external_id="u1",
        quantity=Decimal(7000),
        occurred_at=datetime(2026, 1, 10, 12, tzinfo=UTC),
        received_at=datetime(2026, 1, 10, 12, tzinfo=UTC),
    )
    _run(date(2026, 2, 1))
    first, renewal = Invoice.objects.order_by("id")
    assert "Costo di attivazione - API Pro" in set(first.lines.values_list("description", flat=True))
    usage = sorted(renewal.lines.filter(kind="usage").values_list("description", "amount"))
    # 7,000 calls: 1,000 free (a 0.00 line is left out), 4,000 x 0.002 = 8.00, 2,000 x 0.001 = 2.00.
    assert [amount for _, amount in usage] == [Decimal("8.00"), Decimal("2.00")]
    descriptions = " | ".join(description for description, _ in usage)
    assert "scaglione 2: unità 1001-5000" in descriptions
    assert "scaglione 3: unità oltre 5000" in descriptions
