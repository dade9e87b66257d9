"""What other modules may know about field service (installed equipment, work orders). No Django imports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


class EquipmentStatus(StrEnum):
    ACTIVE = "active"
    UNDER_REPAIR = "under_repair"
    RETIRED = "retired"


class WorkOrderStatus(StrEnum):
    NEW = "new"
    SCHEDULED = "scheduled"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class WorkOrderPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class WorkOrderKind(StrEnum):
    INSTALLATION = "installation"
    REPAIR = "repair"
    MAINTENANCE = "maintenance"
    INSPECTION = "inspection"


CLOSED_STATUSES = frozenset({WorkOrderStatus.COMPLETED.value, WorkOrderStatus.CANCELLED.value})
"""A work order is open while its status is not one of these."""

ON_THE_WAY_STATUSES = frozenset(
    {
        WorkOrderStatus.DISPATCHED.value,
        WorkOrderStatus.EN_ROUTE.value,
        WorkOrderStatus.IN_PROGRESS.value,
    }
)
"""The technician has been sent (or is already on site): the visit is the next one, whatever its window."""


@dataclass(frozen=True, slots=True)
class EquipmentSummary:
    public_id: str
    serial_number: str
    name: str  # model / product name, e.g. "Caldaia Vaillant ecoTEC plus 25"
    category: str  # free text code, e.g. "boiler", "router", "meter"
    status: str  # "active" | "under_repair" | "retired"
    status_label: str  # in the active language
    installed_on: date | None
    warranty_ends_on: date | None
    under_warranty: bool  # on the day the facade was asked (Europe/Rome local date)
    site_address: str  # where it is installed, one line


@dataclass(frozen=True, slots=True)
class WorkOrderSummary:
    public_id: str
    number: str  # "WO-2026-000042" (gapless per-year series, fedele.shared.sequences)
    summary: str
    status: str  # "new" | "scheduled" | "dispatched" | "en_route" | "in_progress" | "on_hold" | ...
    status_label: str  # in the active language
    priority: str  # "low" | "normal" | "high" | "urgent"
    customer_public_id: str | None
    equipment_public_id: str | None
    equipment_name: str  # "" when none
    window_start: datetime | None  # the appointment window promised to the customer (aware, UTC)
    window_end: datetime | None
    eta: datetime | None  # the technician's ETA once dispatched/en route, else window_start
    technician_name: str  # "" when none assigned
    ticket_public_id: str | None  # the support ticket it was opened from, if any
