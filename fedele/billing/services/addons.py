"""Add-ons on a subscription: extra recurring items (static IP, extra seats pack, premium support)
sold as plans flagged ``is_addon``, billed with the subscription in advance on every invoice.

Adding one in the middle of a period that was already invoiced charges the days left (day-based,
like a plan change); removing one credits the unused days. Before the period's first invoice
nothing is prorated: that invoice bills the add-on for the whole period.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction

from fedele.billing.models import (
    OneOffCharge,
    PlanVersion,
    Subscription,
    SubscriptionAddOn,
    SubscriptionChange,
)
from fedele.billing.pricing import prorate
from fedele.billing.services import subscription_rules as rules
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, ValidationFailed
from fedele.shared.money import Money


def _addon_snapshot(addon: SubscriptionAddOn) -> dict[str, Any]:
    return {
        "plan_code": addon.plan_version.plan.code,
        "plan_version_id": addon.plan_version_id,
        "quantity": rules.plain(addon.quantity),
        "added_on": addon.added_on,
        "removed_on": addon.removed_on,
    }


def _validate(subscription: Subscription, version: PlanVersion, quantity: Decimal) -> None:
    errors: dict[str, str] = {}
    if not version.plan.is_addon:
        errors["plan_version"] = f"{version.plan.code} is not an add-on plan."
    elif version.currency != subscription.plan_version.currency:
        errors["plan_version"] = f"must be priced in {subscription.plan_version.currency}."
    elif version.plan.billing_period != subscription.billing_period:
        errors["plan_version"] = f"must be billed per {subscription.billing_period}, like the subscription."
    if quantity <= 0:
        errors["quantity"] = "must be more than zero."
    if errors:
        raise ValidationFailed("The add-on cannot be added.", code="invalid_addon", fields=errors)
    rules.ensure_sellable(version)


def _proration(
    subscription: Subscription,
    version: PlanVersion,
    quantity: Decimal,
    change: SubscriptionChange,
    *,
    sign: int,
) -> Money:
    """Charge (sign 1) or credit (sign -1) for the days from today to the end of a billed period."""
    currency = version.currency
    today = clock.today()
    start, end = subscription.current_period_start, subscription.current_period_end
    if not rules.is_period_billed(subscription) or not start <= today < end or today == start:
        return Money.zero(currency)
    amount = prorate(
        rules.period_price(version, quantity), period_start=start, period_end=end, change_date=today
    )
    if amount.is_zero():
        return amount
    product = version.plan.product
    what = "Add-on" if sign > 0 else "Unused add-on"
    description = (
        f"{what} {version.plan.name} × {rules.plain(quantity)} ({today.isoformat()} – {end.isoformat()})"
    )
    OneOffCharge.objects.create(
        account=subscription.account,
        subscription=subscription,
        description=description[:500],
        quantity=Decimal(1),
        unit_amount=amount.amount * sign,
        currency=currency,
        kind="proration_charge" if sign > 0 else "proration_credit",
        product=product,
        vat_rate=product.vat_rate,
        vat_nature=product.vat_nature,
        idempotency_key=f"proration:{change.pk}:{'charge' if sign > 0 else 'credit'}",
        source="billing.addons",
        created_at=clock.now(),
    )
    return amount


def subscription_addon_add(
    *,
    subscription: Subscription,
    plan_version: PlanVersion,
    quantity: Decimal | int | str = Decimal(1),
    actor_id: int | None = None,
) -> SubscriptionAddOn:
    amount = rules.validated_quantity(quantity)
    with transaction.atomic():
        locked = rules.locked_subscription(subscription.pk)
        rules.require_live(locked, "given an add-on")
        _validate(locked, plan_version, amount)
        if SubscriptionAddOn.objects.filter(
            subscription=locked, plan_version__plan=plan_version.plan, removed_on__isnull=True
        ).exists():
            raise Conflict(
                f"{locked.number} already has the add-on {plan_version.plan.code}: remove it first.",
                code="addon_exists",
            )
        before = rules.snapshot(locked)
        addon = SubscriptionAddOn.objects.create(
            subscription=locked, plan_version=plan_version, quantity=amount, added_on=clock.today()
        )
        change = rules.history(
            locked,
            SubscriptionChange.Kind.ADDON_ADDED,
            effective_on=addon.added_on,
            before=before,
            actor_id=actor_id,
            note=f"{plan_version.plan.code} × {rules.plain(amount)}",
        )
        charge = _proration(locked, plan_version, amount, change, sign=1)
        if not charge.is_zero():
            change.proration_charge = charge.amount
            change.save(update_fields=["proration_charge"])
        audit.record(
            action="billing.subscription.addon_added",
            object_type="subscription",
            object_id=str(locked.public_id),
            after=_addon_snapshot(addon),
            actor_id=actor_id,
        )
        rules.publish_changed(locked, "addon_added", before=before, effective_on=addon.added_on)
    return addon


def subscription_addon_remove(*, addon: SubscriptionAddOn, actor_id: int | None = None) -> SubscriptionAddOn:
    with transaction.atomic():
        locked = rules.locked_subscription(addon.subscription_id)
        current = (
            SubscriptionAddOn.objects.select_for_update()
            .select_related("plan_version__plan")
            .get(pk=addon.pk)
        )
        if current.removed_on is not None:
            raise Conflict("The add-on was removed already.", code="addon_removed")
        before = rules.snapshot(locked)
        today = clock.today()
        current.removed_on = today
        current.save(update_fields=["removed_on"])
        change = rules.history(
            locked,
            SubscriptionChange.Kind.ADDON_REMOVED,
            effective_on=today,
            before=before,
            actor_id=actor_id,
            note=current.plan_version.plan.code,
        )
        if locked.status in ("active", "past_due"):
            credit = _proration(locked, current.plan_version, current.quantity, change, sign=-1)
            if not credit.is_zero():
                change.proration_credit = credit.amount
                change.save(update_fields=["proration_credit"])
        audit.record(
            action="billing.subscription.addon_removed",
            object_type="subscription",
            object_id=str(locked.public_id),
            before=_addon_snapshot(addon),
            after=_addon_snapshot(current),
            actor_id=actor_id,
        )
        rules.publish_changed(locked, "addon_removed", before=before, effective_on=today)
    return current
