"""Cross-module surfaces: the customers facade (caller identification) and the job schedule."""

from __future__ import annotations

import io

import pytest
import time_machine
from django.core.management import call_command

from fedele.accounts.tests.factories import user_with_roles
from fedele.customers import facade
from fedele.customers.tests.factories import ContactFactory, CustomerFactory
from fedele.shared.models import OutboxEvent
from fedele.shared.scheduler import PERIODIC_JOBS, beat_schedule


@pytest.mark.django_db
@pytest.mark.parametrize("written", ["+39 06 1234 5678", "06 1234 5678", "0039061234 5678", "+390612345678"])
def test_caller_identification_matches_any_written_form_of_the_number(written: str) -> None:
    customer = CustomerFactory(phone="+390612345678")
    found = facade.find_customer_by_phone(written)
    assert found is not None
    assert found.public_id == customer.public_id
    assert found.number == customer.number


@pytest.mark.django_db
def test_caller_identification_falls_back_to_contact_mobile_and_ignores_inactive() -> None:
    company = CustomerFactory(
        kind="company", company_name="Acme S.p.A.", display_name="Acme S.p.A.", phone=""
    )
    ContactFactory(customer=company, mobile="+393471234567")
    assert facade.find_customer_by_phone("347 123 4567").public_id == company.public_id  # type: ignore[union-attr]
    CustomerFactory(phone="+390298765432", status="erased")
    assert facade.find_customer_by_phone("02 9876 5432") is None
    assert facade.find_customer_by_phone("not a number") is None
    assert facade.find_customer_by_phone("") is None


@pytest.mark.django_db
def test_find_by_email_is_case_insensitive_and_summary_follows_merges() -> None:
    survivor = CustomerFactory(email="anna@example.it")
    merged = CustomerFactory(email="", status="merged", merged_into=survivor)
    assert facade.find_customer_by_email("ANNA@Example.it").public_id == survivor.public_id  # type: ignore[union-attr]
    summary = facade.customer_summary(str(merged.public_id))
    assert summary is not None and summary.public_id == survivor.public_id
    assert facade.customer_summary("6f1c2d1e-0000-4000-8000-000000000000") is None


@pytest.mark.django_db
def test_customer_for_user_finds_the_portal_users_customer_only() -> None:
    portal = user_with_roles("portal_customer")
    customer = CustomerFactory()
    ContactFactory(customer=customer, portal_user=portal)
    found = facade.customer_for_user(portal.pk)
    assert found is not None and found.public_id == customer.public_id
    assert facade.customer_for_user(user_with_roles("agent").pk) is None


def test_beat_schedule_is_built_from_the_one_job_table() -> None:
    schedule = beat_schedule()
    assert set(schedule) == set(PERIODIC_JOBS)
    assert schedule["outbox-sweep"] == {"task": "shared.dispatch_outbox_due", "schedule": 15.0}
    assert schedule["webhooks-due"] == {"task": "shared.deliver_webhooks_due", "schedule": 15.0}


@pytest.mark.django_db
def test_scheduler_once_sweeps_an_event_whose_dispatch_was_lost() -> None:
    from fedele.customers import events
    from fedele.shared.events import publish

    # Published outside on_commit execution (test transaction): its dispatch never ran, like a crash.
    publish(events.CustomerErased("c-1"), aggregate_type="customer", aggregate_id="c-1")
    row = OutboxEvent.objects.get()
    assert row.dispatched_at is None
    with time_machine.travel(row.occurred_at.timestamp() + 60, tick=False):
        call_command("scheduler", "--once", stdout=io.StringIO())
    row.refresh_from_db()
    assert row.dispatched_at is not None
    assert row.attempts == 1


@pytest.mark.django_db
def test_stale_import_previews_are_purged_after_a_week_but_committed_imports_stay() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from fedele.customers.models import CustomerImport
    from fedele.customers.tasks import purge_stale_import_previews

    now = timezone.now()
    CustomerImport.objects.create(filename="old.csv", created_at=now - timedelta(days=8))
    CustomerImport.objects.create(filename="fresh.csv", created_at=now - timedelta(days=6))
    CustomerImport.objects.create(
        filename="done.csv", created_at=now - timedelta(days=30), status="committed"
    )
    assert purge_stale_import_previews.apply().get() == 1
    assert sorted(CustomerImport.objects.values_list("filename", flat=True)) == ["done.csv", "fresh.csv"]
    assert "customers-import-previews-purge" in PERIODIC_JOBS
