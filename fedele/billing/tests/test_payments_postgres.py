"""Real concurrency on PostgreSQL: the same payment posted twice at once, the same webhook delivered
twice at once, and the dunning job run twice at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection

from fedele.billing.models import DunningAction, Payment
from fedele.billing.services import dunning, payments
from fedele.billing.tests import payments_helpers as helpers
from fedele.shared.models import OutboxEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _together(function: Callable[[], Any], threads: int = 2) -> list[Any]:
    barrier = threading.Barrier(threads)
    results: list[Any] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(function())
        except Exception as error:
            results.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def test_same_payment_posted_twice_at_once_pays_once() -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)

    def post() -> Payment:
        return payments.payment_record(
            account=account,
            amount=Decimal("122.00"),
            currency="EUR",
            method="bank_transfer",
            received_on=payments.business_today(),
            external_id="CRO-RACE",
            invoice=invoice,
        )

    results = _together(post, threads=4)
    assert all(isinstance(result, Payment) for result in results), results
    assert len({result.pk for result in results}) == 1
    assert Payment.objects.count() == 1
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("122.00"))
    assert OutboxEvent.objects.filter(event_type="billing.invoice_paid").count() == 1


def test_dunning_run_twice_at_once_runs_each_step_once() -> None:
    account = helpers.account(billing_email="a@example.it")
    with time_machine.travel(datetime(2026, 1, 5, 9, tzinfo=UTC), tick=False):
        helpers.finalised_invoice(account)
    from django.core import mail

    mail.outbox.clear()
    results = _together(lambda: dunning.dunning_run(today=date(2026, 2, 5)), threads=3)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.retries for r in results) == 1
    assert DunningAction.objects.filter(kind="retry").count() == 1
    assert DunningAction.objects.filter(kind="reminder").count() == 1
    assert len([m for m in mail.outbox if m.to == ["a@example.it"]]) == 1
