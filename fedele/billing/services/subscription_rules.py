"""Helpers of the subscription services: locking, pricing a period, proration, history rows, coupons."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from celery import shared_task

from fedele.billing.contracts import LIVE_SUBSCRIPTION_STATUSES, SubscriptionStatus
from fedele.billing.events import SubscriptionChanged
from fedele.billing.models import Coupon, OneOffCharge, PlanVersion, Subscription, SubscriptionChange
from fedele.billing.pricing import prorate, proration_for_change
from fedele.billing.snapshots import quantity_text, recurring_amount, subscription_snapshot
from fedele.shared import clock, events
from fedele.shared.errors import Conflict, NotFound, ValidationFailed
from fedele.shared.money import Money

MAX_QUANTITY = Decimal("1000000000")
QUANTUM = Decimal("0.000001")


def locked_subscription(subscription_id: int) -> Subscription:
    """The subscription under its row lock, with what every action reads next to it."""
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan", "plan_version", "account", "account__customer", "coupon")
        .get(pk=subscription_id)
    )


def validated_quantity(value: Any) -> Decimal:
    if isinstance(value, (bool, float)) or value is None:
        raise ValidationFailed(
            "The quantity must be a number.",
            code="invalid_quantity",
            fields={"quantity": "must be a number."},
        )
    try:
        quantity = Decimal(str(value))
    except ArithmeticError as error:
        raise ValidationFailed(
            f"'{value}' is not a quantity.", code="invalid_quantity", fields={"quantity": "must be a number."}
        ) from error
    if not quantity.is_finite() or quantity < 0:
        raise ValidationFailed(
            f"The quantity must be zero or more (got {value}).",
            code="invalid_quantity",
            fields={"quantity": "must be zero or more."},
        )
    if quantity > MAX_QUANTITY or quantity != quantity.quantize(QUANTUM):
        raise ValidationFailed(
            "The quantity is too large or has more than six decimals.",
            code="invalid_quantity",
            fields={"quantity": "at most 1,000,000,000 with six decimals."},
        )
    # Stored with six decimals: keep the same form in memory so snapshots read alike before and after.
    return (quantity.copy_abs() if quantity.is_zero() else quantity).quantize(QUANTUM)


def plain(quantity: Decimal) -> str:
    """'5' for 5.000000, '2.5' for 2.500000: how a quantity reads in text and in ``pending_change``."""
    text = f"{quantity.normalize():f}"
    return text


def period_price(version: PlanVersion, quantity: Decimal) -> Money:
    """The list price of one period of the version's recurring charges at ``quantity``."""
    return Money(recurring_amount(version.charges.all(), quantity), version.currency).rounded()


def ensure_sellable(version: PlanVersion, field: str = "plan_version") -> None:
    if version.published_at is None:
        raise ValidationFailed(
            f"{version} is a draft: publish it before selling it.",
            code="version_not_published",
            fields={field: "is not published."},
        )
    if not version.plan.is_active:
        raise ValidationFailed(
            f"The plan {version.plan.code} is no longer sold.",
            code="plan_inactive",
            fields={field: "belongs to an inactive plan."},
        )


def is_period_billed(subscription: Subscription) -> bool:
    """Whether the invoice for the current period has been issued (billing is in advance).

    At creation ``next_billing_on`` is the period start (the first invoice is still to come); after
    the billing run it is the period end. A change before the first invoice needs no proration:
    that invoice bills the new price for the whole period.
    """
    return (
        subscription.status in {SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE}
        and subscription.next_billing_on is not None
        and subscription.next_billing_on > subscription.current_period_start
    )


@dataclass(frozen=True, slots=True)
class ChangePreview:
    """What a plan or quantity change costs. ``net = charge - credit`` (negative: a credit)."""

    timing: str
    effective_on: date
    currency: str
    credit: Money
    charge: Money
    net: Money
    days_remaining: int
    days_in_period: int
    current_recurring: Money
    new_recurring: Money
    plan_version_id: int
    quantity: Decimal


def change_preview(
    subscription: Subscription,
    new_version: PlanVersion,
    new_quantity: Decimal,
    timing: str,
    today: date,
) -> ChangePreview:
    currency = subscription.plan_version.currency
    current = period_price(subscription.plan_version, subscription.quantity)
    new = period_price(new_version, new_quantity)
    days_in_period = (subscription.current_period_end - subscription.current_period_start).days
    zero = Money.zero(currency)
    start, end = subscription.current_period_start, subscription.current_period_end
    if timing == "now" and is_period_billed(subscription) and start <= today <= end:
        result = proration_for_change(current, new, start, end, today)
        return ChangePreview(
            timing=timing,
            effective_on=today,
            currency=currency,
            credit=result.credit,
            charge=result.charge,
            net=result.net,
            days_remaining=result.days_remaining,
            days_in_period=result.days_in_period,
            current_recurring=current,
            new_recurring=new,
            plan_version_id=new_version.pk,
            quantity=new_quantity,
        )
    effective_on = today if timing == "now" else end
    return ChangePreview(
        timing=timing,
        effective_on=effective_on,
        currency=currency,
        credit=zero,
        charge=zero,
        net=zero,
        days_remaining=0,
        days_in_period=days_in_period,
        current_recurring=current,
        new_recurring=new,
        plan_version_id=new_version.pk,
        quantity=new_quantity,
    )


