"""Subscription actions a person asks for: create, change now or at period end, preview a change,
pause/resume, cancel now or at period end, undo a scheduled cancellation, reactivate, coupons,
migrate to a new plan version.

What happens at a period boundary (renewal, applying ``pending_change``, ending a trial, honouring
``cancel_at_period_end``) belongs to the billing run. Every action here is one transaction on the
locked subscription row, with a SubscriptionChange (before/after snapshots), an audit row and an
outbox event. Immediate changes of a period already invoiced are prorated by day (credit for the
unused old price, charge for the new one) as OneOffCharge rows that the next invoice bills.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction

from fedele.billing.contracts import LIVE_SUBSCRIPTION_STATUSES, BillingPeriod, SubscriptionStatus
from fedele.billing.events import SubscriptionCancelled, SubscriptionStarted
from fedele.billing.models import BillingAccount, PlanVersion, Subscription, SubscriptionChange
from fedele.billing.periods import period_end
from fedele.billing.services import subscription_rules as rules
from fedele.billing.services.subscription_rules import ChangePreview
from fedele.billing.snapshots import quantity_text
from fedele.shared import audit, clock, events, sequences
from fedele.shared.errors import Conflict, ValidationFailed
from fedele.shared.money import Money

__all__ = [
    "ChangePreview",
    "subscription_apply_coupon",
    "subscription_cancel",
    "subscription_change",
    "subscription_create",
    "subscription_migrate_version",
    "subscription_pause",
    "subscription_preview_change",
    "subscription_reactivate",
    "subscription_resume",
    "subscription_uncancel",
    "subscription_unschedule_change",
]
# The periodic job (renewal reminders, scheduled pauses and resumes) lives with the helpers.

Kind = SubscriptionChange.Kind
TIMINGS = ("now", "period_end")
MAX_TRIAL_DAYS = 365


def _audit(subscription: Subscription, action: str, before: Any, actor_id: int | None) -> None:
    audit.record(
        action=f"billing.subscription.{action}",
        object_type="subscription",
        object_id=str(subscription.public_id),
        before=before,
        after=rules.snapshot(subscription),
        actor_id=actor_id,
    )


def _save(subscription: Subscription) -> None:
    subscription.updated_at = clock.now()
    subscription.save()


def _timing(at: str) -> str:
    if at not in TIMINGS:
        raise ValidationFailed(
            f"'{at}' is not a timing.", code="invalid_timing", fields={"at": "must be now or period_end."}
        )
    return at


# create --------------------------------------------------------------------------------------------


def subscription_create(
    *,
    account: BillingAccount,
    plan_version: PlanVersion,
    quantity: Decimal = Decimal(1),
    start_on: date | None = None,
    trial_days: int | None = None,
    coupon_code: str = "",
    auto_renew: bool = True,
    term_end: date | None = None,
    renewal_reminder_days: int = 0,
    external_reference: str = "",
    actor_id: int | None = None,
) -> Subscription:
    """A new subscription. Without a trial the first invoice (first period + setup fee) is due on the
    start date; with one, nothing is billed until ``trial_end``, when the first paid period starts
    (and the billing anchor is the trial end's day)."""
    errors: dict[str, str] = {}
    start = start_on or clock.today()
    try:
        amount = rules.validated_quantity(quantity)
    except ValidationFailed as error:
        errors["quantity"] = error.fields["quantity"][0]
        amount = Decimal(0)
    trial = plan_version.plan.trial_days if trial_days is None else trial_days
    if isinstance(trial, bool) or not isinstance(trial, int) or not 0 <= trial <= MAX_TRIAL_DAYS:
        errors["trial_days"] = f"must be between 0 and {MAX_TRIAL_DAYS}."
        trial = 0
    if term_end is not None and term_end <= start:
        errors["term_end"] = "must be after the start date."
    if not 0 <= renewal_reminder_days <= 365:
        errors["renewal_reminder_days"] = "must be between 0 and 365."
    elif renewal_reminder_days and term_end is None:
        errors["renewal_reminder_days"] = "needs a contract term end."
    if len(external_reference) > 100:
        errors["external_reference"] = "at most 100 characters."
    if errors:
        raise ValidationFailed("The subscription is not valid.", code="invalid_subscription", fields=errors)
    rules.ensure_sellable(plan_version)
    if plan_version.currency != account.currency:
        raise ValidationFailed(
            f"The plan is priced in {plan_version.currency}, the account bills in {account.currency}.",
            code="currency_mismatch",
            fields={"plan_version": f"must be priced in {account.currency}."},
        )
    trial_end = start + timedelta(days=trial) if trial else None
    first_start = trial_end or start
    anchor = first_start.day
    now = clock.now()
    with transaction.atomic():
        locked_account = (
            BillingAccount.objects.select_for_update().select_related("customer").get(pk=account.pk)
        )
        subscription = Subscription(
            number=sequences.next_number("SUB"),
            account=locked_account,
            plan=plan_version.plan,
            plan_version=plan_version,
            quantity=amount,
            status=SubscriptionStatus.TRIALING if trial_end else SubscriptionStatus.ACTIVE,
            billing_period=plan_version.plan.billing_period,
            billing_anchor_day=anchor,
            started_on=start,
            trial_end=trial_end,
            current_period_start=start,
            current_period_end=trial_end or period_end(start, plan_version.plan.billing_period, anchor),
            next_billing_on=first_start,
            auto_renew=auto_renew,
            term_end=term_end,
            renewal_reminder_days=renewal_reminder_days,
            external_reference=external_reference.strip(),
            created_at=now,
            updated_at=now,
        )
        if coupon_code.strip():
            coupon = rules.redeemable_coupon(coupon_code, currency=plan_version.currency, today=start)
            rules.redeem(subscription, coupon)
        subscription.save()
        rules.history(subscription, Kind.CREATED, effective_on=start, before=None, actor_id=actor_id)
        _audit(subscription, "created", None, actor_id)
        events.publish(
            SubscriptionStarted(
                subscription_id=str(subscription.public_id),
                number=subscription.number,
                customer_id=str(locked_account.customer.public_id),
                plan_code=subscription.plan.code,
                quantity=quantity_text(subscription.quantity),
                started_on=start.isoformat(),
                trial_end=trial_end.isoformat() if trial_end else None,
            ),
            aggregate_type="subscription",
            aggregate_id=str(subscription.public_id),
        )
    return subscription


# change plan / quantity ---------------------------------------------------------------------------------


def _change_target(
    subscription: Subscription, plan_version: PlanVersion | None, quantity: Any, at: str
) -> tuple[PlanVersion, Decimal]:
    _timing(at)
    rules.require_live(subscription, "changed")
    version = plan_version or subscription.plan_version
    new_quantity = subscription.quantity if quantity is None else rules.validated_quantity(quantity)
    if version.pk != subscription.plan_version_id:
        rules.ensure_sellable(version)
        if version.currency != subscription.plan_version.currency:
            raise ValidationFailed(
                f"The new plan is priced in {version.currency}, the subscription in "
                f"{subscription.plan_version.currency}.",
                code="currency_mismatch",
                fields={"plan_version": f"must be priced in {subscription.plan_version.currency}."},
            )
        if version.plan.billing_period != subscription.billing_period:
            raise ValidationFailed(
                "A change must keep the billing period; cancel at period end and start a new subscription.",
                code="billing_period_mismatch",
                fields={"plan_version": f"must be billed per {subscription.billing_period}."},
            )
    if version.pk == subscription.plan_version_id and new_quantity == subscription.quantity:
        raise ValidationFailed(
            "The change leaves the plan and the quantity as they are.",
            code="no_change",
            fields={"plan_version": "choose another plan or quantity."},
        )
    if at == "period_end" and subscription.cancel_at_period_end:
        raise Conflict(
            "The subscription is cancelled at the period end; withdraw the cancellation first.",
            code="cancellation_scheduled",
        )
    return version, new_quantity


def subscription_preview_change(
    *,
    subscription: Subscription,
    plan_version: PlanVersion | None = None,
    quantity: Decimal | None = None,
    at: str = "now",
) -> ChangePreview:
    """What :func:`subscription_change` would do today, without writing anything."""
    version, new_quantity = _change_target(subscription, plan_version, quantity, at)
    return rules.change_preview(subscription, version, new_quantity, at, clock.today())


def _apply_now(
    subscription: Subscription,
    version: PlanVersion,
    new_quantity: Decimal,
    *,
    kind: str,
    actor_id: int | None,
    note: str = "",
) -> Subscription:
    today = clock.today()
    preview = rules.change_preview(subscription, version, new_quantity, "now", today)
    before = rules.snapshot(subscription)
    old_label = _label(subscription)
    subscription.plan = version.plan
    subscription.plan_version = version
    subscription.quantity = new_quantity
    subscription.pending_change = None
    _save(subscription)
    change = rules.history(
        subscription,
        kind,
        effective_on=today,
        before=before,
        actor_id=actor_id,
        credit=preview.credit,
        charge=preview.charge,
        note=note,
    )
    if preview.days_remaining:
        days = f"{today.isoformat()} – {(subscription.current_period_end - timedelta(days=1)).isoformat()}"
        new_label = f"{version.plan.name} × {rules.plain(new_quantity)}"
        rules.proration_charges(
            subscription,
            change,
            credit=preview.credit,
            charge=preview.charge,
            credit_text=f"Unused time on {old_label} ({days})",
            charge_text=f"Remaining time on {new_label} ({days})",
        )
    _audit(subscription, kind, before, actor_id)
    rules.publish_changed(subscription, kind, before=before, effective_on=today)
    return subscription


def _schedule(
    subscription: Subscription,
    version: PlanVersion,
    new_quantity: Decimal,
    *,
    actor_id: int | None,
    note: str,
) -> Subscription:
    before = rules.snapshot(subscription)
    subscription.pending_change = {"plan_version_id": version.pk, "quantity": rules.plain(new_quantity)}
    _save(subscription)
    rules.history(
        subscription,
        Kind.CHANGE_SCHEDULED,
        effective_on=subscription.current_period_end,
        before=before,
        actor_id=actor_id,
        note=note or f"{version} × {rules.plain(new_quantity)} from {subscription.current_period_end}",
    )
    audit.record(
        action="billing.subscription.change_scheduled",
        object_type="subscription",
        object_id=str(subscription.public_id),
        before={"pending_change": None},
        after={"pending_change": subscription.pending_change},
        actor_id=actor_id,
    )
    rules.publish_changed(
        subscription, Kind.CHANGE_SCHEDULED, before=before, effective_on=subscription.current_period_end
    )
    return subscription


def subscription_change(
    *,
    subscription: Subscription,
    plan_version: PlanVersion | None = None,
    quantity: Decimal | None = None,
    at: str = "now",
    actor_id: int | None = None,
) -> Subscription:
    """Change the plan and/or quantity now (prorated when the period was invoiced) or at period end
    (``pending_change``, which the billing run applies). An immediate change withdraws a scheduled one."""
    with transaction.atomic():
        locked = rules.locked_subscription(subscription.pk)
        version, new_quantity = _change_target(locked, plan_version, quantity, at)
        if at == "period_end":
            return _schedule(locked, version, new_quantity, actor_id=actor_id, note="")
        kind = Kind.PLAN_CHANGED if version.pk != locked.plan_version_id else Kind.QUANTITY_CHANGED
        return _apply_now(locked, version, new_quantity, kind=kind, actor_id=actor_id)


def subscription_unschedule_change(
    *, subscription: Subscription, actor_id: int | None = None
) -> Subscription:
    with transaction.atomic():
        locked = rules.locked_subscription(subscription.pk)
        if not locked.pending_change:
            raise Conflict("No change is scheduled.", code="no_scheduled_change")
        before = rules.snapshot(locked)
        pending = locked.pending_change
        locked.pending_change = None
        _save(locked)
        rules.history(
            locked, Kind.CHANGE_UNSCHEDULED, effective_on=clock.today(), before=before, actor_id=actor_id
        )
        audit.record(
            action="billing.subscription.change_unscheduled",
            object_type="subscription",
            object_id=str(locked.public_id),
            before={"pending_change": pending},
            after={"pending_change": None},
            actor_id=actor_id,
        )
        rules.publish_changed(locked, Kind.CHANGE_UNSCHEDULED, before=before, effective_on=clock.today())
    return locked


def subscription_migrate_version(
    *,
    subscription: Subscription,
    plan_version: PlanVersion,
    at: str = "period_end",
    actor_id: int | None = None,
) -> Subscription:
    """Move a subscriber to another published version of the same plan (same currency): at period end
    by default (scheduled as ``pending_change``), or now with proration."""
    with transaction.atomic():
        locked = rules.locked_subscription(subscription.pk)
        if plan_version.plan_id != locked.plan_id:
            raise ValidationFailed(
                "A migration moves to another version of the same plan.",
                code="not_same_plan",
                fields={"plan_version": f"must be a version of {locked.plan.code}."},
            )
        version, quantity = _change_target(locked, plan_version, None, at)
        note = f"migration v{locked.plan_version.version} → v{version.version}"
        if at == "period_end":
            return _schedule(locked, version, quantity, actor_id=actor_id, note=note)
        return _apply_now(locked, version, quantity, kind=Kind.MIGRATED, actor_id=actor_id, note=note)


# pause / resume -----------------------------------------------------------------------------------


def _credit_unused(
    subscription: Subscription, change: SubscriptionChange, credit: Money, label: str, today: date, what: str
) -> None:
    """Book the credit for the unused days (priced before the subscription's state moved)."""
    if credit.is_zero():
        return
    change.proration_credit = credit.amount
    change.save(update_fields=["proration_credit"])
    last_day = subscription.current_period_end - timedelta(days=1)
    rules.proration_charges(
        subscription,
        change,
        credit=credit,
        charge=Money.zero(credit.currency),
        credit_text=f"Unused time on {label} ({today.isoformat()} – {last_day.isoformat()}, {what})",
        charge_text="",
    )


def _label(subscription: Subscription) -> str:
    return f"{subscription.plan.name} × {rules.plain(subscription.quantity)}"


def subscription_pause(
    *,
    subscription: Subscription,
    at: str = "now",
    resume_on: date | None = None,
    actor_id: int | None = None,
) -> Subscription:
    """Stop billing. Now: the unused days of an invoiced period are credited and nothing is due until
    it resumes. At period end: ``paused_on`` is set to the period end and the pause takes effect
    there (nothing is renewed). ``resume_on`` resumes it automatically on that day."""
    _timing(at)
    with transaction.atomic():
        locked = rules.locked_subscription(subscription.pk)
        rules.require_status(locked, {SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE}, "paused")
        today = clock.today()
        pause_day = today if at == "now" else locked.current_period_end
        if resume_on is not None and resume_on <= pause_day:
            raise ValidationFailed(
                "The resume date must be after the pause starts.",
                code="invalid_resume_date",
                fields={"resume_on": f"must be after {pause_day.isoformat()}."},
            )
        if locked.cancel_at_period_end:
            raise Conflict("The subscription is cancelled at the period end.", code="cancellation_scheduled")
        before = rules.snapshot(locked)
        if at == "period_end":
            locked.paused_on = pause_day
            locked.resume_on = resume_on
            _save(locked)
            rules.history(
                locked,
                Kind.CHANGE_SCHEDULED,
                effective_on=pause_day,
                before=before,
                actor_id=actor_id,
                note=f"pause from {pause_day.isoformat()}",
            )
            _audit(locked, "pause_scheduled", before, actor_id)
            rules.publish_changed(locked, "pause_scheduled", before=before, effective_on=pause_day)
            return locked
        return pause_locked(locked, today, resume_on, before, actor_id)


def pause_locked(
    locked: Subscription, day: date, resume_on: date | None, before: dict[str, Any], actor_id: int | None
) -> Subscription:
    """Pause from ``day``, crediting the unused days of an invoiced period (none at its end)."""
    credit, _days = rules.unused_credit(locked, day)
    locked.status = SubscriptionStatus.PAUSED
    locked.paused_on = day
    locked.resume_on = resume_on
    locked.next_billing_on = None
    _save(locked)
    change = rules.history(locked, Kind.PAUSED, effective_on=day, before=before, actor_id=actor_id)
    _credit_unused(locked, change, credit, _label(locked), day, "paused")
    _audit(locked, "paused", before, actor_id)
    rules.publish_changed(locked, Kind.PAUSED, before=before, effective_on=day)
    return locked


def _restart_period(subscription: Subscription, today: date) -> None:
    """A new period from ``today`` (the anchor moves to today's day), invoiced by the next billing run."""
    subscription.billing_anchor_day = today.day
    subscription.current_period_start = today
    subscription.current_period_end = period_end(today, BillingPeriod(subscription.billing_period), today.day)
    subscription.next_billing_on = today


def subscription_resume(*, subscription: Subscription, actor_id: int | None = None) -> Subscription:
    """Resume a paused subscription (a new period starts today) or withdraw a scheduled pause."""
    with transaction.atomic():
        locked = rules.locked_subscription(subscription.pk)
        today = clock.today()
        before = rules.snapshot(locked)
        if locked.status in LIVE_SUBSCRIPTION_STATUSES and locked.paused_on and locked.paused_on > today:
            locked.paused_on = None
            locked.resume_on = None
            _save(locked)
            rules.history(
                locked,
                Kind.CHANGE_UNSCHEDULED,
                effective_on=today,
                before=before,
                actor_id=actor_id,
                note="scheduled pause withdrawn",
            )
            _audit(locked, "pause_unscheduled", before, actor_id)
            rules.publish_changed(locked, "pause_unscheduled", before=before, effective_on=today)
            return locked
        rules.require_status(locked, {SubscriptionStatus.PAUSED}, "resumed")
        return resume_locked(locked, today, before, actor_id)


def resume_locked(
    locked: Subscription, today: date, before: dict[str, Any], actor_id: int | None
) -> Subscription:
    locked.status = SubscriptionStatus.ACTIVE
    locked.paused_on = None
    locked.resume_on = None
    _restart_period(locked, today)
    _save(locked)
    rules.history(locked, Kind.RESUMED, effective_on=today, before=before, actor_id=actor_id)
    _audit(locked, "resumed", before, actor_id)
    rules.publish_changed(locked, Kind.RESUMED, before=before, effective_on=today)
    return locked


# cancel / reactivate -----------------------------------------------------------------------------------


def subscription_cancel(
    *,
    subscription: Subscription,
    at: str = "period_end",
    reason: str = "",
    prorate: bool = True,
    actor_id: int | None = None,
) -> Subscription:
    """Cancel at period end (the default: service until the paid period ends) or now, crediting the
    unused days of an invoiced period (unless ``prorate`` is False)."""
    _timing(at)
    if len(reason) > 300:
        raise ValidationFailed("The reason is too long.", fields={"reason": "at most 300 characters."})
    with transaction.atomic():
        locked = rules.locked_subscription(subscription.pk)
        allowed = set(LIVE_SUBSCRIPTION_STATUSES) | ({SubscriptionStatus.PAUSED} if at == "now" else set())
        rules.require_status(locked, allowed, "cancelled")
        today = clock.today()
        before = rules.snapshot(locked)
        if at == "period_end":
            if locked.cancel_at_period_end:
                raise Conflict("The cancellation is already scheduled.", code="cancellation_scheduled")
            locked.cancel_at_period_end = True
            locked.cancellation_reason = reason.strip()
            locked.pending_change = None
            _save(locked)
            rules.history(
                locked,
                Kind.CANCEL_SCHEDULED,
                effective_on=locked.current_period_end,
                before=before,
                actor_id=actor_id,
                note=reason,
            )
            _audit(locked, "cancel_scheduled", before, actor_id)
            rules.publish_changed(
                locked, Kind.CANCEL_SCHEDULED, before=before, effective_on=locked.current_period_end
            )
            return locked
        credit = (
            rules.unused_credit(locked, today)[0] if prorate else Money.zero(locked.plan_version.currency)
        )
        locked.status = SubscriptionStatus.CANCELLED
        locked.cancelled_at = clock.now()
        locked.ended_on = today
        locked.cancel_at_period_end = False
        locked.cancellation_reason = reason.strip()
        locked.pending_change = None
        locked.paused_on = None
        locked.resume_on = None
        # The final invoice (prorated credit, usage up to today, pending one-off charges) is due today.
        locked.next_billing_on = today
        _save(locked)
        change = rules.history(
            locked, Kind.CANCELLED, effective_on=today, before=before, actor_id=actor_id, note=reason
        )
        _credit_unused(locked, change, credit, _label(locked), today, "cancelled")
        _audit(locked, "cancelled", before, actor_id)
        events.publish(
            SubscriptionCancelled(
                subscription_id=str(locked.public_id),
                number=locked.number,
                customer_id=str(locked.account.customer.public_id),
                plan_code=locked.plan.code,
                ended_on=today.isoformat(),
                reason=reason.strip(),
            ),
            aggregate_type="subscription",
            aggregate_id=str(locked.public_id),
        )
    return locked


def subscription_uncancel(*, subscription: Subscription, actor_id: int | None = None) -> Subscription:
    """Withdraw a cancellation scheduled for the period end."""
    with transaction.atomic():
        locked = rules.locked_subscription(subscription.pk)
        if not locked.cancel_at_period_end or locked.status not in LIVE_SUBSCRIPTION_STATUSES:
            raise Conflict("No cancellation is scheduled.", code="no_scheduled_cancellation")
        before = rules.snapshot(locked)
        locked.cancel_at_period_end = False
        locked.cancellation_reason = ""
        _save(locked)
        rules.history(
            locked,
            Kind.CHANGE_UNSCHEDULED,
            effective_on=clock.today(),
            before=before,
            actor_id=actor_id,
            note="scheduled cancellation withdrawn",
        )
        _audit(locked, "cancel_unscheduled", before, actor_id)
        rules.publish_changed(locked, "cancel_unscheduled", before=before, effective_on=clock.today())
    return locked


def subscription_reactivate(*, subscription: Subscription, actor_id: int | None = None) -> Subscription:
    """Bring a cancelled subscription back on its plan version: a new period starts today."""
    with transaction.atomic():
        locked = rules.locked_subscription(subscription.pk)
        rules.require_status(locked, {SubscriptionStatus.CANCELLED}, "reactivated")
        if not locked.plan.is_active:
            raise Conflict(f"The plan {locked.plan.code} is no longer sold.", code="plan_inactive")
        today = clock.today()
        before = rules.snapshot(locked)
        locked.status = SubscriptionStatus.ACTIVE
        locked.cancelled_at = None
        locked.ended_on = None
        locked.cancellation_reason = ""
        locked.trial_end = None if locked.trial_end and locked.trial_end > today else locked.trial_end
        if locked.term_end is not None and locked.term_end <= today:
            locked.term_end = None
        _restart_period(locked, today)
        _save(locked)
        rules.history(locked, Kind.REACTIVATED, effective_on=today, before=before, actor_id=actor_id)
        _audit(locked, "reactivated", before, actor_id)
        rules.publish_changed(locked, Kind.REACTIVATED, before=before, effective_on=today)
    return locked


# coupons ---------------------------------------------------------------------------------------------


def subscription_apply_coupon(
    *, subscription: Subscription, coupon_code: str, actor_id: int | None = None
) -> Subscription:
    """Apply a coupon from the next invoice on. A coupon still running must end first."""
    with transaction.atomic():
        locked = rules.locked_subscription(subscription.pk)
        rules.require_status(
            locked, set(LIVE_SUBSCRIPTION_STATUSES) | {SubscriptionStatus.PAUSED}, "discounted"
        )
        running = locked.coupon_id is not None and (
            locked.coupon_periods_remaining is None or locked.coupon_periods_remaining > 0
        )
        if running:
            raise Conflict(
                f"The coupon {locked.coupon} still applies to this subscription.",
                code="coupon_already_applied",
            )
        coupon = rules.redeemable_coupon(
            coupon_code, currency=locked.plan_version.currency, today=clock.today()
        )
        before = rules.snapshot(locked)
        rules.redeem(locked, coupon)
        _save(locked)
        rules.history(
            locked,
            Kind.COUPON_APPLIED,
            effective_on=clock.today(),
            before=before,
            actor_id=actor_id,
            note=coupon.code,
        )
        _audit(locked, "coupon_applied", before, actor_id)
        rules.publish_changed(locked, Kind.COUPON_APPLIED, before=before, effective_on=clock.today())
    return locked
