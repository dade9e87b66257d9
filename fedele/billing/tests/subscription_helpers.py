"""Test helpers for catalog and subscriptions: plans in a known state, billed periods, counts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.utils import timezone

from fedele.billing.models import (
    BillingAccount,
    Coupon,
    OneOffCharge,
    PlanCharge,
    PlanVersion,
    Subscription,
    SubscriptionChange,
)
from fedele.billing.tests.factories import PlanFactory, PlanVersionFactory, flat_plan, subscription
from fedele.shared.models import AuditLog, OutboxEvent


def seat_plan(unit: str = "10.00", *, currency: str = "EUR", code: str | None = None) -> PlanVersion:
    """A published monthly plan priced per seat (per-unit recurring charge)."""
    plan = PlanFactory(**({"code": code} if code else {}))
    version = PlanVersionFactory(plan=plan, currency=currency)
    PlanCharge.objects.create(
        plan_version=version,
        code="seat",
        name="Seat",
        kind="recurring",
        model="per_unit",
        unit_amount=Decimal(unit),
    )
    return version


def sibling_version(version: PlanVersion, monthly: str) -> PlanVersion:
    """Another published plan with the same period and currency, at ``monthly`` per period."""
    return flat_plan(monthly, period=version.plan.billing_period, currency=version.currency)


def billed_subscription(
    version: PlanVersion,
    *,
    start: date = date(2026, 1, 1),
    quantity: int | Decimal = 1,
    account: BillingAccount | None = None,
) -> Subscription:
    """An active subscription whose current period has been invoiced (next_billing_on = period end)."""
    sub = subscription(version, start=start, quantity=quantity, account=account)
    sub.next_billing_on = sub.current_period_end
    sub.save(update_fields=["next_billing_on"])
    return sub


def coupon(code: str = "WELCOME", **fields: object) -> Coupon:
    values: dict[str, object] = {"name": code, "percent_off": Decimal(20), "duration": "once"}
    values.update(fields)
    return Coupon.objects.create(code=code, created_at=timezone.now(), **values)


def side_effects() -> dict[str, int]:
    """Counts of everything a subscription action writes, to prove a refused action wrote nothing."""
    return {
        "subscriptions": Subscription.objects.count(),
        "changes": SubscriptionChange.objects.count(),
        "one_off_charges": OneOffCharge.objects.count(),
        "audit": AuditLog.objects.count(),
        "outbox": OutboxEvent.objects.count(),
    }


def proration_rows(sub: Subscription) -> list[tuple[str, Decimal]]:
    return [
        (row.kind, row.unit_amount) for row in OneOffCharge.objects.filter(subscription=sub).order_by("id")
    ]
