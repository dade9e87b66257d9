"""Test helpers for usage, quotes, orders and provisioning (H3): usage events and catalog set-ups."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from fedele.billing.models import Metric, Subscription, UsageEvent
from fedele.billing.tests.factories import MetricFactory, flat_plan, subscription, usage_charge

_counter = {"value": 0}


def event(
    sub: Subscription,
    metric: Metric,
    quantity: str | int | Decimal,
    occurred_at: datetime,
    *,
    properties: Mapping[str, Any] | None = None,
    external_id: str | None = None,
    received_at: datetime | None = None,
) -> UsageEvent:
    """One stored usage event of ``sub`` (bypassing ingestion, for aggregation tests)."""
    _counter["value"] += 1
    return UsageEvent.objects.create(
        account_id=sub.account_id,
        subscription=sub,
        metric=metric,
        external_id=external_id or f"evt-{_counter['value']}",
        quantity=Decimal(quantity),
        occurred_at=occurred_at,
        properties=dict(properties or {}),
        received_at=received_at or timezone.now(),
    )


def metered_subscription(
    metric: Metric | None = None, *, unit_amount: str = "0.10", **subscription_kwargs: Any
) -> tuple[Subscription, Metric]:
    """An active monthly subscription (30.00 EUR flat) with a per-unit usage charge on ``metric``."""
    metric = metric or MetricFactory()
    version = flat_plan("30.00")
    usage_charge(version, metric, unit_amount=Decimal(unit_amount))
    return subscription(version, **subscription_kwargs), metric
