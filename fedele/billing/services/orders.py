"""Orders: created from an accepted quote or through the API, then fulfilled.

Fulfilment, in one transaction: a plan line starts a subscription through H1's
``subscription_create`` (a negotiated price below the price book becomes a single-use "forever"
amount-off coupon of exactly the difference per period); a setup-fee line with a discount becomes a
negative one-off charge of the discount (the subscription bills the full setup fee); a product line
becomes a one-off charge for the next invoice. A product (or the plan's product) with a
``provisioning_kind`` gets an Entitlement and its provisioning steps, which run after commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from fedele.billing.models import (
    BillingAccount,
    Entitlement,
    OneOffCharge,
    Order,
    OrderLine,
    PlanVersion,
    Product,
    Quote,
)
from fedele.billing.services import provisioning
from fedele.billing.services.quote_pricing import LineInput, PricedLine, plan_list_amount, price_lines
from fedele.shared import audit, clock, sequences
from fedele.shared.errors import Conflict, ValidationFailed
from fedele.shared.money import Money


@dataclass(frozen=True, slots=True)
class OrderResult:
    order: Order
    created: bool


def _snapshot(order: Order) -> dict[str, Any]:
    return {"number": order.number, "status": order.status, "total": order.total, "currency": order.currency}


def order_create(
    *,
    account: BillingAccount,
    lines: Sequence[LineInput],
    external_reference: str = "",
    start_on: date | None = None,
    discount_percent: Decimal = Decimal(0),
    quote: Quote | None = None,
    fulfil: bool = True,
    actor_id: int | None = None,
) -> OrderResult:
    """A new order (ORD-<year>-NNNNNN). The same non-empty ``external_reference`` for the same account
    returns the first order (``created`` False) instead of creating a second one; with different
    lines or start date it is refused (Conflict ``external_reference_reused``)."""
    reference = (external_reference or "").strip()
    if len(reference) > 100:
        raise ValidationFailed(
            "The external reference is too long.", fields={"external_reference": ["at most 100 characters."]}
        )
    priced = price_lines(lines, currency=account.currency, discount_percent=discount_percent)
    if reference:
        existing = Order.objects.filter(account=account, external_reference=reference).first()
        if existing is not None:
            return OrderResult(_same_order(existing, priced, start_on), False)
    try:
        with transaction.atomic():
            order = _insert(account, priced, reference, start_on, quote, actor_id)
    except IntegrityError:
        # A concurrent request with the same reference won the race: answer with its order.
        existing = Order.objects.filter(account=account, external_reference=reference).first()
        if reference and existing is not None:
            return OrderResult(_same_order(existing, priced, start_on), False)
        raise
    if fulfil:
        order = order_fulfil(order=order, actor_id=actor_id)
    return OrderResult(order, True)


def _signature(
    kind: str,
    plan_version_id: int | None,
    product_id: int | None,
    quantity: Decimal,
    unit_amount: Decimal,
    discount_percent: Decimal,
    amount: Decimal,
) -> tuple[object, ...]:
    # Decimals compare by value, so 2 and 2.000000 (as stored) are the same line.
    return (kind, plan_version_id, product_id, quantity, unit_amount, discount_percent, amount)


def _same_order(existing: Order, priced: list[PricedLine], start_on: date | None) -> Order:
    """A retry must repeat the first request: the same reference with other lines (or another
    start date) is a different order, refused rather than silently answered with the first one."""
    stored = [
        _signature(
            line.kind,
            line.plan_version_id,
            line.product_id,
            line.quantity,
            line.unit_amount,
            line.discount_percent,
            line.amount,
        )
        for line in existing.lines.order_by("position", "id")
    ]
    requested = [
        _signature(
            line.kind,
            line.plan_version.pk if line.plan_version else None,
            line.product.pk if line.product else None,
            line.quantity,
            line.unit_amount,
            line.discount_percent,
            line.net_amount,
        )
        for line in priced
    ]
    if stored != requested or existing.start_on != start_on:
        raise Conflict(
            f"The external reference {existing.external_reference} was already used for order "
            f"{existing.number} with different lines.",
            code="external_reference_reused",
            fields={"external_reference": ["already used for a different order."]},
        )
    return existing


def _insert(
    account: BillingAccount,
    priced: list[PricedLine],
    reference: str,
    start_on: date | None,
    quote: Quote | None,
    actor_id: int | None,
) -> Order:
    now = clock.now()
    order = Order.objects.create(
        number=sequences.next_number("ORD", year=now.year),
        account=account,
        quote=quote,
        currency=account.currency,
        external_reference=reference,
        start_on=start_on,
        total=sum((line.net_amount for line in priced), Decimal(0)),
        created_by_id=actor_id,
        created_at=now,
        updated_at=now,
    )
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            position=position,
            kind=line.kind,
            plan_version=line.plan_version,
            product=line.product,
            description=line.description,
            quantity=line.quantity,
            list_unit_amount=line.list_unit_amount,
            unit_amount=line.unit_amount,
            discount_percent=line.discount_percent,
            recurring=line.recurring,
            amount=line.net_amount,
        )
        for position, line in enumerate(priced)
    )
    audit.record(
        action="billing.order.created",
        object_type="order",
        object_id=str(order.public_id),
        after={**_snapshot(order), "lines": len(priced), "quote": quote.number if quote else ""},
        actor_id=actor_id,
    )
    return order


def _list_amount(line: OrderLine) -> Decimal:
    """What the price book charges for the line (per period for plans)."""
    if line.kind == "plan" and line.plan_version is not None:
        return plan_list_amount(line.plan_version, line.quantity)
    if line.kind == "setup_fee" and line.plan_version is not None:
        return line.plan_version.setup_fee
    return line.amount


def _negotiated_coupon(order: Order, line: OrderLine, actor_id: int | None) -> str:
    from fedele.billing.services.catalog import coupon_create

    difference = _list_amount(line) - line.amount
    if difference <= 0:
        return ""
    coupon = coupon_create(
        code=f"{order.number}-L{line.position + 1}",
        name=f"Negotiated price, order {order.number}",
        amount_off=difference,
        currency=order.currency,
        duration="forever",
        max_redemptions=1,
        actor_id=actor_id,
    )
    return coupon.code


def _one_off(order: Order, line: OrderLine, amount: Decimal, kind: str, suffix: str) -> OneOffCharge:
    product = line.product or (line.plan_version.plan.product if line.plan_version else None)
    per_unit = (amount / line.quantity).quantize(Decimal("0.000001")) if line.quantity else amount
    exact = Money(per_unit * line.quantity, order.currency).rounded().amount == amount
    return OneOffCharge.objects.create(
        account_id=order.account_id,
        description=f"{line.description} ({order.number})"[:500],
        quantity=line.quantity if exact else Decimal(1),
        unit_amount=per_unit if exact else amount,
        currency=order.currency,
        kind=kind,
        product=product,
        vat_rate=product.vat_rate if product else Decimal("22"),
        vat_nature=product.vat_nature if product else "",
        idempotency_key=f"order:{order.pk}:line:{line.pk}:{suffix}",
        source="billing.orders",
        created_at=clock.now(),
    )


def _entitlement(order: Order, line: OrderLine, product: Product, subscription_id: int | None) -> Entitlement:
    now = clock.now()
    entitlement = Entitlement.objects.create(
        account_id=order.account_id,
        subscription_id=subscription_id,
        product=product,
        kind=product.provisioning_kind,
        attributes={"order": order.number, "quantity": str(line.quantity)},
        created_at=now,
        updated_at=now,
    )
    provisioning.steps_create(entitlement=entitlement, order_line=line)
    return entitlement


def _fulfil_line(order: Order, line: OrderLine, actor_id: int | None) -> Entitlement | None:
    from fedele.billing.services.subscriptions import subscription_create

    product: Product | None = line.product
    subscription_id = None
    if line.kind == "plan":
        assert line.plan_version is not None
        subscription = subscription_create(
            account=order.account,
            plan_version=line.plan_version,
            quantity=line.quantity,
            start_on=order.start_on,
            coupon_code=_negotiated_coupon(order, line, actor_id),
            external_reference=order.number,
            actor_id=actor_id,
        )
        line.subscription = subscription
        subscription_id = subscription.pk
        product = line.plan_version.plan.product
    elif line.kind == "setup_fee":
        discount = _list_amount(line) - line.amount
        if discount > 0:
            line.one_off_charge = _one_off(order, line, -discount, "discount", "setup-discount")
        product = None
    elif line.amount != 0:
        line.one_off_charge = _one_off(order, line, line.amount, "one_time", "charge")
    entitlement = None
    if product is not None and product.provisioning_kind:
        entitlement = _entitlement(order, line, product, subscription_id)
        line.entitlement = entitlement
        line.status = OrderLine.Status.PROVISIONING
    else:
        line.status = OrderLine.Status.COMPLETED
    line.save()
    return entitlement


def order_fulfil(*, order: Order, actor_id: int | None = None) -> Order:
    """Start subscriptions, record one-off charges and create entitlements; all or nothing. On
    failure the order is marked failed with the reason and nothing else is written."""
    entitlements: list[Entitlement] = []
    try:
        with transaction.atomic():
            locked = Order.objects.select_for_update().select_related("account").get(pk=order.pk)
            if locked.status != Order.Status.PENDING and locked.status != Order.Status.FAILED:
                raise Conflict(f"Order {locked.number} is already {locked.status}.", code="order_not_pending")
            lines = list(
                locked.lines.select_related("plan_version__plan__product", "product").order_by("position")
            )
            for line in lines:
                entitlement = _fulfil_line(locked, line, actor_id)
                if entitlement is not None:
                    entitlements.append(entitlement)
            now = clock.now()
            locked.status = Order.Status.FULFILLING if entitlements else Order.Status.COMPLETED
            locked.completed_at = None if entitlements else now
            locked.last_error = ""
            locked.updated_at = now
            locked.save()
            audit.record(
                action="billing.order.fulfilled",
                object_type="order",
                object_id=str(locked.public_id),
                after=_snapshot(locked),
                actor_id=actor_id,
            )
    except ValidationFailed as error:
        with transaction.atomic():
            failed = Order.objects.select_for_update().get(pk=order.pk)
            failed.status = Order.Status.FAILED
            failed.last_error = error.message[:500]
            failed.updated_at = clock.now()
            failed.save(update_fields=["status", "last_error", "updated_at"])
            audit.record(
                action="billing.order.fulfilment_failed",
                object_type="order",
                object_id=str(failed.public_id),
                after={"status": failed.status, "error": failed.last_error},
                actor_id=actor_id,
            )
        raise
    for entitlement in entitlements:
        provisioning.provisioning_advance(entitlement=entitlement, actor_id=actor_id)
    return Order.objects.get(pk=order.pk)


def resolve_plan_version(public_id: str) -> PlanVersion:
    version = PlanVersion.objects.select_related("plan").filter(public_id=public_id).first()
    if version is None or version.published_at is None:
        raise ValidationFailed(
            "Plan version not found.", fields={"plan_version": ["not found or not published."]}
        )
    return version
