"""Orders and quotes: pricing with discounts, fulfilment into subscriptions, charges, entitlements."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from fedele.billing.models import Coupon, Entitlement, OneOffCharge, Order, PlanCharge, Subscription
from fedele.billing.services.orders import order_create
from fedele.billing.services.quote_pricing import LineInput, allocate
from fedele.billing.tests.factories import (
    BillingAccountFactory,
    PlanFactory,
    PlanVersionFactory,
    ProductFactory,
)
from fedele.shared.errors import Conflict, ValidationFailed

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def seat_plan(currency: str = "EUR"):  # type: ignore[no-untyped-def]
    product = ProductFactory(provisioning_kind="licence_seat", name="Office seats")
    plan = PlanFactory(product=product, name="Office")
    version = PlanVersionFactory(plan=plan, currency=currency, setup_fee=Decimal("50.00"))
    PlanCharge.objects.create(
        plan_version=version,
        code="seat",
        name="Seat",
        kind="recurring",
        model="per_unit",
        unit_amount=Decimal("12.50"),
    )
    return version


def test_allocation_is_exact_to_the_cent() -> None:
    assert allocate(Decimal("8.49"), [Decimal(45), Decimal(45), Decimal("79.80")], "EUR") == [
        Decimal("2.25"),
        Decimal("2.25"),
        Decimal("3.99"),
    ]
    assert allocate(Decimal("0.02"), [Decimal(1), Decimal(1), Decimal(1)], "EUR") == [
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("0.00"),
    ]
    assert allocate(Decimal("0"), [Decimal(5)], "EUR") == [Decimal(0)]


def test_order_fulfilment_starts_subscription_with_negotiated_price_and_charges() -> None:
    version = seat_plan()
    router = ProductFactory(name="Router", vat_rate=Decimal("22"))
    account = BillingAccountFactory()
    result = order_create(
        account=account,
        lines=[
            LineInput(plan_version=version, quantity=Decimal(4), discount_percent=Decimal(10)),
            LineInput(product=router, quantity=Decimal(2), unit_amount=Decimal("39.90")),
        ],
        discount_percent=Decimal(5),
        external_reference="crm-881",
        start_on=date(2026, 3, 10),
    )
    order = result.order
    assert result.created
    assert order.number == "ORD-2026-000001"
    assert [(line.kind, line.amount, line.status) for line in order.lines.order_by("position")] == [
        ("plan", Decimal("42.75"), "completed"),
        ("setup_fee", Decimal("42.75"), "completed"),
        ("product", Decimal("75.81"), "completed"),
    ]
    assert order.total == Decimal("161.31")
    assert order.status == "completed"
    subscription = Subscription.objects.get(account=account)
    assert (subscription.quantity, subscription.external_reference) == (Decimal(4), "ORD-2026-000001")
    coupon = Coupon.objects.get(code="ORD-2026-000001-L1")
    assert (coupon.amount_off, coupon.duration, coupon.max_redemptions) == (Decimal("7.25"), "forever", 1)
    assert subscription.coupon_id == coupon.pk
    charges = sorted(
        OneOffCharge.objects.filter(account=account).values_list("kind", "quantity", "unit_amount")
    )
    assert charges == [
        ("discount", Decimal(1), Decimal("-7.25")),
        ("one_time", Decimal(2), Decimal("37.905")),
    ]
    entitlement = Entitlement.objects.get(account=account)
    assert (entitlement.status, entitlement.identifier, entitlement.subscription_id) == (
        "active",
        "LIC-2026-000001",
        subscription.pk,
    )
    again = order_create(
        account=account,
        lines=[
            LineInput(plan_version=version, quantity=Decimal(4), discount_percent=Decimal(10)),
            LineInput(product=router, quantity=Decimal(2), unit_amount=Decimal("39.90")),
        ],
        discount_percent=Decimal(5),
        external_reference="crm-881",
        start_on=date(2026, 3, 10),
    )
    assert (again.created, again.order.pk) == (False, order.pk)
    with pytest.raises(Conflict) as caught:
        order_create(
            account=account,
            lines=[LineInput(product=router, unit_amount=Decimal(1))],
            external_reference="crm-881",
        )
    assert caught.value.code == "external_reference_reused"
    assert Order.objects.count() == 1
    assert Subscription.objects.filter(account=account).count() == 1


def test_invalid_lines_write_nothing() -> None:
    usd = seat_plan("USD")
    product = ProductFactory()
    account = BillingAccountFactory()
    with pytest.raises(ValidationFailed) as caught:
        order_create(
            account=account,
            lines=[
                LineInput(plan_version=usd),
                LineInput(product=product),
                LineInput(product=product, unit_amount=Decimal(1), quantity=Decimal(0)),
                LineInput(product=product, unit_amount=Decimal(1), discount_percent=Decimal("100.5")),
            ],
        )
    assert caught.value.fields == {
        "lines[0].plan_version": ["is priced in USD, the quote in EUR."],
        "lines[1].unit_amount": ["is required for a product line."],
        "lines[2].quantity": ["must be more than zero."],
        "lines[3].discount_percent": ["must be between 0 and 100."],
    }
    assert Order.objects.count() == 0
    with pytest.raises(ValidationFailed):
        order_create(account=account, lines=[])
    assert Order.objects.count() == 0
