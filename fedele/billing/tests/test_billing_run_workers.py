"""One billing run shared by several processes (``manage.py billing_run --workers n``) and by
partitioned executors: every subscription invoiced once, numbers gapless, the run completed once."""

from __future__ import annotations

import json

import pytest

from fedele.billing.models import BillingRun, Invoice
from fedele.billing.services.billing_run import billing_run_execute, billing_run_start
from fedele.billing.services.invoicing import business_today
from fedele.billing.tests.test_billing_run_postgres import billing_command, due_subscriptions
from fedele.shared.errors import ValidationFailed
from fedele.shared.models import AuditLog


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_processes_share_a_run_without_gaps_or_duplicates():
    subscription_ids = due_subscriptions(700)
    process = billing_command("--workers", "2", "--batch-size", "50")
    output, errors = process.communicate(timeout=300)
    assert process.returncode == 0, errors.decode()[-2000:]
    report = json.loads(output.decode().strip().splitlines()[-1])
    assert report["status"] == "completed"
    assert report["invoices_created"] == 700
    invoiced = sorted(Invoice.objects.values_list("subscription_id", flat=True))
    assert invoiced == sorted(subscription_ids)
    numbers = sorted(Invoice.objects.values_list("sequence_number", flat=True))
    assert numbers == list(range(1, 701))
    assert AuditLog.objects.filter(action="billing.billing_run_completed").count() == 1


@pytest.mark.django_db
def test_partitions_split_the_work_and_the_last_one_completes_the_run():
    due_subscriptions(9, accounts=3)
    run = billing_run_start(as_of=business_today(), execute=False)
    first = billing_run_execute(run.pk, partition=(0, 2), batch_size=2)
    assert first.status == BillingRun.Status.RUNNING  # the odd ids are still due
    assert first.invoices_created == Invoice.objects.count()
    assert sorted(set(Invoice.objects.values_list("subscription_id", flat=True))) == sorted(
        Invoice.objects.values_list("subscription_id", flat=True)
    )
    assert all(sid % 2 == 0 for sid in Invoice.objects.values_list("subscription_id", flat=True))
    second = billing_run_execute(run.pk, partition=(1, 2), batch_size=2)
    assert second.status == BillingRun.Status.COMPLETED
    assert second.invoices_created == 9 == Invoice.objects.count()
    assert sorted(Invoice.objects.values_list("sequence_number", flat=True)) == list(range(1, 10))
    assert AuditLog.objects.filter(action="billing.billing_run_completed").count() == 1


@pytest.mark.django_db
def test_a_partition_outside_its_range_is_refused():
    run = billing_run_start(as_of=business_today(), execute=False)
    with pytest.raises(ValidationFailed):
        billing_run_execute(run.pk, partition=(2, 2))
