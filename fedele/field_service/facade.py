"""The only surface other modules may import from field service. Returns contracts, not ORM objects.

For the contact center's screen pop (a caller's equipment and open work orders) and its IVR (when does
the technician come?), and for anyone holding a work order number or a serial number.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fedele.field_service.contracts import (
    CLOSED_STATUSES,
    EquipmentSummary,
    WorkOrderStatus,
    WorkOrderSummary,
)
from fedele.field_service.models import Equipment, WorkOrder
from fedele.shared import clock

__all__ = [
    "EquipmentSummary",
    "WorkOrderSummary",
    "customer_equipment",
    "equipment_by_serial",
    "next_visit",
    "open_work_orders",
    "work_order_by_number",
]

MAX_LIMIT = 100
MAX_OPEN_SCANNED = 500
_NO_TIME = datetime.min.replace(tzinfo=UTC)
ETA_STATUSES = frozenset(
    {WorkOrderStatus.DISPATCHED.value, WorkOrderStatus.EN_ROUTE.value, WorkOrderStatus.IN_PROGRESS.value}
)
# The visit under way comes first: on site, then on the road, then sent.
UNDER_WAY_RANK = {
    WorkOrderStatus.IN_PROGRESS.value: 0,
    WorkOrderStatus.EN_ROUTE.value: 1,
    WorkOrderStatus.DISPATCHED.value: 2,
}
# The year (this century's), a separator or none, the sequence; "*" is the phone keypad's separator.
_NUMBER = re.compile(r"^(?:WO)?[\s_./*-]*(20\d{2})[\s_./*-]+(\d{1,9})$", re.IGNORECASE)
_DIGITS = re.compile(r"^(?:WO[\s_./*-]*)?(20\d{2})(\d{1,9})$", re.IGNORECASE)


def _equipment_summary(equipment: Equipment) -> EquipmentSummary:
    return EquipmentSummary(
        public_id=str(equipment.public_id),
        serial_number=equipment.serial_number,
        name=equipment.name,
        category=equipment.category,
        status=equipment.status,
        status_label=equipment.status_label,
        installed_on=equipment.installed_on,
        warranty_ends_on=equipment.warranty_ends_on,
        under_warranty=equipment.under_warranty_on(clock.today("Europe/Rome")),
        site_address=equipment.site_address,
    )


def _eta(work_order: WorkOrder) -> datetime | None:
    if work_order.status in ETA_STATUSES and work_order.eta is not None:
        return work_order.eta
    return work_order.window_start


def _work_order_summary(work_order: WorkOrder) -> WorkOrderSummary:
    equipment = work_order.equipment
    technician = work_order.technician
    return WorkOrderSummary(
        public_id=str(work_order.public_id),
        number=work_order.number,
        summary=work_order.summary,
        status=work_order.status,
        status_label=work_order.status_label,
        priority=work_order.priority,
        customer_public_id=str(work_order.customer.public_id) if work_order.customer_id else None,
        equipment_public_id=str(equipment.public_id) if equipment is not None else None,
        equipment_name=equipment.name if equipment is not None else "",
        window_start=work_order.window_start,
        window_end=work_order.window_end,
        eta=_eta(work_order),
        technician_name=technician.display_name if technician is not None else "",
        ticket_public_id=str(work_order.ticket_public_id) if work_order.ticket_public_id else None,
    )


def _customer_id(customer_public_id: str) -> int | None:
    """The internal key of the customer (following merges), or None when unknown."""
    from fedele.customers.facade import customer_summary
    from fedele.field_service.selectors import _uuid

    key = _uuid(customer_public_id)
    summary = customer_summary(key) if key else None
    return summary.customer_id if summary is not None else None


def customer_equipment(customer_public_id: str, *, limit: int = 20) -> list[EquipmentSummary]:
    """The customer's units: in service (active, under repair) first by installation date, newest first,
    then retired ones. Unknown customer: []."""
    from fedele.field_service.selectors import equipment_list

    customer_id = _customer_id(customer_public_id)
    limit = max(0, min(int(limit), MAX_LIMIT))
    if customer_id is None or limit == 0:
        return []
    return [_equipment_summary(row) for row in equipment_list(customer_id=customer_id)[:limit]]


def _open_for_customer(customer_id: int) -> list[WorkOrder]:
    return list(
        WorkOrder.objects.select_related("customer", "equipment", "technician")
        .filter(customer_id=customer_id)
        .exclude(status__in=CLOSED_STATUSES)
        .order_by("id")[:MAX_OPEN_SCANNED]
    )


def open_work_orders(customer_public_id: str, *, limit: int = 20) -> list[WorkOrderSummary]:
    """Open work orders, the nearest ETA (or window start) first, those without a time last; ties by
    number."""
    customer_id = _customer_id(customer_public_id)
    limit = max(0, min(int(limit), MAX_LIMIT))
    if customer_id is None or limit == 0:
        return []
    summaries = [_work_order_summary(row) for row in _open_for_customer(customer_id)]
    summaries.sort(key=lambda item: (item.eta is None, item.eta or _NO_TIME, item.number))
    return summaries[:limit]


def next_visit(customer_public_id: str, *, now: datetime | None = None) -> WorkOrderSummary | None:
    """The visit that comes next: one under way (in progress, en route, dispatched) first; else the
    scheduled one whose window ends soonest but not before ``now``. None when nothing is planned."""
    customer_id = _customer_id(customer_public_id)
    if customer_id is None:
        return None
    moment = now or clock.now()
    rows = _open_for_customer(customer_id)
    under_way = [row for row in rows if row.status in UNDER_WAY_RANK]
    if under_way:
        under_way.sort(
            key=lambda row: (UNDER_WAY_RANK[row.status], _eta(row) is None, _eta(row) or moment, row.number)
        )
        return _work_order_summary(under_way[0])
    planned = [
        row
        for row in rows
        if row.status == WorkOrderStatus.SCHEDULED.value
        and row.window_end is not None
        and row.window_end >= moment
    ]
    if not planned:
        return None
    planned.sort(key=lambda row: (row.window_end, row.window_start, row.number))
    return _work_order_summary(planned[0])


def normalise_work_order_number(number: str) -> str | None:
    """ "WO-2026-000042", "wo-2026-42", "2026-42", "2026 000042", "WO2026000042", the digits
    "2026000042" or keyed on a phone "2026*42" -> "WO-2026-000042"; anything else -> None."""
    value = str(number or "").strip()
    if not value or len(value) > 40:
        return None
    match = _NUMBER.match(value) or _DIGITS.match(value)
    if match is None:
        return None
    year, sequence = match.group(1), int(match.group(2))
    if sequence < 1:
        return None
    return f"WO-{year}-{sequence:06d}"


def work_order_by_number(number: str) -> WorkOrderSummary | None:
    from fedele.field_service.selectors import work_order_by_number as lookup

    normalised = normalise_work_order_number(number)
    row = lookup(normalised) if normalised else None
    return _work_order_summary(row) if row is not None else None


def equipment_by_serial(serial_number: str) -> EquipmentSummary | None:
    """Any letter case, spaces around trimmed."""
    from fedele.field_service.selectors import equipment_by_serial as lookup

    row = lookup(serial_number)
    return _equipment_summary(row) if row is not None else None
