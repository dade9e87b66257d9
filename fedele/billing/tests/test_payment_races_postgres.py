"""Acceptance on PostgreSQL with real threads: two different payments for one invoice at the same
moment settle it once (the second becomes customer credit, no cent lost or counted twice), and the
same signed Stripe webhook delivered twice at once pays once."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client

from fedele.billing.models import BillingAccount, CreditEntry, GatewayEvent, Invoice, Payment
from fedele.billing.services import payments
from fedele.billing.tests import payments_helpers as helpers
from fedele.shared.models import OutboxEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _webhook_secret(settings: Any) -> Iterator[None]:
    settings.STRIPE_WEBHOOK_SECRET = helpers.WEBHOOK_SECRET
    with time_machine.travel(datetime(2026, 3, 10, 9, 0, tzinfo=UTC), tick=True):
        yield


def _together(functions: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(functions))
    results: list[Any] = [None] * len(functions)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = functions[index]()
        except Exception as error:  # collected and asserted below
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(functions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_different_payments_for_one_invoice_at_once_settle_it_once() -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)  # 122.00 due

    def pay(reference: str) -> Callable[[], Payment]:
        return lambda: payments.payment_record(
            account=account,
            amount=Decimal("122.00"),
            currency="EUR",
            method="bank_transfer",
            received_on=payments.business_today(),
            external_id=reference,
            invoice=invoice,
        )

    results = _together([pay("CRO-A"), pay("CRO-B")])
    assert all(isinstance(result, Payment) for result in results), results
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == (
        "paid",
        Decimal("122.00"),
        Decimal(0),
    )
    assert Payment.objects.count() == 2
    # The payment that came second found nothing due: all of it is the customer's credit.
    assert BillingAccount.objects.get(pk=account.pk).credit_balance == Decimal("122.00")
    assert list(CreditEntry.objects.values_list("reason", "amount")) == [("overpayment", Decimal("122.00"))]
    assert OutboxEvent.objects.filter(event_type="billing.invoice_paid").count() == 1


def test_the_same_stripe_webhook_delivered_twice_at_once_pays_once() -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    text = json.dumps(helpers.fixture("payment_intent_succeeded.json"))
    text = text.replace("INVOICE_ID", str(invoice.public_id)).replace("INVOICE_NUMBER", invoice.number or "")
    payload = text.replace("CUSTOMER_ID", str(invoice.customer_snapshot.get("public_id", ""))).encode()

    def deliver() -> int:
        response = Client().post(
            "/api/v1/billing/webhooks/stripe",
            payload,
            content_type="application/json",
            **helpers.signed_headers(payload),
        )
        return int(response.status_code)

    assert _together([deliver, deliver, deliver]) == [200, 200, 200]
    invoice = Invoice.objects.get(pk=invoice.pk)
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("122.00"))
    assert Payment.objects.count() == 1
    assert GatewayEvent.objects.count() == 1
    assert OutboxEvent.objects.filter(event_type="billing.invoice_paid").count() == 1
