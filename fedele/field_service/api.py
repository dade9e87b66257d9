"""Field service API under /api/v1/field-service/: parse, authorise, call a service or selector; nothing else.

Equipment (list, get, create, change, retire), work orders (list, get, create, one POST per transition)
and technicians (list, create). Reading needs ``field_service.view_field_service``; the services check
the right to write. POSTs accept an Idempotency-Key header (the kernel middleware replays the answer).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from fedele.accounts.facade import Actor, actor_for
from fedele.field_service import selectors
from fedele.field_service.models import Equipment, Technician, WorkOrder, WorkOrderEvent
from fedele.field_service.services import installed_base, work_orders
from fedele.field_service.services.common import VIEW
from fedele.shared import clock
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed
from fedele.shared.pagination import paginate

router = Router(tags=["field service"])

ORDERINGS = {"created_at": "created_at", "number": "number"}
EQUIPMENT_ORDERINGS = {"created_at": "created_at", "serial_number": "serial_number"}
StatusLiteral = Literal[
    "new", "scheduled", "dispatched", "en_route", "in_progress", "on_hold", "completed", "cancelled"
]


def _reader(request: HttpRequest) -> Actor:
    require_scope(request, "read")
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can(VIEW)):
        raise PermissionDenied("You do not have permission to see field service data.")
    return actor


def _writer(request: HttpRequest) -> Actor:
    require_scope(request, "write")
    return actor_for(request.user)


def _customer_id(public_id: UUID | None) -> int | None:
    from fedele.customers.facade import customer_summary

    if public_id is None:
        return None
    summary = customer_summary(str(public_id))
    if summary is None:
        raise ValidationFailed(
            "Customer not found.", code="customer_not_found", fields={"customer_id": "Not found."}
        )
    return summary.customer_id


# ----------------------------------------------------------------------------------------------
# Schemas


class TechnicianOut(Schema):
    id: UUID
    display_name: str
    phone: str
    email: str
    active: bool
    home_base_address: str

    @staticmethod
    def resolve_id(obj: Technician) -> UUID:
        return obj.public_id


class TechnicianIn(StrictSchema):
    display_name: str = Field(..., min_length=1, max_length=150)
    phone: str = Field("", max_length=30)
    email: str = Field("", max_length=254)
    home_base_address: str = Field("", max_length=300)
    active: bool = True


class EquipmentOut(Schema):
    id: UUID
    customer_id: UUID
    serial_number: str
    name: str
    category: str
    manufacturer: str
    model_code: str
    status: str
    installed_on: date | None
    warranty_ends_on: date | None
    under_warranty: bool
    site_address: str
    site_street: str
    site_postal_code: str
    site_city: str
    site_province: str
    site_country: str
    notes: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_id(obj: Equipment) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_customer_id(obj: Equipment) -> UUID:
        return obj.customer.public_id

    @staticmethod
    def resolve_under_warranty(obj: Equipment) -> bool:
        return obj.under_warranty_on(clock.today("Europe/Rome"))


class EquipmentPage(Schema):
    items: list[EquipmentOut]
    next_cursor: str | None


class EquipmentIn(StrictSchema):
    customer_id: UUID
    serial_number: str = Field(..., min_length=1, max_length=100)
    name: str = Field(..., min_length=1, max_length=200)
    category: str = Field("", max_length=40)
    manufacturer: str = Field("", max_length=100)
    model_code: str = Field("", max_length=100)
    installed_on: date | None = None
    warranty_ends_on: date | None = None
    warranty_months: int | None = Field(None, ge=0, le=600)
    site_street: str = Field("", max_length=200)
    site_postal_code: str = Field("", max_length=16)
    site_city: str = Field("", max_length=100)
    site_province: str = Field("", max_length=2)
    site_country: str = Field("IT", max_length=2)
    notes: str = Field("", max_length=5000)


class EquipmentPatch(StrictSchema):
    serial_number: str | None = Field(None, min_length=1, max_length=100)
    name: str | None = Field(None, min_length=1, max_length=200)
    category: str | None = Field(None, max_length=40)
    manufacturer: str | None = Field(None, max_length=100)
    model_code: str | None = Field(None, max_length=100)
    status: Literal["active", "under_repair"] | None = None
    installed_on: date | None = None
    warranty_ends_on: date | None = None
    warranty_months: int | None = Field(None, ge=0, le=600)
    site_street: str | None = Field(None, max_length=200)
    site_postal_code: str | None = Field(None, max_length=16)
    site_city: str | None = Field(None, max_length=100)
    site_province: str | None = Field(None, max_length=2)
    site_country: str | None = Field(None, max_length=2)
    notes: str | None = Field(None, max_length=5000)


class ReasonIn(StrictSchema):
    reason: str = Field(..., min_length=1, max_length=500)


class OptionalReasonIn(StrictSchema):
    reason: str = Field("", max_length=500)


class HistoryOut(Schema):
    at: datetime
    action: str
    from_status: str
    to_status: str
    actor: str
    note: str

    @staticmethod
    def resolve_actor(obj: WorkOrderEvent) -> str:
        return obj.actor_label


class WorkOrderOut(Schema):
    id: UUID
    number: str
    customer_id: UUID
    equipment_id: UUID | None
    ticket_id: UUID | None
    kind: str
    summary: str
    description: str
    priority: str
    status: str
    is_open: bool
    window_start: datetime | None
    window_end: datetime | None
    technician_id: UUID | None
    technician_name: str
    eta: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    resolution: str
    hold_reason: str
    cancellation_reason: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_id(obj: WorkOrder) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_customer_id(obj: WorkOrder) -> UUID:
        return obj.customer.public_id

    @staticmethod
    def resolve_equipment_id(obj: WorkOrder) -> UUID | None:
        return obj.equipment.public_id if obj.equipment else None

    @staticmethod
    def resolve_ticket_id(obj: WorkOrder) -> UUID | None:
        return obj.ticket_public_id

    @staticmethod
    def resolve_technician_id(obj: WorkOrder) -> UUID | None:
        return obj.technician.public_id if obj.technician else None

    @staticmethod
    def resolve_technician_name(obj: WorkOrder) -> str:
        return obj.technician.display_name if obj.technician else ""


class WorkOrderDetailOut(WorkOrderOut):
    history: list[HistoryOut]

    @staticmethod
    def resolve_history(obj: WorkOrder) -> list[WorkOrderEvent]:
        return list(obj.history.all())


class WorkOrderPage(Schema):
    items: list[WorkOrderOut]
    next_cursor: str | None
    counts: dict[str, int]


class WorkOrderIn(StrictSchema):
    customer_id: UUID
    summary: str = Field(..., min_length=1, max_length=200)
    description: str = Field("", max_length=10000)
    kind: Literal["installation", "repair", "maintenance", "inspection"] = "repair"
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    equipment_id: UUID | None = None
    ticket_id: UUID | None = None
    technician_id: UUID | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None


class ScheduleIn(StrictSchema):
    window_start: datetime
    window_end: datetime
    technician_id: UUID | None = None


class AssignIn(StrictSchema):
    technician_id: UUID | None


class EtaIn(StrictSchema):
    eta: datetime | None = None


class RequiredEtaIn(StrictSchema):
    eta: datetime


class ResolutionIn(StrictSchema):
    resolution: str = Field(..., min_length=1, max_length=10000)


class WorkOrderQuery(Schema):
    status: StatusLiteral | None = None
    open: bool = False
    technician_id: UUID | None = None
    customer_id: UUID | None = None
    date_from: date | None = Field(None, description="Window start on or after this Europe/Rome day")
    date_to: date | None = Field(None, description="Window start on or before this Europe/Rome day")
    search: str = Field("", max_length=100)
    ordering: str = "-created_at"
    cursor: str | None = None
    limit: int = 50


class EquipmentQuery(Schema):
    customer_id: UUID | None = None
    status: Literal["active", "under_repair", "retired"] | None = None
    category: str = Field("", max_length=40)
    search: str = Field("", max_length=100)
    ordering: str = "-created_at"
    cursor: str | None = None
    limit: int = 50


def _str(value: UUID | None) -> str | None:
    return str(value) if value is not None else None


# ----------------------------------------------------------------------------------------------
# Technicians


@router.get(
    "/technicians", response={200: list[TechnicianOut], **ERROR_RESPONSES}, summary="List technicians"
)
def list_technicians(request: HttpRequest, active: bool | None = None) -> list[Technician]:
    _reader(request)
    return list(selectors.technician_list(active=active))


@router.post("/technicians", response={201: TechnicianOut, **ERROR_RESPONSES}, summary="Add a technician")
def create_technician(request: HttpRequest, payload: TechnicianIn) -> Status[Technician]:
    technician = installed_base.technician_create(actor=_writer(request), **payload.model_dump())
    return Status(201, technician)


# ----------------------------------------------------------------------------------------------
# Equipment


@router.get("/equipment", response={200: EquipmentPage, **ERROR_RESPONSES}, summary="List equipment")
def list_equipment(request: HttpRequest, query: Query[EquipmentQuery]) -> dict[str, Any]:
    _reader(request)
    rows = selectors.equipment_list(
        customer_id=_customer_id(query.customer_id),
        status=query.status,
        category=query.category,
        search=query.search,
    )
    page = paginate(
        rows, ordering=query.ordering, allowed=EQUIPMENT_ORDERINGS, cursor=query.cursor, limit=query.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


def _equipment(public_id: UUID) -> Equipment:
    row = selectors.equipment_get(str(public_id))
    if row is None:
        raise NotFound("Equipment not found.", code="equipment_not_found")
    return row


@router.get(
    "/equipment/{equipment_id}", response={200: EquipmentOut, **ERROR_RESPONSES}, summary="Get equipment"
)
def get_equipment(request: HttpRequest, equipment_id: UUID) -> Equipment:
    _reader(request)
    return _equipment(equipment_id)


@router.post("/equipment", response={201: EquipmentOut, **ERROR_RESPONSES}, summary="Register equipment")
def create_equipment(request: HttpRequest, payload: EquipmentIn) -> Status[Equipment]:
    values = payload.model_dump()
    values["customer_public_id"] = str(values.pop("customer_id"))
    equipment = installed_base.equipment_register(actor=_writer(request), **values)
    return Status(201, _equipment(equipment.public_id))


@router.patch(
    "/equipment/{equipment_id}", response={200: EquipmentOut, **ERROR_RESPONSES}, summary="Change equipment"
)
def update_equipment(request: HttpRequest, equipment_id: UUID, payload: EquipmentPatch) -> Equipment:
    changes = payload.model_dump(exclude_unset=True)
    installed_base.equipment_update(
        actor=_writer(request), equipment_public_id=str(equipment_id), changes=changes
    )
    return _equipment(equipment_id)


@router.post(
    "/equipment/{equipment_id}/retire",
    response={200: EquipmentOut, **ERROR_RESPONSES},
    summary="Retire equipment",
)
def retire_equipment(request: HttpRequest, equipment_id: UUID, payload: OptionalReasonIn) -> Equipment:
    installed_base.equipment_retire(
        actor=_writer(request), equipment_public_id=str(equipment_id), reason=payload.reason
    )
    return _equipment(equipment_id)


# ----------------------------------------------------------------------------------------------
# Work orders


@router.get("/work-orders", response={200: WorkOrderPage, **ERROR_RESPONSES}, summary="List work orders")
def list_work_orders(request: HttpRequest, query: Query[WorkOrderQuery]) -> dict[str, Any]:
    _reader(request)
    rows = selectors.work_order_list(
        status=query.status,
        open_only=query.open,
        technician_public_id=_str(query.technician_id),
        customer_id=_customer_id(query.customer_id),
        date_from=query.date_from,
        date_to=query.date_to,
        search=query.search,
    )
    page = paginate(rows, ordering=query.ordering, allowed=ORDERINGS, cursor=query.cursor, limit=query.limit)
    return {"items": page.items, "next_cursor": page.next_cursor, "counts": selectors.work_order_counts(rows)}


def _work_order(public_id: UUID | str) -> WorkOrder:
    row = selectors.work_order_get(str(public_id))
    if row is None:
        raise NotFound("Work order not found.", code="work_order_not_found")
    return row


@router.get(
    "/work-orders/{work_order_id}",
    response={200: WorkOrderDetailOut, **ERROR_RESPONSES},
    summary="Get a work order with its history",
)
def get_work_order(request: HttpRequest, work_order_id: UUID) -> WorkOrder:
    _reader(request)
    return _work_order(work_order_id)


@router.post(
    "/work-orders", response={201: WorkOrderDetailOut, **ERROR_RESPONSES}, summary="Create a work order"
)
def create_work_order(request: HttpRequest, payload: WorkOrderIn) -> Status[WorkOrder]:
    order = work_orders.work_order_create(
        actor=_writer(request),
        customer_public_id=str(payload.customer_id),
        summary=payload.summary,
        description=payload.description,
        kind=payload.kind,
        priority=payload.priority,
        equipment_public_id=_str(payload.equipment_id),
        ticket_public_id=_str(payload.ticket_id),
        technician_public_id=_str(payload.technician_id),
        window_start=payload.window_start,
        window_end=payload.window_end,
    )
    return Status(201, _work_order(order.public_id))


TRANSITION_RESPONSE = {200: WorkOrderDetailOut, **ERROR_RESPONSES}


@router.post("/work-orders/{work_order_id}/schedule", response=TRANSITION_RESPONSE, summary="Schedule")
def schedule_work_order(request: HttpRequest, work_order_id: UUID, payload: ScheduleIn) -> WorkOrder:
    work_orders.work_order_schedule(
        actor=_writer(request),
        work_order_public_id=str(work_order_id),
        window_start=payload.window_start,
        window_end=payload.window_end,
        technician_public_id=_str(payload.technician_id),
    )
    return _work_order(work_order_id)


@router.post("/work-orders/{work_order_id}/assign", response=TRANSITION_RESPONSE, summary="Assign")
def assign_work_order(request: HttpRequest, work_order_id: UUID, payload: AssignIn) -> WorkOrder:
    work_orders.work_order_assign(
        actor=_writer(request),
        work_order_public_id=str(work_order_id),
        technician_public_id=_str(payload.technician_id),
    )
    return _work_order(work_order_id)


@router.post("/work-orders/{work_order_id}/dispatch", response=TRANSITION_RESPONSE, summary="Dispatch")
def dispatch_work_order(request: HttpRequest, work_order_id: UUID, payload: EtaIn) -> WorkOrder:
    work_orders.work_order_dispatch(
        actor=_writer(request), work_order_public_id=str(work_order_id), eta=payload.eta
    )
    return _work_order(work_order_id)


@router.post("/work-orders/{work_order_id}/en-route", response=TRANSITION_RESPONSE, summary="En route")
def en_route_work_order(request: HttpRequest, work_order_id: UUID, payload: RequiredEtaIn) -> WorkOrder:
    work_orders.work_order_en_route(
        actor=_writer(request), work_order_public_id=str(work_order_id), eta=payload.eta
    )
    return _work_order(work_order_id)


@router.post("/work-orders/{work_order_id}/start", response=TRANSITION_RESPONSE, summary="Start work")
def start_work_order(request: HttpRequest, work_order_id: UUID) -> WorkOrder:
    work_orders.work_order_start(actor=_writer(request), work_order_public_id=str(work_order_id))
    return _work_order(work_order_id)


@router.post("/work-orders/{work_order_id}/hold", response=TRANSITION_RESPONSE, summary="Put on hold")
def hold_work_order(request: HttpRequest, work_order_id: UUID, payload: ReasonIn) -> WorkOrder:
    work_orders.work_order_hold(
        actor=_writer(request), work_order_public_id=str(work_order_id), reason=payload.reason
    )
    return _work_order(work_order_id)


@router.post("/work-orders/{work_order_id}/complete", response=TRANSITION_RESPONSE, summary="Complete")
def complete_work_order(request: HttpRequest, work_order_id: UUID, payload: ResolutionIn) -> WorkOrder:
    work_orders.work_order_complete(
        actor=_writer(request), work_order_public_id=str(work_order_id), resolution=payload.resolution
    )
    return _work_order(work_order_id)


@router.post("/work-orders/{work_order_id}/cancel", response=TRANSITION_RESPONSE, summary="Cancel")
def cancel_work_order(request: HttpRequest, work_order_id: UUID, payload: ReasonIn) -> WorkOrder:
    work_orders.work_order_cancel(
        actor=_writer(request), work_order_public_id=str(work_order_id), reason=payload.reason
    )
    return _work_order(work_order_id)
