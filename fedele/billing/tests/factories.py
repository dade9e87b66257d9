"""Factories for billing: catalog rows, accounts and subscriptions in a consistent state."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from fedele.billing.models import (
    BillingAccount,
    Entitlement,
    Invoice,
    Metric,
    Plan,
    PlanCharge,
    PlanVersion,
    Product,
    Subscription,
)
from fedele.billing.periods import period_end
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import sequences


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    code = factory.Sequence(lambda n: f"product-{n}")
    name = factory.Sequence(lambda n: f"Product {n}")
    vat_rate = Decimal("22")
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


class MetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Metric

    code = factory.Sequence(lambda n: f"metric-{n}")
    name = factory.Sequence(lambda n: f"Metric {n}")
    aggregation = "sum"
    created_at = factory.LazyFunction(timezone.now)


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan

    product = factory.SubFactory(ProductFactory)
    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.Sequence(lambda n: f"Plan {n}")
    billing_period = "month"
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


class PlanVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlanVersion

    plan = factory.SubFactory(PlanFactory)
    currency = "EUR"
    version = 1
    published_at = factory.LazyFunction(timezone.now)
    created_at = factory.LazyFunction(timezone.now)


class BillingAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BillingAccount

    customer = factory.SubFactory(CustomerFactory)
    currency = "EUR"
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


def flat_plan(
    monthly: str = "30.00",
    *,
    period: str = "month",
    currency: str = "EUR",
    code: str | None = None,
    **plan: Any,
) -> PlanVersion:
    """A published plan version with one recurring flat charge of ``monthly`` per period."""
    plan_row = PlanFactory(billing_period=period, **({"code": code} if code else {}), **plan)
    version = PlanVersionFactory(plan=plan_row, currency=currency)
    PlanCharge.objects.create(
        plan_version=version,
        code="base",
        name="Base fee",
        kind="recurring",
        model="flat",
        flat_amount=Decimal(monthly),
    )
    return version


def usage_charge(
    version: PlanVersion, metric: Metric, *, model: str = "per_unit", **prices: Any
) -> PlanCharge:
    return PlanCharge.objects.create(
        plan_version=version,
        code=f"usage-{metric.code}",
        name=metric.name,
        kind="usage",
        metric=metric,
        model=model,
        position=10,
        **prices,
    )


def subscription(
    version: PlanVersion,
    *,
    account: BillingAccount | None = None,
    start: date = date(2026, 1, 1),
    quantity: Decimal | int = 1,
    status: str = "active",
) -> Subscription:
    """An active subscription in its first period (no invoice yet; next_billing_on = start)."""
    account = account or BillingAccountFactory(currency=version.currency)
    period = version.plan.billing_period
    now = timezone.now()
    return Subscription.objects.create(
        number=sequences.next_number("SUB"),
        account=account,
        plan=version.plan,
        plan_version=version,
        quantity=Decimal(quantity),
        status=status,
        billing_period=period,
        billing_anchor_day=start.day,
        started_on=start,
        current_period_start=start,
        current_period_end=period_end(start, period, start.day),
        next_billing_on=start,
        created_at=now,
        updated_at=now,
    )


class EntitlementFactory(factory.django.DjangoModelFactory):
    """An active provisioned service (a fibre line) of an account."""

    class Meta:
        model = Entitlement

    account = factory.SubFactory(BillingAccountFactory)
    product = factory.SubFactory(ProductFactory)
    kind = "fibre_line"
    identifier = factory.Sequence(lambda n: f"FTTH-{n:06d}")
    status = "active"
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


class InvoiceFactory(factory.django.DjangoModelFactory):
    """A finalised invoice row with totals as given (no lines): for other modules' tests that read a
    customer's position or fetch an invoice copy through the facade."""

    class Meta:
        model = Invoice

    account = factory.SubFactory(BillingAccountFactory)
    number = factory.LazyFunction(lambda: sequences.next_number("INV", year=2026))
    status = "finalised"
    currency = "EUR"
    issue_date = date(2026, 1, 1)
    due_date = date(2026, 1, 31)
    total = Decimal("100.00")
    amount_paid = Decimal("0.00")
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)
