"""Domain events field service publishes (through the outbox). Payloads carry public ids and plain values.

``field_service.work_order_updated`` is consumed by support (fedele/support/services/consumers.py): its
fields are exactly the ones that consumer reads. Documented in docs/field_service.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedele.shared.events import DomainEvent


@dataclass(frozen=True, slots=True)
class WorkOrderUpdated(DomainEvent):
    """Every status change (and a reschedule or a new ETA) of a work order."""

    event_type: ClassVar[str] = "field_service.work_order_updated"
    work_order_id: str
    number: str
    status: str
    customer_id: str | None
    ticket_id: str | None
    summary: str
    scheduled_for: str | None  # the window start, ISO 8601 with offset (UTC)
    technician_name: str | None


@dataclass(frozen=True, slots=True)
class WorkOrderCompleted(DomainEvent):
    """A work order was completed (billing may charge the visit and parts; insights counts fixes)."""

    event_type: ClassVar[str] = "field_service.work_order_completed"
    work_order_id: str
    number: str
    customer_id: str
    equipment_id: str | None
    ticket_id: str | None
    kind: str
    technician_name: str | None
    completed_at: str
    resolution: str


EVENT_TYPES = (WorkOrderUpdated.event_type, WorkOrderCompleted.event_type)
