"""Every read of field service: lists with filters (one query each, related rows joined) and single rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from fedele.field_service.contracts import CLOSED_STATUSES, EquipmentStatus, WorkOrderStatus
from fedele.field_service.models import Equipment, Technician, WorkOrder

BUSINESS_TZ = ZoneInfo("Europe/Rome")


def _uuid(value: object) -> str | None:
    try:
        return str(uuid.UUID(str(value).strip()))
    except (ValueError, AttributeError):
        return None


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """A Europe/Rome calendar day as a [start, end) UTC range (23 or 25 hours on the DST change days)."""
    start = datetime.combine(day, time.min, tzinfo=BUSINESS_TZ)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=BUSINESS_TZ)
    return start, end


# ----------------------------------------------------------------------------------------------
# Technicians


def technician_list(*, active: bool | None = None, search: str = "") -> QuerySet[Technician]:
    rows = Technician.objects.all()
    if active is not None:
        rows = rows.filter(active=active)
    if search.strip():
        term = search.strip()
        rows = rows.filter(
            Q(display_name__icontains=term) | Q(email__icontains=term) | Q(phone__icontains=term)
        )
    return rows.annotate(
        open_work_orders=Count("work_orders", filter=~Q(work_orders__status__in=CLOSED_STATUSES))
    ).order_by("display_name", "id")


def technician_get(public_id: str) -> Technician | None:
    key = _uuid(public_id)
    return Technician.objects.filter(public_id=key).first() if key else None


def technician_for_user(user_id: int) -> Technician | None:
    return Technician.objects.filter(user_id=user_id).first()


# ----------------------------------------------------------------------------------------------
# Equipment


def equipment_list(
    *,
    customer_id: int | None = None,
    status: str | Iterable[str] | None = None,
    category: str = "",
    search: str = "",
) -> QuerySet[Equipment]:
    """In service first (newest installation first), retired last."""
    rows = Equipment.objects.select_related("customer")
    if customer_id is not None:
        rows = rows.filter(customer_id=customer_id)
    if isinstance(status, str) and status:
        rows = rows.filter(status=status)
    elif status is not None and not isinstance(status, str):
        rows = rows.filter(status__in=list(status))
    if category.strip():
        rows = rows.filter(category=category.strip().lower())
    if search.strip():
        term = search.strip()
        rows = rows.filter(
            Q(serial_number__icontains=term)
            | Q(name__icontains=term)
            | Q(manufacturer__icontains=term)
            | Q(site_city__icontains=term)
        )
    retired_last = Case(
        When(status=EquipmentStatus.RETIRED.value, then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    undated_last = Case(
        When(installed_on__isnull=True, then=Value(1)), default=Value(0), output_field=IntegerField()
    )
    return rows.order_by(retired_last, undated_last, "-installed_on", "-id")


def equipment_get(public_id: str) -> Equipment | None:
    key = _uuid(public_id)
    return Equipment.objects.select_related("customer").filter(public_id=key).first() if key else None


def equipment_by_serial(serial_number: str) -> Equipment | None:
    serial = " ".join(str(serial_number or "").split())
    if not serial or len(serial) > 100:
        return None
    return Equipment.objects.select_related("customer").filter(serial_number__iexact=serial).first()


# ----------------------------------------------------------------------------------------------
# Work orders


def work_order_list(
    *,
    status: str | Iterable[str] | None = None,
    open_only: bool = False,
    technician_public_id: str | None = None,
    technician_id: int | None = None,
    customer_id: int | None = None,
    equipment_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    search: str = "",
) -> QuerySet[WorkOrder]:
    """Filters combine; the dates are Europe/Rome days matched on the window start (inclusive)."""
    rows = WorkOrder.objects.select_related("customer", "equipment", "technician")
    if isinstance(status, str) and status:
        rows = rows.filter(status=status)
    elif status is not None and not isinstance(status, str):
        rows = rows.filter(status__in=list(status))
    if open_only:
        rows = rows.exclude(status__in=CLOSED_STATUSES)
    if technician_public_id:
        key = _uuid(technician_public_id)
        rows = rows.filter(technician__public_id=key) if key else rows.none()
    if technician_id is not None:
        rows = rows.filter(technician_id=technician_id)
    if customer_id is not None:
        rows = rows.filter(customer_id=customer_id)
    if equipment_id is not None:
        rows = rows.filter(equipment_id=equipment_id)
    if date_from is not None:
        rows = rows.filter(window_start__gte=local_day_bounds(date_from)[0])
    if date_to is not None:
        rows = rows.filter(window_start__lt=local_day_bounds(date_to)[1])
    if search.strip():
        term = search.strip()
        rows = rows.filter(
            Q(number__icontains=term)
            | Q(summary__icontains=term)
            | Q(equipment__serial_number__icontains=term)
            | Q(customer__display_name__icontains=term)
        )
    unscheduled_last = Case(
        When(window_start__isnull=True, then=Value(1)), default=Value(0), output_field=IntegerField()
    )
    return rows.order_by(unscheduled_last, "window_start", "id")


def work_order_counts(rows: QuerySet[WorkOrder]) -> dict[str, int]:
    """How many of ``rows`` are in each status (every status present, zero when none): one query."""
    counts = {status.value: 0 for status in WorkOrderStatus}
    for row in rows.order_by().values("status").annotate(total=Count("id")):
        counts[row["status"]] = row["total"]
    return counts


def work_order_get(public_id: str) -> WorkOrder | None:
    key = _uuid(public_id)
    if key is None:
        return None
    return (
        WorkOrder.objects.select_related("customer", "equipment", "technician")
        .prefetch_related("history")
        .filter(public_id=key)
        .first()
    )


def work_order_by_number(number: str) -> WorkOrder | None:
    return (
        WorkOrder.objects.select_related("customer", "equipment", "technician").filter(number=number).first()
    )
