"""What a subscription is worth per month, and the state snapshot kept in its change history.

Every SubscriptionChange row stores ``before``/``after`` snapshots with the same keys
(:data:`SNAPSHOT_KEYS`), so revenue analytics can replay MRR movements from the history alone:

- ``status``, ``plan_code``, ``plan_version_id``, ``quantity`` (str), ``currency``,
- ``mrr``: monthly recurring revenue as a str Decimal rounded to the cent (0 when not billing:
  trialing, paused or cancelled).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from fedele.billing.contracts import BillingPeriod, ChargeKind, SubscriptionStatus
from fedele.billing.models import Coupon, PlanCharge, Subscription
from fedele.billing.pricing import charge_amount
from fedele.shared.money import Money

SNAPSHOT_KEYS = ("status", "plan_code", "plan_version_id", "quantity", "currency", "mrr")
BILLING_STATUSES = frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE})


def recurring_amount(charges: Iterable[PlanCharge], quantity: Decimal) -> Decimal:
    """The recurring charges of one period at ``quantity`` (each charge priced and rounded on its own)."""
    total = Decimal(0)
    for charge in charges:
        if charge.kind == ChargeKind.RECURRING:
            total += charge_amount(charge.as_charge(), quantity).total.amount
    return total


def discounted(amount: Decimal, coupon: Coupon | None, currency: str) -> Decimal:
    """``amount`` after a coupon (percent, or a fixed amount never below zero), rounded to the cent."""
    if coupon is None:
        return amount
    if coupon.percent_off is not None:
        reduced = amount - amount * coupon.percent_off / Decimal(100)
    else:
        reduced = max(Decimal(0), amount - (coupon.amount_off or Decimal(0)))
    return Money(reduced, currency).rounded().amount


AddOnPrices = Iterable[tuple[Iterable[PlanCharge], Decimal]]
"""(recurring charges of the add-on's plan version, quantity) of each active add-on."""


def active_addons(subscription: Subscription) -> list[tuple[Iterable[PlanCharge], Decimal]]:
    """From ``subscription.addons`` (prefetch ``addons__plan_version__charges`` when listing many)."""
    return [
        (addon.plan_version.charges.all(), addon.quantity)
        for addon in subscription.addons.all()
        if addon.removed_on is None
    ]


def monthly_recurring_revenue(
    subscription: Subscription, charges: Iterable[PlanCharge] | None = None, addons: AddOnPrices | None = None
) -> Decimal:
    """Normalised to one month: a yearly 120.00 plan is 10.00 MRR; active add-ons count. Zero when the
    subscription is not billing. A coupon counts while it is still applied (periods remaining, or
    forever); as on the invoice, it discounts every recurring charge, add-ons included."""
    if subscription.status not in BILLING_STATUSES:
        return Decimal(0)
    rows = list(charges) if charges is not None else list(subscription.plan_version.charges.all())
    per_period = recurring_amount(rows, subscription.quantity)
    for addon_charges, addon_quantity in active_addons(subscription) if addons is None else addons:
        per_period += recurring_amount(addon_charges, addon_quantity)
    coupon = subscription.coupon if subscription.coupon_id else None
    if (
        coupon is not None
        and coupon.duration != Coupon.Duration.FOREVER
        and not subscription.coupon_periods_remaining
    ):
        coupon = None
    per_period = discounted(per_period, coupon, subscription.plan_version.currency)
    months = BillingPeriod(subscription.billing_period).months
    return Money(per_period / months, subscription.plan_version.currency).rounded().amount


def quantity_text(quantity: Decimal) -> str:
    """5.000000 → "5", 2.500000 → "2.5": quantities as people write them (never in exponent form)."""
    text = format(quantity.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def subscription_snapshot(
    subscription: Subscription, charges: Iterable[PlanCharge] | None = None, addons: AddOnPrices | None = None
) -> dict[str, Any]:
    return {
        "status": subscription.status,
        "plan_code": subscription.plan.code,
        "plan_version_id": subscription.plan_version_id,
        "quantity": quantity_text(subscription.quantity),
        "currency": subscription.plan_version.currency,
        "mrr": str(monthly_recurring_revenue(subscription, charges, addons)),
    }
