"""Domain events published by the customers module."""

from __future__ import annotations

from dataclasses import dataclass

from fedele.shared.events import DomainEvent


@dataclass(frozen=True, slots=True)
class CustomerCreated(DomainEvent):
    event_type = "customers.CustomerCreated"
    customer_id: str
    number: str
    kind: str
    segment: str


@dataclass(frozen=True, slots=True)
class CustomerUpdated(DomainEvent):
    event_type = "customers.CustomerUpdated"
    customer_id: str
    changed_fields: list[str]


@dataclass(frozen=True, slots=True)
class CustomersMerged(DomainEvent):
    """Modules holding references to merged_customer_id should re-point them to survivor_customer_id."""

    event_type = "customers.CustomersMerged"
    survivor_customer_id: str
    merged_customer_id: str


@dataclass(frozen=True, slots=True)
class CustomerErased(DomainEvent):
    event_type = "customers.CustomerErased"
    customer_id: str


@dataclass(frozen=True, slots=True)
class ConsentChanged(DomainEvent):
    event_type = "customers.ConsentChanged"
    customer_id: str
    channel: str
    purpose: str
    granted: bool
