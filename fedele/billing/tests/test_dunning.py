"""Dunning: cases for overdue invoices, retry schedule, reminders in the customer's language,
escalation to collections, suspension and reactivation on payment; each step runs once."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from fedele.billing.models import DunningAction, DunningCase, Entitlement, SubscriptionChange
from fedele.billing.services import dunning, payments
from fedele.billing.tests import payments_helpers as helpers
from fedele.billing.tests.factories import ProductFactory, flat_plan, subscription
from fedele.shared.models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _overdue_invoice(language: str = "it"):  # type: ignore[no-untyped-def]
    account = helpers.account(billing_email="amministrazione@example.it")
    account.customer.language = language
    account.customer.save()
    with time_machine.travel(datetime(2026, 1, 5, 9, tzinfo=UTC), tick=False):
        invoice = helpers.finalised_invoice(account)  # due 2026-02-04
    mail.outbox.clear()  # the invoice's own delivery e-mail
    return account, invoice


def _run(day: date) -> dunning.RunResult:
    with time_machine.travel(datetime(day.year, day.month, day.day, 9, tzinfo=UTC), tick=False):
        return dunning.dunning_run(today=day)


def test_case_opens_and_steps_run_on_schedule_once() -> None:
    _account, invoice = _overdue_invoice()
    assert invoice.due_date == date(2026, 2, 4)
    assert _run(date(2026, 2, 4)).opened == 0  # due today is not overdue
    first = _run(date(2026, 2, 5))
    assert (first.opened, first.retries, first.reminders) == (1, 1, 1)
    case = DunningCase.objects.get()
    assert (case.status, case.steps_done, case.next_action_on) == ("open", 1, date(2026, 2, 7))
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["amministrazione@example.it"]
    assert invoice.number in mail.outbox[0].subject
    again = _run(date(2026, 2, 5))
    assert (again.retries, again.reminders) == (0, 0)
    assert len(mail.outbox) == 1
    retry = DunningAction.objects.get(kind="retry", step=0)
    assert retry.outcome == "no_method"
    assert DunningAction.objects.get(kind="reminder", step=0).outcome == "sent"


def test_missed_days_run_only_the_latest_step() -> None:
    _overdue_invoice()
    result = _run(date(2026, 2, 12))  # 8 days overdue: steps 1, 3 and 7 are all due
    assert (result.retries, result.reminders) == (1, 1)
    outcomes = {(action.kind, action.step): action.outcome for action in DunningAction.objects.all()}
    assert outcomes[("retry", 0)] == "skipped"
    assert outcomes[("retry", 1)] == "skipped"
    assert outcomes[("retry", 2)] == "no_method"
    assert DunningCase.objects.get().next_action_on == date(2026, 2, 18)


def test_escalation_suspension_and_reactivation_on_payment() -> None:
    version = flat_plan("30.00")
    account, invoice = _overdue_invoice()
    sub = subscription(version, account=account)
    product = ProductFactory()
    now = datetime(2026, 1, 5, tzinfo=UTC)
    Entitlement.objects.create(
        account=account,
        subscription=sub,
        product=product,
        kind="fibre_line",
        status="active",
        created_at=now,
        updated_at=now,
    )
    _run(date(2026, 2, 5))
    escalated = _run(date(2026, 2, 18))  # 14 days
    assert escalated.escalated == 1
    case = DunningCase.objects.get()
    assert case.status == "escalated"
    event = OutboxEvent.objects.get(event_type="billing.dunning_escalated")
    assert event.payload["invoice_number"] == invoice.number
    assert event.payload["amount_due"] == "122.00"
    assert event.payload["days_overdue"] == 14
    suspended = _run(date(2026, 2, 25))  # 21 days
    assert suspended.suspended == 1
    account.refresh_from_db()
    sub.refresh_from_db()
    assert account.is_suspended is True
    assert sub.status == "past_due"
    change = SubscriptionChange.objects.get(subscription=sub, kind="past_due")
    assert change.before is not None and change.after is not None
    assert (change.before["status"], change.after["status"]) == ("active", "past_due")
    assert Entitlement.objects.get().status == "suspended"
    assert _run(date(2026, 2, 26)).suspended == 0
    with time_machine.travel(datetime(2026, 2, 27, 9, tzinfo=UTC), tick=False):
        payments.payment_record(
            account=account,
            amount=Decimal("122.00"),
            currency="EUR",
            method="bank_transfer",
            received_on=date(2026, 2, 27),
            external_id="CRO-LATE",
            invoice=invoice,
        )
    case.refresh_from_db()
    account.refresh_from_db()
    sub.refresh_from_db()
    assert (case.status, case.close_reason) == ("closed", "paid")
    assert account.is_suspended is False
    assert sub.status == "active"
    assert SubscriptionChange.objects.filter(subscription=sub, kind="reactivated").count() == 1
    assert Entitlement.objects.get().status == "active"
    assert DunningAction.objects.filter(case=case, kind="reactivate").count() == 1


def test_reminder_in_english_for_english_customers() -> None:
    _overdue_invoice(language="en")
    _run(date(2026, 2, 5))
    assert mail.outbox[0].subject.startswith("Payment reminder")


def test_invoice_paid_before_the_run_closes_the_case_without_steps() -> None:
    account, invoice = _overdue_invoice()
    _run(date(2026, 2, 5))
    with time_machine.travel(datetime(2026, 2, 6, 9, tzinfo=UTC), tick=False):
        payments.payment_record(
            account=account,
            amount=Decimal("122.00"),
            currency="EUR",
            method="cash",
            received_on=date(2026, 2, 6),
            external_id="R-1",
            invoice=invoice,
        )
    assert DunningCase.objects.get().status == "closed"
    assert _run(date(2026, 2, 7)).retries == 0
