"""Hand-built histories for the analytics tests: subscription changes with known MRR, invoices with
known lines, payments and usage events."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from fedele.billing.models import (
    BillingAccount,
    Invoice,
    InvoiceLine,
    Metric,
    Payment,
    Subscription,
    SubscriptionChange,
    UsageEvent,
)
from fedele.billing.tests.factories import BillingAccountFactory, flat_plan, subscription

ROME = ZoneInfo("Europe/Rome")
_numbers = itertools.count(1)


def account(name: str = "", currency: str = "EUR") -> BillingAccount:
    """A billing account whose customer is called ``name`` (display name) when given."""
    extra = {"customer__display_name": name} if name else {}
    created: BillingAccount = BillingAccountFactory(currency=currency, **extra)
    return created


def snapshot(
    mrr: str, *, status: str = "active", currency: str = "EUR", plan: str = "plan"
) -> dict[str, Any]:
    return {
        "status": status,
        "plan_code": plan,
        "plan_version_id": 1,
        "quantity": "1",
        "currency": currency,
        "mrr": mrr,
    }


def mrr_history(
    owner: BillingAccount, steps: list[tuple[date, str]], *, currency: str = "EUR"
) -> Subscription:
    """A subscription whose MRR becomes ``mrr`` on each date: a 'created' change, then one change per
    later step ('cancelled' when it goes to zero, 'reactivated' back from zero, else 'plan_changed')."""
    first_day = steps[0][0]
    sub = subscription(flat_plan("10.00", currency=currency), account=owner, start=first_day)
    previous: dict[str, Any] | None = None
    for index, (effective_on, mrr) in enumerate(steps):
        status = "cancelled" if Decimal(mrr) == 0 else "active"
        after = snapshot(mrr, status=status, currency=currency)
        if index == 0:
            kind = SubscriptionChange.Kind.CREATED
        elif status == "cancelled":
            kind = SubscriptionChange.Kind.CANCELLED
        elif previous is not None and Decimal(previous["mrr"]) == 0:
            kind = SubscriptionChange.Kind.REACTIVATED
        else:
            kind = SubscriptionChange.Kind.PLAN_CHANGED
        change(sub, kind, effective_on, before=previous, after=after)
        previous = after
    return sub


def change(
    sub: Subscription,
    kind: str,
    effective_on: date,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> SubscriptionChange:
    return SubscriptionChange.objects.create(
        subscription=sub,
        kind=kind,
        effective_on=effective_on,
        before=before,
        after=after,
        occurred_at=timezone.now(),
    )


def invoice(
    owner: BillingAccount,
    *,
    issued: date,
    lines: Sequence[tuple[str, date | None, date | None]] = (),
    status: str = "finalised",
    kind: str = "invoice",
    currency: str = "EUR",
    due: date | None = None,
    total: str | None = None,
    paid: str = "0",
    credited: str = "0",
    paid_at: datetime | None = None,
    finalised_at: datetime | None = None,
) -> Invoice:
    """An invoice with net lines (amount, period start, period end); ``total`` defaults to their sum."""
    line_total = sum((Decimal(amount) for amount, _, _ in lines), Decimal(0))
    number = None if status == "draft" else f"TEST-{next(_numbers):06d}"
    now = timezone.now()
    created = Invoice.objects.create(
        account=owner,
        kind=kind,
        number=number,
        status=status,
        currency=currency,
        issue_date=issued,
        due_date=due,
        subtotal=line_total,
        total=Decimal(total) if total is not None else line_total,
        amount_paid=Decimal(paid),
        amount_credited=Decimal(credited),
        paid_at=paid_at,
        finalised_at=finalised_at,
        created_at=now,
        updated_at=now,
    )
    for position, (amount, period_start, period_end) in enumerate(lines):
        InvoiceLine.objects.create(
            invoice=created,
            kind="recurring" if period_start else "one_time",
            description=f"line {position}",
            quantity=Decimal(1),
            unit_amount=Decimal(amount),
            amount=Decimal(amount),
            vat_rate=Decimal(22),
            period_start=period_start,
            period_end=period_end,
            position=position,
        )
    return created


def rome(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ROME)


def payment(
    owner: BillingAccount, *, received: date, status: str, amount: str = "10.00", currency: str = "EUR"
) -> Payment:
    now = timezone.now()
    return Payment.objects.create(
        account=owner,
        gateway="manual",
        method_kind="bank_transfer",
        status=status,
        amount=Decimal(amount),
        currency=currency,
        received_on=received,
        external_id=f"pay-{next(_numbers)}",
        created_at=now,
        updated_at=now,
    )


def usage(
    owner: BillingAccount,
    metric: Metric,
    quantity: str,
    at: datetime,
    *,
    sub: Subscription | None = None,
    properties: dict[str, Any] | None = None,
) -> UsageEvent:
    return UsageEvent.objects.create(
        account=owner,
        subscription=sub,
        metric=metric,
        external_id=f"evt-{next(_numbers)}",
        quantity=Decimal(quantity),
        occurred_at=at,
        properties=properties or {},
        received_at=at,
    )
