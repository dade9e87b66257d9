"""The billing run: period-boundary transitions, exact invoice figures, idempotency, errors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from fedele.billing.models import (
    BillingAccount,
    BillingRun,
    Coupon,
    Invoice,
    OneOffCharge,
    PlanCharge,
    Subscription,
    SubscriptionChange,
    UsageEvent,
)
from fedele.billing.services.billing_batch import BatchProcessor
from fedele.billing.services.billing_run import billing_run_execute, billing_run_start, business_midnight
from fedele.billing.tests.factories import (
    MetricFactory,
    PlanVersionFactory,
    flat_plan,
    subscription,
    usage_charge,
)
from fedele.billing.tests.invoicing_helpers import (
    german_company_account,
    italian_consumer_account,
    monthly,
    one_off,
    run,
)
from fedele.shared.errors import Conflict, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def _frozen(time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(datetime(2026, 2, 1, 9, 0, tzinfo=UTC), tick=False)


def lines_of(invoice: Invoice) -> list[tuple[str, str, Decimal, Decimal]]:
    return [(line.kind, line.description, line.amount, line.vat_rate) for line in invoice.lines.all()]


def test_first_invoice_bills_the_period_in_advance_with_the_setup_fee(
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    sub = monthly("30.00")
    version = sub.plan_version
    version.setup_fee = D("49.99")
    version.save()
    with django_capture_on_commit_callbacks(execute=True):
        result = run(date(2026, 1, 31))
    invoice = Invoice.objects.get()
    assert (result.subscriptions_due, result.subscriptions_processed, result.invoices_created) == (1, 1, 1)
    assert result.status == BillingRun.Status.COMPLETED
    assert [(k, a, r) for k, _d, a, r in lines_of(invoice)] == [
        ("recurring", D("30.00"), D("22.00")),
        ("setup_fee", D("49.99"), D("22.00")),
    ]
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (D("79.99"), D("17.60"), D("97.59"))
    assert invoice.number == "INV-2026-000001"
    assert (invoice.fiscal_year, invoice.sequence_number) == (2026, 1)
    assert (invoice.issue_date, invoice.due_date) == (date(2026, 2, 1), date(2026, 3, 3))
    assert (invoice.period_start, invoice.period_end) == (date(2026, 1, 1), date(2026, 2, 1))
    assert invoice.billing_key == f"sub:{sub.pk}:2026-01-01"
    assert invoice.status == "finalised"
    assert invoice.customer_snapshot["public_id"] == str(sub.account.customer.public_id)
    sub.refresh_from_db()
    assert (sub.current_period_start, sub.current_period_end, sub.next_billing_on) == (
        date(2026, 1, 1),
        date(2026, 2, 1),
        date(2026, 2, 1),
    )
    summary = invoice.tax_summaries.get()
    assert (summary.vat_rate, summary.taxable_amount, summary.tax_amount) == (
        D("22.00"),
        D("79.99"),
        D("17.60"),
    )
    assert OutboxEvent.objects.filter(event_type="billing.invoice_finalised").count() == 1
    assert (
        AuditLog.objects.filter(action="billing.invoice_finalised", object_id=str(invoice.public_id)).count()
        == 1
    )
    assert len(mail.outbox) == 1 and mail.outbox[0].attachments[0][0] == "INV-2026-000001.pdf"
    assert mail.outbox[0].to == [sub.account.customer.email]
    assert mail.outbox[0].attachments[0][1][:5] == b"%PDF-"
    assert Invoice.objects.get().sent_at == timezone.now()
    assert OutboxEvent.objects.get(event_type="billing.invoice_finalised").dispatched_at is not None


def test_renewal_advances_the_period_and_bills_usage_in_arrears() -> None:
    sub = monthly("30.00", start=date(2026, 1, 1))
    metric = MetricFactory()
    usage_charge(sub.plan_version, metric, unit_amount=D("0.0004"))
    Subscription.objects.filter(pk=sub.pk).update(next_billing_on=date(2026, 2, 1))
    for index, (moment, quantity) in enumerate(
        [
            (datetime(2026, 1, 5, 12, 0, tzinfo=UTC), "10000"),
            (datetime(2026, 1, 31, 22, 30, tzinfo=UTC), "2345"),  # 23:30 in Rome: still January
            (datetime(2026, 1, 31, 23, 30, tzinfo=UTC), "99999"),  # 00:30 on 1 Feb in Rome: next period
        ]
    ):
        UsageEvent.objects.create(
            account=sub.account,
            subscription=sub,
            metric=metric,
            external_id=f"e{index}",
            quantity=D(quantity),
            occurred_at=moment,
            received_at=moment,
        )
    run(date(2026, 2, 1))
    invoice = Invoice.objects.get()
    assert [(k, a) for k, _d, a, _r in lines_of(invoice)] == [("recurring", D("30.00")), ("usage", D("4.94"))]
    usage_line = invoice.lines.get(kind="usage")
    assert (usage_line.quantity, usage_line.unit_amount) == (D("12345"), D("0.0004"))
    assert (usage_line.period_start, usage_line.period_end) == (date(2026, 1, 1), date(2026, 2, 1))
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (D("34.94"), D("7.69"), D("42.63"))
    assert (invoice.period_start, invoice.period_end) == (date(2026, 2, 1), date(2026, 3, 1))
    assert UsageEvent.objects.filter(invoice=invoice).count() == 2
    assert UsageEvent.objects.get(external_id="e2").invoice_id is None
    sub.refresh_from_db()
    assert (sub.current_period_start, sub.current_period_end, sub.next_billing_on) == (
        date(2026, 2, 1),
        date(2026, 3, 1),
        date(2026, 3, 1),
    )
    change = SubscriptionChange.objects.get(subscription=sub)
    assert change.kind == "renewed" and change.effective_on == date(2026, 2, 1)
    assert (change.before or {})["mrr"] == "30.00" and (change.after or {})["mrr"] == "30.00"
    assert business_midnight(date(2026, 2, 1)).astimezone(UTC) == datetime(2026, 1, 31, 23, 0, tzinfo=UTC)


def test_vat_is_computed_on_each_group_total_not_summed_per_line() -> None:
    sub = monthly("0.10")
    for index in range(2):
        one_off(sub.account, "0.10", description=f"SMS pack {index}")
    run(date(2026, 1, 1))
    invoice = Invoice.objects.get()
    # per line 0.022 → 0.02 three times would be 0.06; on the group total 0.30 * 22% = 0.066 → 0.07
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (D("0.30"), D("0.07"), D("0.37"))
    assert OneOffCharge.objects.filter(invoice=invoice).count() == 2


def test_mixed_rates_make_one_summary_row_each() -> None:
    sub = monthly("100.00")
    one_off(sub.account, "15.55", vat_rate="10", description="Modem (10%)")
    one_off(sub.account, "9.99", vat_rate="4", description="Magazine (4%)")
    run(date(2026, 1, 1))
    invoice = Invoice.objects.get()
    rows = [(s.vat_rate, s.taxable_amount, s.tax_amount) for s in invoice.tax_summaries.all()]
    assert rows == [
        (D("22.00"), D("100.00"), D("22.00")),
        (D("10.00"), D("15.55"), D("1.56")),
        (D("4.00"), D("9.99"), D("0.40")),
    ]
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (D("125.54"), D("23.96"), D("149.50"))


def test_cancel_at_period_end_issues_a_final_usage_invoice_and_cancels() -> None:
    sub = monthly("30.00")
    metric = MetricFactory()
    usage_charge(sub.plan_version, metric, unit_amount=D("0.50"))
    UsageEvent.objects.create(
        account=sub.account,
        subscription=sub,
        metric=metric,
        external_id="x",
        quantity=D("7"),
        occurred_at=datetime(2026, 1, 20, tzinfo=UTC),
        received_at=datetime(2026, 1, 20, tzinfo=UTC),
    )
    Subscription.objects.filter(pk=sub.pk).update(next_billing_on=date(2026, 2, 1), cancel_at_period_end=True)
    run(date(2026, 2, 1))
    invoice = Invoice.objects.get()
    assert [(k, a) for k, _d, a, _r in lines_of(invoice)] == [("usage", D("3.50"))]
    assert (invoice.period_start, invoice.period_end, invoice.total) == (
        date(2026, 1, 1),
        date(2026, 2, 1),
        D("4.27"),
    )
    sub.refresh_from_db()
    assert (sub.status, sub.ended_on, sub.next_billing_on, sub.cancel_at_period_end) == (
        "cancelled",
        date(2026, 2, 1),
        None,
        False,
    )
    change = SubscriptionChange.objects.get(subscription=sub)
    assert (
        change.kind,
        (change.before or {})["mrr"],
        (change.after or {})["mrr"],
        (change.after or {})["status"],
    ) == (
        "cancelled",
        "30.00",
        "0",
        "cancelled",
    )
    assert OutboxEvent.objects.filter(event_type="billing.subscription_cancelled").count() == 1


def test_cancel_with_nothing_to_bill_creates_no_invoice() -> None:
    sub = monthly("30.00")
    Subscription.objects.filter(pk=sub.pk).update(next_billing_on=date(2026, 2, 1), cancel_at_period_end=True)
    result = run(date(2026, 2, 1))
    assert Invoice.objects.count() == 0 and result.invoices_created == 0
    sub.refresh_from_db()
    assert sub.status == "cancelled"


def test_term_end_without_auto_renew_cancels() -> None:
    sub = monthly("30.00")
    Subscription.objects.filter(pk=sub.pk).update(
        next_billing_on=date(2026, 2, 1), auto_renew=False, term_end=date(2026, 2, 1)
    )
    run(date(2026, 2, 1))
    sub.refresh_from_db()
    assert (sub.status, sub.ended_on, sub.cancellation_reason) == (
        "cancelled",
        date(2026, 2, 1),
        "term ended",
    )
    assert Invoice.objects.count() == 0


def test_pending_change_applies_at_the_boundary() -> None:
    sub = monthly("30.00")
    new_version = flat_plan("50.00")
    PlanCharge.objects.filter(plan_version=new_version).update(
        model="per_unit", unit_amount=D("50"), flat_amount=None
    )
    Subscription.objects.filter(pk=sub.pk).update(
        next_billing_on=date(2026, 2, 1),
        pending_change={"plan_version_id": new_version.pk, "quantity": "2"},
    )
    run(date(2026, 2, 1))
    invoice = Invoice.objects.get()
    assert [a for _k, _d, a, _r in lines_of(invoice)] == [D("100.00")]
    sub.refresh_from_db()
    assert (sub.plan_version_id, sub.plan_id, sub.quantity, sub.pending_change) == (
        new_version.pk,
        new_version.plan_id,
        D("2"),
        None,
    )
    kinds = list(SubscriptionChange.objects.filter(subscription=sub).values_list("kind", flat=True))
    assert kinds == ["plan_changed", "renewed"]
    changed = SubscriptionChange.objects.get(subscription=sub, kind="plan_changed")
    assert ((changed.before or {})["mrr"], (changed.after or {})["mrr"]) == ("30.00", "100.00")


def test_trial_end_starts_the_first_paid_period_with_the_setup_fee() -> None:
    version = flat_plan("20.00")
    version.setup_fee = D("10.00")
    version.save()
    sub = subscription(version, account=italian_consumer_account(), start=date(2026, 1, 1), status="trialing")
    Subscription.objects.filter(pk=sub.pk).update(
        trial_end=date(2026, 1, 15),
        next_billing_on=date(2026, 1, 15),
        current_period_end=date(2026, 1, 15),
        billing_anchor_day=15,
    )
    run(date(2026, 2, 1))
    invoice = Invoice.objects.get()
    assert (invoice.period_start, invoice.period_end, invoice.subtotal) == (
        date(2026, 1, 15),
        date(2026, 2, 15),
        D("30.00"),
    )
    sub.refresh_from_db()
    assert (sub.status, sub.next_billing_on) == ("active", date(2026, 2, 15))
    change = SubscriptionChange.objects.get(subscription=sub)
    assert (change.kind, (change.before or {})["mrr"], (change.after or {})["mrr"]) == (
        "trial_ended",
        "0",
        "20.00",
    )


def test_repeating_coupon_discounts_two_invoices_then_stops() -> None:
    sub = monthly("30.00", start=date(2025, 12, 1))
    coupon = Coupon.objects.create(
        code="WELCOME20",
        name="Welcome",
        percent_off=D("20"),
        duration="repeating",
        duration_periods=2,
        created_at=timezone.now(),
    )
    Subscription.objects.filter(pk=sub.pk).update(coupon=coupon, coupon_periods_remaining=2)
    run(date(2026, 2, 1))  # Dec, Jan, Feb: three invoices in one run (catch-up)
    invoices = list(Invoice.objects.order_by("sequence_number"))
    assert [i.number for i in invoices] == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]
    assert [i.period_start for i in invoices] == [date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]
    assert [i.subtotal for i in invoices] == [D("24.00"), D("24.00"), D("30.00")]
    assert [i.total for i in invoices] == [D("29.28"), D("29.28"), D("36.60")]
    discount = invoices[0].lines.get(kind="discount")
    assert (discount.amount, discount.vat_rate) == (D("-6.00"), D("22.00"))
    sub.refresh_from_db()
    assert sub.coupon_periods_remaining == 0 and sub.next_billing_on == date(2026, 3, 1)


def test_net_negative_invoice_becomes_a_credit_note_and_customer_credit() -> None:
    sub = monthly("30.00")
    Subscription.objects.filter(pk=sub.pk).update(next_billing_on=date(2026, 2, 1))
    one_off(sub.account, "-50.00", kind="proration_credit", description="Unused time on Pro")
    run(date(2026, 2, 1))
    note = Invoice.objects.get()
    assert (note.kind, note.number, note.subtotal, note.tax_total, note.total) == (
        "credit_note",
        "NC-2026-000001",
        D("20.00"),
        D("4.40"),
        D("24.40"),
    )
    assert sorted(line.amount for line in note.lines.all()) == [D("-30.00"), D("50.00")]
    assert note.amount_due == 0
    assert BillingAccount.objects.get(pk=sub.account_id).credit_balance == D("24.40")


def test_credit_balance_is_applied_to_the_new_invoice() -> None:
    account = italian_consumer_account(credit_balance=D("0"))
    from fedele.billing.services import settlement

    settlement.account_credit_add(account_id=account.pk, amount=D("10.00"), reason="manual")
    monthly("30.00", account=account)
    run(date(2026, 1, 1))
    invoice = Invoice.objects.get()
    assert (invoice.total, invoice.amount_credited, invoice.amount_due) == (
        D("36.60"),
        D("10.00"),
        D("26.60"),
    )
    assert BillingAccount.objects.get(pk=account.pk).credit_balance == D("0.00")


def test_zero_total_invoice_is_issued_paid() -> None:
    sub = monthly("0.00")
    run(date(2026, 1, 1))
    invoice = Invoice.objects.get(subscription=sub)
    assert (invoice.total, invoice.status, invoice.number) == (D("0.00"), "paid", "INV-2026-000001")
    assert OutboxEvent.objects.filter(event_type="billing.invoice_paid").count() == 1


def test_reverse_charge_for_an_eu_business() -> None:
    monthly("100.00", account=german_company_account())
    run(date(2026, 1, 1))
    invoice = Invoice.objects.get()
    assert (invoice.reverse_charge, invoice.tax_total, invoice.total) == (True, D("0.00"), D("100.00"))
    summary = invoice.tax_summaries.get()
    assert (summary.vat_rate, summary.vat_nature) == (D("0.00"), "N2.1")
    assert "7-ter" in summary.legal_reference


def test_rerun_is_idempotent_and_numbers_are_gapless() -> None:
    for _ in range(5):
        monthly("10.00")
    first = run(date(2026, 1, 1))
    second = run(date(2026, 1, 1))
    assert (first.invoices_created, second.invoices_created, second.subscriptions_due) == (5, 0, 0)
    assert sorted(n or 0 for n in Invoice.objects.values_list("sequence_number", flat=True)) == [
        1,
        2,
        3,
        4,
        5,
    ]


def test_a_bad_subscription_is_reported_and_skipped() -> None:
    good = monthly("10.00")
    bad = monthly("10.00")
    dollar = PlanVersionFactory(plan=bad.plan, currency="USD", version=2)
    PlanCharge.objects.create(
        plan_version=dollar, code="base", name="Base", kind="recurring", model="flat", flat_amount=D("10")
    )
    Subscription.objects.filter(pk=bad.pk).update(plan_version=dollar)
    result = run(date(2026, 1, 1))
    assert result.status == "completed"
    assert (result.subscriptions_processed, result.invoices_created) == (2, 1)
    assert result.errors == [
        {"subscription_id": bad.pk, "error": "The plan's currency differs from the account's."}
    ]
    assert Invoice.objects.get().subscription_id == good.pk
    bad.refresh_from_db()
    assert bad.next_billing_on == date(2026, 1, 1)


def test_a_failing_write_rolls_back_only_that_subscription() -> None:
    subs = [monthly("10.00") for _ in range(3)]
    original = BatchProcessor._mark_usage
    target = subs[1].pk

    def failing(self, planned):  # type: ignore[no-untyped-def]
        if any(plan.subscription.pk == target for plan in planned):
            raise RuntimeError("disk full")
        return original(self, planned)

    with mock.patch.object(BatchProcessor, "_mark_usage", failing):
        result = run(date(2026, 1, 1))
    assert result.invoices_created == 2
    assert result.errors == [{"subscription_id": target, "error": "RuntimeError: disk full"}]
    assert sorted(Invoice.objects.values_list("subscription_id", flat=True)) == [subs[0].pk, subs[2].pk]
    assert sorted(n or 0 for n in Invoice.objects.values_list("sequence_number", flat=True)) == [1, 2]
    assert Subscription.objects.get(pk=target).next_billing_on == date(2026, 1, 1)
    assert not SubscriptionChange.objects.filter(subscription_id=target).exists()


def test_drafts_only_run_leaves_invoices_unnumbered() -> None:
    monthly("10.00")
    run(date(2026, 1, 1), finalise=False)
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.number, invoice.total) == ("draft", None, D("12.20"))
    assert len(mail.outbox) == 0


def test_start_refuses_a_future_date_and_a_second_live_run() -> None:
    with pytest.raises(ValidationFailed):
        billing_run_start(as_of=date(2026, 2, 2), execute=False)
    billing_run_start(as_of=date(2026, 2, 1), execute=False)
    with pytest.raises(Conflict):
        billing_run_start(as_of=date(2026, 2, 1), execute=False)
    assert BillingRun.objects.count() == 1


def test_start_executes_after_commit_in_eager_mode(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    monthly("10.00")
    with django_capture_on_commit_callbacks(execute=True):
        started = billing_run_start(as_of=date(2026, 2, 1))
    started.refresh_from_db()
    assert (started.status, started.invoices_created) == ("completed", 2)


def test_completed_run_is_not_executed_again() -> None:
    monthly("10.00")
    done = run(date(2026, 1, 1))
    again = billing_run_execute(done.pk)
    assert (again.invoices_created, Invoice.objects.count()) == (1, 1)


def test_daily_job_starts_once_and_resumes_a_crashed_run(time_machine) -> None:  # type: ignore[no-untyped-def]
    from fedele.billing.tasks import daily_billing_run

    monthly("10.00", start=date(2026, 2, 1))
    assert daily_billing_run() == 1
    assert daily_billing_run() is None  # today's run is complete
    crashed = BillingRun.objects.create(
        as_of=date(2026, 2, 1), status="running", heartbeat_at=timezone.now(), created_at=timezone.now()
    )
    time_machine.move_to(datetime(2026, 2, 1, 9, 3, tzinfo=UTC), tick=False)  # heartbeat now 3 minutes old
    monthly("20.00", start=date(2026, 2, 1))
    assert daily_billing_run() == 1
    crashed.refresh_from_db()
    assert (crashed.status, crashed.invoices_created) == ("completed", 1)
    assert Invoice.objects.count() == 2


def test_flat_payload_equals_to_payload() -> None:
    from fedele.billing.services.billing_run import flat_payload
    from fedele.billing.services.invoicing import finalised_event

    monthly("10.00")
    run(date(2026, 1, 1))
    event = finalised_event(Invoice.objects.get())
    assert flat_payload(event) == event.to_payload()
    assert OutboxEvent.objects.get(event_type="billing.invoice_finalised").payload == event.to_payload()
