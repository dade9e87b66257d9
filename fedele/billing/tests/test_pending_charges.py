"""One-off charges of customers without a subscription being billed get an invoice of their own."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from fedele.billing import facade
from fedele.billing.models import Invoice, OneOffCharge
from fedele.billing.services.pending_charges import accounts_with_orphan_charges, pending_charges_invoice
from fedele.billing.tests.factories import flat_plan, subscription
from fedele.billing.tests.invoicing_helpers import italian_consumer_account

pytestmark = pytest.mark.django_db


def _charge(account, amount: str, key: str) -> None:
    facade.charge_customer(
        customer_public_id=str(account.customer.public_id),
        description="Ricambio: alimentatore ONT",
        amount=Decimal(amount),
        idempotency_key=key,
        source="field_service",
    )


@time_machine.travel(datetime(2026, 3, 10, 9, tzinfo=UTC), tick=False)
def test_an_account_without_subscriptions_gets_its_own_invoice_once():
    account = italian_consumer_account()
    _charge(account, "19.90", "wo-1")
    _charge(account, "5.00", "wo-2")
    issued = pending_charges_invoice(as_of=date(2026, 3, 11))
    assert len(issued) == 1
    invoice = Invoice.objects.get()
    # 24.90 + 22% VAT 5.48 = 30.38
    assert (invoice.number, invoice.status, invoice.subtotal, invoice.tax_total, invoice.total) == (
        "INV-2026-000001",
        "finalised",
        Decimal("24.90"),
        Decimal("5.48"),
        Decimal("30.38"),
    )
    assert set(OneOffCharge.objects.values_list("invoice_id", flat=True)) == {invoice.pk}
    assert pending_charges_invoice(as_of=date(2026, 3, 11)) == []  # nothing left: run twice, invoice once
    assert Invoice.objects.count() == 1


@time_machine.travel(datetime(2026, 3, 10, 9, tzinfo=UTC), tick=False)
def test_charges_wait_for_the_subscription_invoice_and_credits_alone_wait():
    subscribed = italian_consumer_account()
    subscription(flat_plan("30.00"), account=subscribed, start=date(2026, 3, 1))
    _charge(subscribed, "19.90", "wo-3")
    credit_only = italian_consumer_account()
    _charge(credit_only, "-10.00", "reward-1")
    assert accounts_with_orphan_charges(date(2026, 3, 11)) == [credit_only.pk]
    assert pending_charges_invoice(as_of=date(2026, 3, 11)) == []
    assert Invoice.objects.count() == 0
    assert OneOffCharge.objects.filter(invoice__isnull=True).count() == 2


@time_machine.travel(datetime(2026, 3, 10, 9, tzinfo=UTC), tick=False)
def test_charges_made_on_the_day_wait_for_the_next_days_run():
    account = italian_consumer_account()
    _charge(account, "19.90", "wo-4")
    assert pending_charges_invoice(as_of=date(2026, 3, 10)) == []
    assert len(pending_charges_invoice(as_of=date(2026, 3, 11))) == 1
