# mypy: disable-error-code="index"
"""Subscription services: creation, prorated changes (the acceptance figures), scheduling, pause,
cancel, reactivate, coupons, migrations; refused actions write nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from fedele.accounts.tests.factories import user_with_roles
from fedele.billing import pricing
from fedele.billing.models import OneOffCharge, SubscriptionChange
from fedele.billing.services import subscriptions as services
from fedele.billing.tests.factories import BillingAccountFactory, PlanVersionFactory, flat_plan, subscription
from fedele.billing.tests.subscription_helpers import (
    billed_subscription,
    coupon,
    proration_rows,
    seat_plan,
    sibling_version,
    side_effects,
)
from fedele.shared.errors import Conflict, NotFound, ValidationFailed
from fedele.shared.models import OutboxEvent
from fedele.shared.money import Money

pytestmark = pytest.mark.django_db


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)


# acceptance figures --------------------------------------------------------------------------------


def test_pricing_upgrade_30_to_60_on_16_january() -> None:
    result = pricing.proration_for_change(
        Money.of("30.00"), Money.of("60.00"), date(2026, 1, 1), date(2026, 2, 1), date(2026, 1, 16)
    )
    assert (result.credit.amount, result.charge.amount, result.net.amount) == (
        Decimal("15.48"),
        Decimal("30.97"),
        Decimal("15.49"),
    )
    assert (result.days_remaining, result.days_in_period) == (16, 31)


def test_upgrade_on_16_january_books_credit_and_charge(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    old = flat_plan("30.00")
    new = sibling_version(old, "60.00")
    sub = billed_subscription(old)
    clerk = user_with_roles("billing_clerk")
    changed = services.subscription_change(subscription=sub, plan_version=new, actor_id=clerk.pk)
    assert changed.plan_version_id == new.pk and changed.plan_id == new.plan_id
    assert proration_rows(sub) == [
        ("proration_credit", Decimal("-15.48")),
        ("proration_charge", Decimal("30.97")),
    ]
    change = SubscriptionChange.objects.get(subscription=sub, kind="plan_changed")
    assert (change.proration_credit, change.proration_charge) == (Decimal("15.48"), Decimal("30.97"))
    assert change.effective_on == date(2026, 1, 16) and change.actor_id == clerk.pk
    assert change.before["mrr"] == "30.00" and change.after["mrr"] == "60.00"
    assert change.after["plan_code"] == new.plan.code
    keys = sorted(OneOffCharge.objects.filter(subscription=sub).values_list("idempotency_key", flat=True))
    assert keys == [f"proration:{change.pk}:charge", f"proration:{change.pk}:credit"]
    event = OutboxEvent.objects.get(event_type="billing.subscription_changed")
    assert event.payload["old_plan_code"] == old.plan.code and event.payload["change"] == "plan_changed"
    assert changed.next_billing_on == date(2026, 2, 1)


def test_upgrade_on_29_february_2028_prorates_one_day_of_29(time_machine) -> None:
    time_machine.move_to(at(date(2028, 2, 29)), tick=False)
    old = flat_plan("30.00")
    new = sibling_version(old, "60.00")
    sub = billed_subscription(old, start=date(2028, 2, 1))
    assert sub.current_period_end == date(2028, 3, 1)
    preview = services.subscription_preview_change(subscription=sub, plan_version=new)
    assert (preview.days_remaining, preview.days_in_period) == (1, 29)
    assert (preview.credit.amount, preview.charge.amount, preview.net.amount) == (
        Decimal("1.03"),
        Decimal("2.07"),
        Decimal("1.04"),
    )
    services.subscription_change(subscription=sub, plan_version=new)
    assert proration_rows(sub) == [
        ("proration_credit", Decimal("-1.03")),
        ("proration_charge", Decimal("2.07")),
    ]


def test_downgrade_on_16_january_nets_a_credit(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    old = flat_plan("60.00")
    new = sibling_version(old, "30.00")
    sub = billed_subscription(old)
    preview = services.subscription_preview_change(subscription=sub, plan_version=new)
    assert (preview.credit.amount, preview.charge.amount, preview.net.amount) == (
        Decimal("30.97"),
        Decimal("15.48"),
        Decimal("-15.49"),
    )
    services.subscription_change(subscription=sub, plan_version=new)
    assert proration_rows(sub) == [
        ("proration_credit", Decimal("-30.97")),
        ("proration_charge", Decimal("15.48")),
    ]
    assert sum(amount for _kind, amount in proration_rows(sub)) == Decimal("-15.49")


def test_quantity_change_3_to_5_seats_at_10(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    version = seat_plan("10.00")
    sub = billed_subscription(version, quantity=3)
    changed = services.subscription_change(subscription=sub, quantity=Decimal(5))
    assert changed.quantity == Decimal(5)
    # 30.00 * 16/31 = 15.48 credit, 50.00 * 16/31 = 25.81 charge
    assert proration_rows(sub) == [
        ("proration_credit", Decimal("-15.48")),
        ("proration_charge", Decimal("25.81")),
    ]
    change = SubscriptionChange.objects.get(subscription=sub, kind="quantity_changed")
    assert change.before["quantity"] == "3" and change.after["quantity"] == "5"
    assert change.after["mrr"] == "50.00"


def test_change_on_the_period_boundary_prorates_nothing(time_machine) -> None:
    # 1 Feb: the January period (invoiced) has ended and the renewal has not run yet.
    time_machine.move_to(at(date(2026, 2, 1)), tick=False)
    old = flat_plan("30.00")
    new = sibling_version(old, "60.00")
    sub = billed_subscription(old)
    preview = services.subscription_preview_change(subscription=sub, plan_version=new)
    assert (preview.credit.amount, preview.charge.amount, preview.days_remaining) == (
        Decimal(0),
        Decimal(0),
        0,
    )
    services.subscription_change(subscription=sub, plan_version=new)
    assert OneOffCharge.objects.count() == 0
    change = SubscriptionChange.objects.get(subscription=sub, kind="plan_changed")
    assert (change.proration_credit, change.proration_charge) == (Decimal(0), Decimal(0))


def test_change_before_the_first_invoice_is_not_prorated(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    old = flat_plan("30.00")
    sub = subscription(old)  # next_billing_on = start: the first invoice will bill the new price
    services.subscription_change(subscription=sub, plan_version=sibling_version(old, "60.00"))
    assert OneOffCharge.objects.count() == 0


def test_change_at_period_end_is_scheduled(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    version = seat_plan("10.00")
    sub = billed_subscription(version, quantity=3)
    changed = services.subscription_change(subscription=sub, quantity=Decimal("5"), at="period_end")
    assert changed.pending_change == {"plan_version_id": version.pk, "quantity": "5"}
    assert changed.quantity == Decimal(3)
    change = SubscriptionChange.objects.get(subscription=sub, kind="change_scheduled")
    assert change.effective_on == date(2026, 2, 1) and change.before == change.after
    assert OneOffCharge.objects.count() == 0
    services.subscription_unschedule_change(subscription=sub)
    sub.refresh_from_db()
    assert sub.pending_change is None
    with pytest.raises(Conflict):
        services.subscription_unschedule_change(subscription=sub)


def test_preview_writes_nothing(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    old = flat_plan("30.00")
    sub = billed_subscription(old)
    before = side_effects()
    preview = services.subscription_preview_change(
        subscription=sub, plan_version=sibling_version(old, "60.00")
    )
    assert preview.current_recurring.amount == Decimal("30.00")
    assert preview.new_recurring.amount == Decimal("60.00")
    assert side_effects() == before


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"quantity": Decimal(-1)}, "invalid_quantity"),
        ({"quantity": Decimal("NaN")}, "invalid_quantity"),
        ({"quantity": Decimal("1E+12")}, "invalid_quantity"),
        ({"quantity": Decimal(1)}, "no_change"),
        ({"at": "tomorrow", "quantity": Decimal(2)}, "invalid_timing"),
    ],
)
def test_bad_changes_are_refused_and_write_nothing(time_machine, kwargs, code) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    sub = billed_subscription(flat_plan("30.00"))
    before = side_effects()
    with pytest.raises(ValidationFailed) as error:
        services.subscription_change(subscription=sub, **kwargs)
    assert error.value.code == code
    assert side_effects() == before


def test_change_to_other_currency_period_or_draft_is_refused(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    old = flat_plan("30.00")
    sub = billed_subscription(old)
    before = side_effects()
    usd = flat_plan("30.00", currency="USD")
    yearly = flat_plan("300.00", period="year")
    draft = PlanVersionFactory(plan=old.plan, version=2, published_at=None)
    for target, code in (
        (usd, "currency_mismatch"),
        (yearly, "billing_period_mismatch"),
        (draft, "version_not_published"),
    ):
        with pytest.raises(ValidationFailed) as error:
            services.subscription_change(subscription=sub, plan_version=target)
        assert error.value.code == code
    assert side_effects() == before


def test_paused_or_cancelled_subscription_cannot_change(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    sub = billed_subscription(flat_plan("30.00"))
    services.subscription_pause(subscription=sub)
    with pytest.raises(Conflict):
        services.subscription_change(subscription=sub, quantity=Decimal(2))


# creation ------------------------------------------------------------------------------------------


def test_create_without_trial_bills_on_the_start_date(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 31)), tick=False)
    version = flat_plan("30.00")
    account = BillingAccountFactory()
    sub = services.subscription_create(account=account, plan_version=version, quantity=Decimal(2))
    assert (sub.status, sub.started_on, sub.billing_anchor_day) == ("active", date(2026, 1, 31), 31)
    assert (sub.current_period_start, sub.current_period_end) == (date(2026, 1, 31), date(2026, 2, 28))
    assert sub.next_billing_on == date(2026, 1, 31)
    assert sub.number.startswith("SUB-")
    created = SubscriptionChange.objects.get(subscription=sub)
    assert created.kind == "created" and created.before is None and created.after["mrr"] == "30.00"
    event = OutboxEvent.objects.get(event_type="billing.subscription_started")
    assert event.payload["quantity"] == "2" and event.payload["trial_end"] is None


def test_create_with_trial_bills_at_trial_end(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 10)), tick=False)
    version = flat_plan("30.00", trial_days=14)
    sub = services.subscription_create(account=BillingAccountFactory(), plan_version=version)
    assert (sub.status, sub.trial_end, sub.next_billing_on) == (
        "trialing",
        date(2026, 1, 24),
        date(2026, 1, 24),
    )
    assert (sub.current_period_start, sub.current_period_end, sub.billing_anchor_day) == (
        date(2026, 1, 10),
        date(2026, 1, 24),
        24,
    )
    assert SubscriptionChange.objects.get(subscription=sub).after["mrr"] == "0"
    no_trial = services.subscription_create(
        account=BillingAccountFactory(), plan_version=version, trial_days=0
    )
    assert no_trial.status == "active"


def test_create_with_coupon_redeems_it(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 10)), tick=False)
    coupon("SPRING", duration="repeating", duration_periods=3, max_redemptions=1)
    version = flat_plan("30.00")
    sub = services.subscription_create(
        account=BillingAccountFactory(), plan_version=version, coupon_code="spring"
    )
    assert sub.coupon.code == "SPRING" and sub.coupon_periods_remaining == 3
    assert sub.coupon.times_redeemed == 1
    before = side_effects()
    with pytest.raises(ValidationFailed) as error:
        services.subscription_create(
            account=BillingAccountFactory(), plan_version=version, coupon_code="SPRING"
        )
    assert error.value.code == "coupon_not_redeemable"
    with pytest.raises(NotFound):
        services.subscription_create(
            account=BillingAccountFactory(), plan_version=version, coupon_code="NOPE"
        )
    assert side_effects()["subscriptions"] == before["subscriptions"]
    assert side_effects()["outbox"] == before["outbox"]


def test_create_refuses_bad_input_and_writes_nothing(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 10)), tick=False)
    version = flat_plan("30.00")
    account = BillingAccountFactory()
    usd_account = BillingAccountFactory(currency="USD")
    draft = PlanVersionFactory(published_at=None)
    before = side_effects()
    cases = [
        ({"account": usd_account, "plan_version": version}, "currency_mismatch"),
        ({"account": account, "plan_version": draft}, "version_not_published"),
        ({"account": account, "plan_version": version, "quantity": Decimal(-1)}, "invalid_subscription"),
        ({"account": account, "plan_version": version, "term_end": date(2026, 1, 9)}, "invalid_subscription"),
        ({"account": account, "plan_version": version, "renewal_reminder_days": 30}, "invalid_subscription"),
        ({"account": account, "plan_version": version, "trial_days": -1}, "invalid_subscription"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ValidationFailed) as error:
            services.subscription_create(**kwargs)
        assert error.value.code == code, kwargs
    assert side_effects() == before


def test_zero_quantity_is_allowed(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 10)), tick=False)
    sub = services.subscription_create(
        account=BillingAccountFactory(), plan_version=seat_plan("10.00"), quantity=Decimal(0)
    )
    assert sub.quantity == Decimal(0)
    assert SubscriptionChange.objects.get(subscription=sub).after["mrr"] == "0.00"


# pause, cancel, reactivate ---------------------------------------------------------------------------


def test_cancel_now_credits_the_unused_days(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    sub = billed_subscription(flat_plan("30.00"))
    cancelled = services.subscription_cancel(subscription=sub, at="now", reason="moving abroad")
    assert (cancelled.status, cancelled.ended_on, cancelled.next_billing_on) == (
        "cancelled",
        date(2026, 1, 16),
        date(2026, 1, 16),  # the final invoice (credit, usage so far) is due the same day
    )
    assert proration_rows(sub) == [("proration_credit", Decimal("-15.48"))]
    change = SubscriptionChange.objects.get(subscription=sub, kind="cancelled")
    assert change.proration_credit == Decimal("15.48") and change.after["mrr"] == "0"
    assert (
        OutboxEvent.objects.get(event_type="billing.subscription_cancelled").payload["reason"]
        == "moving abroad"
    )
    with pytest.raises(Conflict):
        services.subscription_cancel(subscription=sub, at="now")


def test_cancel_now_without_proration_or_before_first_invoice(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    services.subscription_cancel(
        subscription=billed_subscription(flat_plan("30.00")), at="now", prorate=False
    )
    services.subscription_cancel(subscription=subscription(flat_plan("30.00")), at="now")
    assert OneOffCharge.objects.count() == 0


def test_cancel_at_period_end_and_withdraw(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    sub = billed_subscription(flat_plan("30.00"))
    scheduled = services.subscription_cancel(subscription=sub, reason="price")
    assert scheduled.cancel_at_period_end and scheduled.status == "active"
    with pytest.raises(Conflict):
        services.subscription_change(subscription=sub, quantity=Decimal(2), at="period_end")
    restored = services.subscription_uncancel(subscription=sub)
    assert not restored.cancel_at_period_end and restored.cancellation_reason == ""
    kinds = list(SubscriptionChange.objects.filter(subscription=sub).values_list("kind", flat=True))
    assert kinds == ["cancel_scheduled", "change_unscheduled"]
    with pytest.raises(Conflict):
        services.subscription_uncancel(subscription=sub)


def test_reactivate_starts_a_new_period_today(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    sub = billed_subscription(flat_plan("30.00"))
    services.subscription_cancel(subscription=sub, at="now")
    time_machine.move_to(at(date(2026, 3, 31)), tick=False)
    back = services.subscription_reactivate(subscription=sub)
    assert (back.status, back.current_period_start, back.current_period_end) == (
        "active",
        date(2026, 3, 31),
        date(2026, 4, 30),
    )
    assert (back.next_billing_on, back.billing_anchor_day, back.ended_on) == (date(2026, 3, 31), 31, None)
    assert SubscriptionChange.objects.filter(subscription=sub).last().kind == "reactivated"


def test_pause_now_credits_and_resume_restarts(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    sub = billed_subscription(flat_plan("30.00"))
    paused = services.subscription_pause(subscription=sub, resume_on=date(2026, 3, 1))
    assert (paused.status, paused.paused_on, paused.resume_on, paused.next_billing_on) == (
        "paused",
        date(2026, 1, 16),
        date(2026, 3, 1),
        None,
    )
    assert proration_rows(sub) == [("proration_credit", Decimal("-15.48"))]
    time_machine.move_to(at(date(2026, 2, 10)), tick=False)
    resumed = services.subscription_resume(subscription=sub)
    assert (resumed.status, resumed.current_period_start, resumed.current_period_end) == (
        "active",
        date(2026, 2, 10),
        date(2026, 3, 10),
    )
    assert resumed.next_billing_on == date(2026, 2, 10) and resumed.paused_on is None


def test_pause_at_period_end_is_scheduled_and_can_be_withdrawn(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    sub = billed_subscription(flat_plan("30.00"))
    with pytest.raises(ValidationFailed):
        services.subscription_pause(subscription=sub, at="period_end", resume_on=date(2026, 2, 1))
    scheduled = services.subscription_pause(subscription=sub, at="period_end")
    assert (scheduled.status, scheduled.paused_on) == ("active", date(2026, 2, 1))
    assert OneOffCharge.objects.count() == 0
    withdrawn = services.subscription_resume(subscription=sub)
    assert withdrawn.paused_on is None and withdrawn.status == "active"


# coupons and migrations --------------------------------------------------------------------------------


def test_apply_coupon_changes_mrr(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    coupon("HALF", percent_off=Decimal(50), duration="forever")
    coupon("FIVE", percent_off=None, amount_off=Decimal("5.00"), currency="USD")
    sub = billed_subscription(flat_plan("30.00"))
    with pytest.raises(ValidationFailed) as error:
        services.subscription_apply_coupon(subscription=sub, coupon_code="FIVE")
    assert error.value.code == "coupon_not_redeemable"
    applied = services.subscription_apply_coupon(subscription=sub, coupon_code="half")
    assert applied.coupon_periods_remaining is None
    change = SubscriptionChange.objects.get(subscription=sub, kind="coupon_applied")
    assert (change.before["mrr"], change.after["mrr"]) == ("30.00", "15.00")
    with pytest.raises(Conflict):
        services.subscription_apply_coupon(subscription=sub, coupon_code="HALF")


def test_migrate_version_at_period_end_and_now(time_machine) -> None:
    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    v1 = flat_plan("30.00")
    v2 = PlanVersionFactory(plan=v1.plan, version=2)
    v2.charges.create(
        code="base", name="Base fee", kind="recurring", model="flat", flat_amount=Decimal("36.00")
    )
    first = billed_subscription(v1)
    second = billed_subscription(v1)
    scheduled = services.subscription_migrate_version(subscription=first, plan_version=v2)
    assert scheduled.pending_change == {"plan_version_id": v2.pk, "quantity": "1"}
    moved = services.subscription_migrate_version(subscription=second, plan_version=v2, at="now")
    assert moved.plan_version_id == v2.pk
    # 30.00 * 16/31 = 15.48 credit; 36.00 * 16/31 = 18.58 charge
    assert proration_rows(second) == [
        ("proration_credit", Decimal("-15.48")),
        ("proration_charge", Decimal("18.58")),
    ]
    assert SubscriptionChange.objects.get(subscription=second, kind="migrated").note == "migration v1 → v2"
    with pytest.raises(ValidationFailed) as error:
        services.subscription_migrate_version(subscription=first, plan_version=flat_plan("1.00"))
    assert error.value.code == "not_same_plan"


# periodic job, accounts, concurrency -----------------------------------------------------------------


def test_renewal_reminder_once_per_term(time_machine) -> None:
    from fedele.billing.services.subscription_rules import renewal_reminders_send, subscription_schedules_run
    from fedele.shared.models import Notification

    clerk = user_with_roles("billing_clerk")
    user_with_roles("supervisor")  # may view billing, does not manage it: not notified
    time_machine.move_to(at(date(2026, 1, 10)), tick=False)
    sub = services.subscription_create(
        account=BillingAccountFactory(),
        plan_version=flat_plan("30.00"),
        term_end=date(2026, 12, 31),
        renewal_reminder_days=30,
    )
    assert renewal_reminders_send(today=date(2026, 11, 30)) == 0  # 31 days before
    assert renewal_reminders_send(today=date(2026, 12, 1)) == 1  # 30 days before
    assert renewal_reminders_send(today=date(2026, 12, 2)) == 0  # already sent for this term
    notification = Notification.objects.get()
    assert notification.recipient_id == clerk.pk
    assert notification.title == f"Contract {sub.number} renews on 2026-12-31"
    timeline = OutboxEvent.objects.get(event_type="customers.TimelineAppendRequested")
    assert (
        timeline.payload["kind"] == "renewal_reminder"
        and timeline.payload["data"]["term_end"] == "2026-12-31"
    )
    time_machine.move_to(at(date(2026, 12, 5)), tick=False)
    assert subscription_schedules_run() == {"reminders": 0, "paused": 0, "resumed": 0}


def test_scheduled_pause_and_resume_are_applied_by_the_job(time_machine) -> None:
    from fedele.billing.services.subscription_rules import scheduled_pauses_and_resumes_apply

    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    sub = billed_subscription(flat_plan("30.00"))
    services.subscription_pause(subscription=sub, at="period_end", resume_on=date(2026, 3, 1))
    assert scheduled_pauses_and_resumes_apply(today=date(2026, 1, 31)) == (0, 0)
    assert scheduled_pauses_and_resumes_apply(today=date(2026, 2, 1)) == (1, 0)
    sub.refresh_from_db()
    assert (sub.status, sub.paused_on, sub.next_billing_on) == ("paused", date(2026, 2, 1), None)
    assert OneOffCharge.objects.count() == 0  # the paid period was used to its end
    assert scheduled_pauses_and_resumes_apply(today=date(2026, 3, 1)) == (0, 1)
    sub.refresh_from_db()
    assert (sub.status, sub.current_period_start, sub.next_billing_on) == (
        "active",
        date(2026, 3, 1),
        date(2026, 3, 1),
    )


def test_billing_account_for_customer_get_or_create() -> None:
    from fedele.billing.services.accounts import billing_account_for_customer, billing_account_update
    from fedele.customers.tests.factories import CustomerFactory

    customer = CustomerFactory(email="anna@example.it")
    account = billing_account_for_customer(customer_public_id=str(customer.public_id), currency="usd")
    assert (account.currency, account.billing_email) == ("USD", "anna@example.it")
    again = billing_account_for_customer(customer_public_id=str(customer.public_id))
    assert again.pk == account.pk and again.currency == "USD"
    with pytest.raises(NotFound):
        billing_account_for_customer(customer_public_id="00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFound):
        billing_account_for_customer(customer_public_id="not-a-uuid")
    with pytest.raises(ValidationFailed):
        billing_account_for_customer(customer_public_id=str(customer.public_id), currency="EURO")
    updated = billing_account_update(
        account=account, currency="EUR", payment_terms_days=60, billing_email="A@B.IT"
    )
    assert (updated.currency, updated.payment_terms_days, updated.billing_email) == ("EUR", 60, "a@b.it")
    subscription(flat_plan("30.00"), account=updated)
    with pytest.raises(Conflict) as error:
        billing_account_update(account=updated, currency="USD")
    assert error.value.code == "currency_locked"
    with pytest.raises(ValidationFailed):
        billing_account_update(account=updated, payment_terms_days=400)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_serialise_on_the_row_lock(time_machine) -> None:
    import threading

    from django.db import connection

    time_machine.move_to(at(date(2026, 1, 16)), tick=False)
    version = seat_plan("10.00")
    sub = billed_subscription(version, quantity=3)
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def change(quantity: int) -> None:
        try:
            barrier.wait()
            services.subscription_change(subscription=sub, quantity=Decimal(quantity))
        except BaseException as error:
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=change, args=(quantity,)) for quantity in (5, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    first, second = SubscriptionChange.objects.filter(subscription=sub).order_by("id")
    # The second change started from what the first left, never from the stale quantity 3.
    assert first.before["quantity"] == "3"
    assert second.before["quantity"] == first.after["quantity"]
    sub.refresh_from_db()
    assert sub.quantity == Decimal(second.after["quantity"])
    # Credits chain: the second credits exactly what the first charged.
    assert second.proration_credit == first.proration_charge
    assert OneOffCharge.objects.filter(subscription=sub).count() == 4
