"""Domain events billing publishes (through the outbox). Payloads carry public ids and plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedele.shared.events import DomainEvent


@dataclass(frozen=True, slots=True)
class InvoiceFinalised(DomainEvent):
    event_type: ClassVar[str] = "billing.invoice_finalised"
    invoice_id: str
    number: str
    kind: str
    customer_id: str
    currency: str
    total: str
    due_date: str


@dataclass(frozen=True, slots=True)
class InvoicePaid(DomainEvent):
    event_type: ClassVar[str] = "billing.invoice_paid"
    invoice_id: str
    number: str
    customer_id: str
    currency: str
    total: str
    paid_at: str


@dataclass(frozen=True, slots=True)
class PaymentFailed(DomainEvent):
    event_type: ClassVar[str] = "billing.payment_failed"
    payment_id: str
    invoice_id: str | None
    customer_id: str
    currency: str
    amount: str
    reason: str


@dataclass(frozen=True, slots=True)
class SubscriptionStarted(DomainEvent):
    event_type: ClassVar[str] = "billing.subscription_started"
    subscription_id: str
    number: str
    customer_id: str
    plan_code: str
    quantity: str
    started_on: str
    trial_end: str | None


@dataclass(frozen=True, slots=True)
class SubscriptionChanged(DomainEvent):
    event_type: ClassVar[str] = "billing.subscription_changed"
    subscription_id: str
    number: str
    customer_id: str
    change: str
    old_plan_code: str
    new_plan_code: str
    old_quantity: str
    new_quantity: str
    effective_on: str


@dataclass(frozen=True, slots=True)
class SubscriptionCancelled(DomainEvent):
    event_type: ClassVar[str] = "billing.subscription_cancelled"
    subscription_id: str
    number: str
    customer_id: str
    plan_code: str
    ended_on: str
    reason: str


@dataclass(frozen=True, slots=True)
class ServiceProvisioned(DomainEvent):
    event_type: ClassVar[str] = "billing.service_provisioned"
    entitlement_id: str
    customer_id: str
    order_number: str
    kind: str
    identifier: str
    step: str