def unused_credit(subscription: Subscription, today: date) -> tuple[Money, int]:
    """The unused part of the billed current period from ``today`` (included), and its days."""
    currency = subscription.plan_version.currency
    start, end = subscription.current_period_start, subscription.current_period_end
    if not is_period_billed(subscription) or not start <= today < end:
        return Money.zero(currency), 0
    price = period_price(subscription.plan_version, subscription.quantity)
    return prorate(price, period_start=start, period_end=end, change_date=today), (end - today).days


def snapshot(subscription: Subscription) -> dict[str, Any]:
    return subscription_snapshot(subscription, list(subscription.plan_version.charges.all()))


def history(
    subscription: Subscription,
    kind: str,
    *,
    effective_on: date,
    before: dict[str, Any] | None,
    actor_id: int | None,
    credit: Money | None = None,
    charge: Money | None = None,
    note: str = "",
) -> SubscriptionChange:
    return SubscriptionChange.objects.create(
        subscription=subscription,
        kind=kind,
        effective_on=effective_on,
        before=before,
        after=snapshot(subscription),
        proration_credit=credit.amount if credit is not None else Decimal(0),
        proration_charge=charge.amount if charge is not None else Decimal(0),
        actor_id=actor_id,
        note=note[:300],
        occurred_at=clock.now(),
    )


def proration_charges(
    subscription: Subscription,
    change: SubscriptionChange,
    *,
    credit: Money,
    charge: Money,
    credit_text: str,
    charge_text: str,
) -> list[OneOffCharge]:
    """The credit (negative) and the charge as one-off rows the next invoice bills; none when zero."""
    product = subscription.plan.product
    rows = []
    for suffix, kind, amount, text in (
        ("credit", "proration_credit", -credit.amount, credit_text),
        ("charge", "proration_charge", charge.amount, charge_text),
    ):
        if amount == 0:
            continue
        rows.append(
            OneOffCharge.objects.create(
                account=subscription.account,
                subscription=subscription,
                description=text[:500],
                quantity=Decimal(1),
                unit_amount=amount,
                currency=subscription.plan_version.currency,
                kind=kind,
                product=product,
                vat_rate=product.vat_rate,
                vat_nature=product.vat_nature,
                idempotency_key=f"proration:{change.pk}:{suffix}",
                source="billing.subscriptions",
                created_at=clock.now(),
            )
        )
    return rows


def publish_changed(
    subscription: Subscription,
    change: str,
    *,
    before: dict[str, Any] | None,
    effective_on: date,
) -> None:
    before = before or {}
    events.publish(
        SubscriptionChanged(
            subscription_id=str(subscription.public_id),
            number=subscription.number,
            customer_id=str(subscription.account.customer.public_id),
            change=change,
            old_plan_code=str(before.get("plan_code", subscription.plan.code)),
            new_plan_code=subscription.plan.code,
            old_quantity=str(before.get("quantity", quantity_text(subscription.quantity))),
            new_quantity=quantity_text(subscription.quantity),
            effective_on=effective_on.isoformat(),
        ),
        aggregate_type="subscription",
        aggregate_id=str(subscription.public_id),
    )


def require_status(subscription: Subscription, allowed: Collection[str], action: str) -> None:
    if subscription.status not in allowed:
        raise Conflict(
            f"Subscription {subscription.number} is {subscription.status}: it cannot be {action}.",
            code="invalid_subscription_state",
        )


def require_live(subscription: Subscription, action: str) -> None:
    require_status(subscription, LIVE_SUBSCRIPTION_STATUSES, action)


def redeemable_coupon(code: str, *, currency: str, today: date, field: str = "coupon_code") -> Coupon:
    """The coupon under its row lock, checked for redemption (active, in date, limit, currency)."""
    coupon = Coupon.objects.select_for_update().filter(code=code.strip().upper()).first()
    if coupon is None:
        raise NotFound(f"No coupon '{code}'.", code="coupon_not_found")
    problem = ""
    if not coupon.is_active:
        problem = "is no longer active."
    elif coupon.valid_until is not None and coupon.valid_until < today:
        problem = f"expired on {coupon.valid_until.isoformat()}."
    elif coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        problem = "has reached its maximum number of redemptions."
    elif coupon.amount_off is not None and coupon.currency != currency:
        problem = f"is in {coupon.currency}, the subscription in {currency}."
    if problem:
        raise ValidationFailed(
            f"The coupon {coupon.code} {problem}", code="coupon_not_redeemable", fields={field: problem}
        )
    return coupon


def redeem(subscription: Subscription, coupon: Coupon) -> None:
    coupon.times_redeemed += 1
    coupon.save(update_fields=["times_redeemed"])
    subscription.coupon = coupon
    subscription.coupon_periods_remaining = {
        Coupon.Duration.ONCE: 1,
        Coupon.Duration.REPEATING: coupon.duration_periods,
        Coupon.Duration.FOREVER: None,
    }[Coupon.Duration(coupon.duration)]


