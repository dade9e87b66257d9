"""Billing run on PostgreSQL with real processes and threads: crash + resume, concurrent executors.

Run with DATABASE_URL=postgres://postgres@127.0.0.1:5432/h2 (pytest-django uses test_h2).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection, connections
from django.utils import timezone

from fedele.billing.models import BillingAccount, BillingRun, Invoice, Subscription
from fedele.billing.periods import period_end
from fedele.billing.services.billing_run import billing_run_execute, billing_run_start
from fedele.billing.services.invoicing import (
    business_today,
    invoice_create_draft,
    invoice_finalise,
    invoice_line_add,
)
from fedele.billing.tests.factories import flat_plan
from fedele.billing.tests.invoicing_helpers import italian_consumer_account

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[3]


def due_subscriptions(count: int, accounts: int = 20) -> list[int]:
    """``count`` monthly subscriptions due today, spread over a few accounts (bulk inserted)."""
    version = flat_plan("9.99")
    owners: list[BillingAccount] = [italian_consumer_account() for _ in range(accounts)]
    today = business_today()
    now = timezone.now()
    rows = [
        Subscription(
            number=f"SUB-PG-{index:06d}",
            account=owners[index % accounts],
            plan=version.plan,
            plan_version=version,
            quantity=Decimal(1),
            status="active",
            billing_period="month",
            billing_anchor_day=today.day,
            started_on=today,
            current_period_start=today,
            current_period_end=period_end(today, "month", today.day),
            next_billing_on=today,
            created_at=now,
            updated_at=now,
        )
        for index in range(count)
    ]
    return [sub.pk for sub in Subscription.objects.bulk_create(rows)]


def command_env() -> dict[str, str]:
    settings_db = connection.settings_dict
    url = (
        f"postgres://{settings_db['USER']}@{settings_db['HOST']}:{settings_db['PORT']}/{settings_db['NAME']}"
    )
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test"}


def billing_command(*arguments: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py, fixed arguments
        [sys.executable, str(ROOT / "manage.py"), "billing_run", *arguments],
        cwd=ROOT,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def assert_exactly_once_and_gapless(subscription_ids: list[int]) -> None:
    today = business_today()
    keys = list(Invoice.objects.values_list("billing_key", flat=True))
    assert len(keys) == len(set(keys)) == len(subscription_ids)
    assert set(keys) == {f"sub:{pk}:{today.isoformat()}" for pk in subscription_ids}
    numbers = sorted(n or 0 for n in Invoice.objects.values_list("sequence_number", flat=True))
    assert numbers == list(range(1, len(subscription_ids) + 1))
    assert not Subscription.objects.filter(pk__in=subscription_ids, next_billing_on__lte=today).exists()


def test_killed_run_resumes_without_duplicates_or_gaps() -> None:
    subscription_ids = due_subscriptions(1500)
    process = billing_command("--batch-size", "20")
    deadline = time.monotonic() + 120
    committed = 0
    while time.monotonic() < deadline:
        committed = Invoice.objects.count()
        if committed >= 100 or process.poll() is not None:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    after_kill = Invoice.objects.count()
    assert 100 <= after_kill < 1500, "the run must be killed part-way"
    assert after_kill % 20 == 0, "a batch is committed whole or not at all"
    assert sorted(n or 0 for n in Invoice.objects.values_list("sequence_number", flat=True)) == list(
        range(1, after_kill + 1)
    )
    crashed = BillingRun.objects.get()
    assert crashed.status == "running" and crashed.invoices_created == after_kill

    resumed = billing_command("--resume", str(crashed.pk), "--batch-size", "500")
    output, errors = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, errors.decode()
    assert b'"status": "completed"' in output
    crashed.refresh_from_db()
    assert (crashed.status, crashed.invoices_created, crashed.errors) == ("completed", 1500, [])
    assert_exactly_once_and_gapless(subscription_ids)


def test_concurrent_executors_and_manual_invoices_share_one_gapless_series() -> None:
    subscription_ids = due_subscriptions(600)
    run = billing_run_start(as_of=business_today(), execute=False)
    manual_account = italian_consumer_account()
    failures: list[BaseException] = []

    def executor() -> None:
        try:
            billing_run_execute(run.pk, batch_size=50)
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)
        finally:
            connections.close_all()

    def manual() -> None:
        try:
            for _ in range(15):
                draft = invoice_create_draft(account=manual_account)
                invoice_line_add(invoice=draft, description="Manual", unit_amount=Decimal("5"))
                invoice_finalise(invoice=draft)
        except BaseException as error:  # pragma: no cover
            failures.append(error)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=executor),
        threading.Thread(target=executor),
        threading.Thread(target=manual),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []
    run_invoices = Invoice.objects.filter(billing_run=run)
    assert run_invoices.count() == 600
    keys = list(run_invoices.values_list("billing_key", flat=True))
    assert len(set(keys)) == 600
    numbers = sorted(n or 0 for n in Invoice.objects.values_list("sequence_number", flat=True))
    assert numbers == list(range(1, 616))
    run.refresh_from_db()
    assert (run.status, run.subscriptions_processed, run.invoices_created) == ("completed", 600, 600)
    assert not Subscription.objects.filter(
        pk__in=subscription_ids, next_billing_on__lte=business_today()
    ).exists()