def today() -> date:
    return clock.today()


# periodic jobs: renewal reminders, scheduled pauses and resumes ---------------------------------------

REMINDER_ACTION = "billing.subscription.renewal_reminder"


def _billing_staff_ids() -> list[int]:
    """Active users who manage billing (through a role group, directly, or as superusers)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    permission = Permission.objects.filter(
        content_type__app_label="billing", codename="manage_billing"
    ).first()
    condition = Q(is_superuser=True)
    if permission is not None:
        condition |= Q(groups__permissions=permission) | Q(user_permissions=permission)
    users = get_user_model().objects.filter(condition, is_active=True).distinct().order_by("pk")
    return list(users.values_list("pk", flat=True))


def renewal_reminders_send(*, today: date | None = None) -> int:
    """Remind billing staff (notification) and the customer's timeline of contracts whose term ends
    within their ``renewal_reminder_days``. Once per subscription and term end, however often it runs."""
    from django.db import transaction
    from django.utils.translation import gettext as _

    from fedele.customers.facade import TimelineAppend
    from fedele.shared import audit
    from fedele.shared.models import AuditLog
    from fedele.shared.notifications import notification_create

    day = today or clock.today()
    candidates = (
        Subscription.objects.filter(
            status__in=LIVE_SUBSCRIPTION_STATUSES, term_end__isnull=False, renewal_reminder_days__gt=0
        )
        .filter(term_end__gt=day)
        .values_list("pk", "term_end", "renewal_reminder_days")
    )
    due = [pk for pk, term_end, days in candidates if term_end is not None and (term_end - day).days <= days]
    staff = _billing_staff_ids() if due else []
    sent = 0
    for subscription_id in due:
        with transaction.atomic():
            subscription = locked_subscription(subscription_id)
            assert subscription.term_end is not None
            term_end = subscription.term_end.isoformat()
            already = AuditLog.objects.filter(
                action=REMINDER_ACTION, object_id=str(subscription.public_id), after__term_end=term_end
            ).exists()
            if already:
                continue
            customer = subscription.account.customer
            renews = subscription.auto_renew
            title = (
                _("Contract %(number)s renews on %(date)s")
                if renews
                else _("Contract %(number)s ends on %(date)s")
            ) % {"number": subscription.number, "date": term_end}
            body = f"{customer.display_name} · {subscription.plan.name}"
            link = f"/billing/subscriptions/{subscription.public_id}/"
            for user_id in staff:
                notification_create(recipient_id=user_id, title=title, body=body, link=link, level="warning")
            events.publish(
                TimelineAppend(
                    customer_public_id=str(customer.public_id),
                    module="billing",
                    kind="renewal_reminder",
                    title=title,
                    occurred_at=clock.now(),
                    summary=subscription.plan.name,
                    link=link,
                    data={"subscription": subscription.number, "term_end": term_end, "auto_renew": renews},
                ),
                aggregate_type="subscription",
                aggregate_id=str(subscription.public_id),
            )
            audit.record(
                action=REMINDER_ACTION,
                object_type="subscription",
                object_id=str(subscription.public_id),
                after={"term_end": term_end, "recipients": len(staff)},
            )
            sent += 1
    return sent


def scheduled_pauses_and_resumes_apply(*, today: date | None = None) -> tuple[int, int]:
    """Start the pauses scheduled for a period end that has come (the period was not renewed) and
    resume paused subscriptions whose ``resume_on`` has come. Returns (paused, resumed)."""
    from django.db import transaction

    from fedele.billing.services.subscriptions import pause_locked, resume_locked

    day = today or clock.today()
    to_pause = Subscription.objects.filter(
        status__in=(SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE),
        paused_on__isnull=False,
        paused_on__lte=day,
        current_period_end__lte=day,
    ).values_list("pk", flat=True)
    to_resume = Subscription.objects.filter(
        status=SubscriptionStatus.PAUSED, resume_on__isnull=False, resume_on__lte=day
    ).values_list("pk", flat=True)
    paused = resumed = 0
    for subscription_id in list(to_pause):
        with transaction.atomic():
            subscription = locked_subscription(subscription_id)
            if subscription.status in LIVE_SUBSCRIPTION_STATUSES and subscription.paused_on:
                pause_locked(
                    subscription, subscription.paused_on, subscription.resume_on, snapshot(subscription), None
                )
                paused += 1
    for subscription_id in list(to_resume):
        with transaction.atomic():
            subscription = locked_subscription(subscription_id)
            if subscription.status == SubscriptionStatus.PAUSED and subscription.resume_on:
                resume_locked(subscription, day, snapshot(subscription), None)
                resumed += 1
    return paused, resumed


def subscription_schedules_run() -> dict[str, int]:
    """The periodic job's body (see the Celery task below)."""
    reminders = renewal_reminders_send()
    paused, resumed = scheduled_pauses_and_resumes_apply()
    return {"reminders": reminders, "paused": paused, "resumed": resumed}


@shared_task(name="billing.subscription_schedules")
def subscription_schedules_task() -> dict[str, int]:
    return subscription_schedules_run()
