"""Work orders: creation (numbered WO-<year>-000001 from a gapless series per Europe/Rome year) and the
state machine below. Every action is one transaction: the work order is locked, the move checked
against ``TRANSITIONS`` (a move not listed is a Conflict ``invalid_transition`` and changes nothing),
the history line, the audit row and the outbox events written together.

    new ──schedule──▶ scheduled ──dispatch──▶ dispatched ──en route──▶ en_route ──start──▶ in_progress
     │                 ▲  │  ▲                  │  │                     │                   │   │
     │                 │  │  └──(re)schedule────┘  └────────start────────┼──────────────────▶│   │
     │                 │  ▼                                              ▼                   ▼   ▼
     └──hold──▶ on_hold ◀──────────────────────── hold (any open status) ─────────── completed  on_hold
    cancel: from any open status but in_progress (put it on hold first: the technician is on site).

A technician is never booked into two overlapping windows of work orders that are scheduled, dispatched,
en route or in progress (Conflict ``technician_double_booked``): the technician's row is locked while
the windows are compared, so two dispatchers booking the same person at once cannot both succeed.
Windows are compared and measured in real time (UTC): a window across the DST change night is as long
as the clock says, not as the wall clock says.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.customers.facade import customer_summary
from fedele.field_service.contracts import (
    EquipmentStatus,
    WorkOrderKind,
    WorkOrderPriority,
    WorkOrderStatus,
)
from fedele.field_service.events import WorkOrderCompleted, WorkOrderUpdated
from fedele.field_service.models import Equipment, Technician, WorkOrder, WorkOrderEvent
from fedele.field_service.services import common
from fedele.field_service.services.installed_base import _uuid_or_none
from fedele.shared import audit, clock, events, sequences
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

S = WorkOrderStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.SCHEDULED, S.ON_HOLD, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.SCHEDULED, S.DISPATCHED, S.ON_HOLD, S.CANCELLED}),
    S.DISPATCHED: frozenset({S.SCHEDULED, S.EN_ROUTE, S.IN_PROGRESS, S.ON_HOLD, S.CANCELLED}),
    S.EN_ROUTE: frozenset({S.EN_ROUTE, S.IN_PROGRESS, S.ON_HOLD, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.ON_HOLD, S.COMPLETED}),
    S.ON_HOLD: frozenset({S.SCHEDULED, S.IN_PROGRESS, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}
ACTION_TARGETS = {
    "schedule": S.SCHEDULED.value,
    "dispatch": S.DISPATCHED.value,
    "en_route": S.EN_ROUTE.value,
    "start": S.IN_PROGRESS.value,
    "hold": S.ON_HOLD.value,
    "complete": S.COMPLETED.value,
    "cancel": S.CANCELLED.value,
}
ASSIGNABLE = frozenset({S.NEW.value, S.SCHEDULED.value, S.ON_HOLD.value})
BOOKED = frozenset({S.SCHEDULED.value, S.DISPATCHED.value, S.EN_ROUTE.value, S.IN_PROGRESS.value})
"""Statuses whose window keeps the technician busy (an order on hold frees its window)."""
TECHNICIAN_ACTIONS = frozenset({"en_route", "start", "hold", "complete"})
"""What a technician may do on their own work orders with only ``work_field_service``."""
MAX_WINDOW = timedelta(hours=12)
ETA_TOLERANCE = timedelta(minutes=15)
ETA_HORIZON = timedelta(days=7)
SERIES_PREFIX = "WO"


def allowed_actions(work_order: WorkOrder) -> list[str]:
    """The transition actions the state machine allows now (the page shows these buttons)."""
    targets = TRANSITIONS[work_order.status]
    return [action for action, target in ACTION_TARGETS.items() if target in targets]


# ----------------------------------------------------------------------------------------------
# Validation


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationFailed(_("The date and time are not valid."), fields={field: _("Not valid.")})
    if timezone.is_naive(value):
        raise ValidationFailed(
            _("The date and time need a time zone."),
            code="naive_datetime",
            fields={field: _("Give the time zone offset.")},
        )
    return value.astimezone(UTC)


def _window(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    window_start = _aware(start, "window_start")
    window_end = _aware(end, "window_end")
    if window_start is None or window_end is None:
        missing = {
            name: _("Required.")
            for name, value in (("window_start", start), ("window_end", end))
            if not value
        }
        raise ValidationFailed(
            _("The appointment window needs a start and an end."), code="window_required", fields=missing
        )
    if window_end <= window_start:
        raise ValidationFailed(
            _("The window must end after it starts."),
            code="window_end_before_start",
            fields={"window_end": _("After the start.")},
        )
    if window_end - window_start > MAX_WINDOW:
        raise ValidationFailed(
            _("An appointment window lasts at most 12 hours."),
            code="window_too_long",
            fields={"window_end": _("At most 12 hours after the start.")},
        )
    if window_end <= now:
        raise ValidationFailed(
            _("The appointment window is already over."),
            code="window_in_past",
            fields={"window_end": _("In the future.")},
        )
    return window_start, window_end


def _eta(value: datetime | None, now: datetime, *, required: bool) -> datetime | None:
    eta = _aware(value, "eta")
    if eta is None:
        if required:
            raise ValidationFailed(
                _("Give the expected arrival time."), code="eta_required", fields={"eta": _("Required.")}
            )
        return None
    if eta < now - ETA_TOLERANCE:
        raise ValidationFailed(
            _("The expected arrival is in the past."), code="eta_in_past", fields={"eta": _("In the future.")}
        )
    if eta > now + ETA_HORIZON:
        raise ValidationFailed(
            _("The expected arrival is more than a week away."),
            code="eta_too_far",
            fields={"eta": _("Within the next 7 days.")},
        )
    return eta


def _choice(value: str, allowed: type[WorkOrderKind] | type[WorkOrderPriority], field: str) -> str:
    if value not in {member.value for member in allowed}:
        raise ValidationFailed(
            _("The value is not valid."), code=f"invalid_{field}", fields={field: _("Not valid.")}
        )
    return value


def _technician(public_id: str | None, *, lock: bool) -> Technician | None:
    if public_id in (None, ""):
        return None
    key = _uuid_or_none(public_id)
    rows = Technician.objects.select_for_update() if lock else Technician.objects.all()
    technician = rows.filter(public_id=key).first() if key else None
    if technician is None:
        raise ValidationFailed(
            _("Technician not found."), code="technician_not_found", fields={"technician_id": _("Not found.")}
        )
    if not technician.active:
        raise ValidationFailed(
            _("The technician is not active."),
            code="technician_inactive",
            fields={"technician_id": _("Not active.")},
        )
    return technician


def _lock_technician_row(technician: Technician) -> None:
    """Serialise bookings of one technician (see the module doc)."""
    Technician.objects.select_for_update().filter(pk=technician.pk).values_list("pk", flat=True).first()


def _check_free(technician: Technician, start: datetime, end: datetime, *, exclude_pk: int | None) -> None:
    _lock_technician_row(technician)
    overlapping = WorkOrder.objects.filter(
        technician=technician, status__in=BOOKED, window_start__lt=end, window_end__gt=start
    )
    if exclude_pk is not None:
        overlapping = overlapping.exclude(pk=exclude_pk)
    clash = overlapping.order_by("window_start", "id").first()
    if clash is not None:
        raise Conflict(
            _("%(name)s already has work order %(number)s in that window.")
            % {"name": technician.display_name, "number": clash.number},
            code="technician_double_booked",
            fields={"technician_id": _("Already booked in that window.")},
        )


def _equipment(public_id: str | None, customer_id: int) -> Equipment | None:
    if public_id in (None, ""):
        return None
    key = _uuid_or_none(public_id)
    equipment = Equipment.objects.filter(public_id=key).first() if key else None
    if equipment is None:
        raise ValidationFailed(
            _("Equipment not found."), code="equipment_not_found", fields={"equipment_id": _("Not found.")}
        )
    if equipment.customer_id != customer_id:
        raise ValidationFailed(
            _("The equipment belongs to another customer."),
            code="equipment_of_another_customer",
            fields={"equipment_id": _("Not this customer's.")},
        )
    if equipment.status == EquipmentStatus.RETIRED.value:
        raise ValidationFailed(
            _("The equipment is retired."), code="equipment_retired", fields={"equipment_id": _("Retired.")}
        )
    return equipment


def _ticket(public_id: str | None, customer_public_id: str) -> str | None:
    if public_id in (None, ""):
        return None
    from fedele.support.facade import ticket_summary

    key = _uuid_or_none(public_id)
    ticket = ticket_summary(key) if key else None
    if ticket is None:
        raise ValidationFailed(
            _("Support ticket not found."), code="ticket_not_found", fields={"ticket_id": _("Not found.")}
        )
    if ticket.customer_public_id is not None and str(ticket.customer_public_id) != customer_public_id:
        raise ValidationFailed(
            _("The ticket belongs to another customer."),
            code="ticket_of_another_customer",
            fields={"ticket_id": _("Not this customer's.")},
        )
    return str(ticket.public_id)


# ----------------------------------------------------------------------------------------------
# Writing: history, audit, events


def _snapshot(work_order: WorkOrder) -> dict[str, Any]:
    return {
        "status": work_order.status,
        "priority": work_order.priority,
        "window_start": work_order.window_start,
        "window_end": work_order.window_end,
        "technician_id": work_order.technician_id,
        "eta": work_order.eta,
        "equipment_id": work_order.equipment_id,
        "ticket_public_id": work_order.ticket_public_id,
        "resolution": work_order.resolution,
        "hold_reason": work_order.hold_reason,
        "cancellation_reason": work_order.cancellation_reason,
    }


def _technician_name(work_order: WorkOrder) -> str | None:
    technician = work_order.technician
    return technician.display_name if technician is not None else None


def _customer_public_id(work_order: WorkOrder) -> str:
    return str(work_order.customer.public_id)


def _publish(work_order: WorkOrder) -> None:
    aggregate_id = str(work_order.public_id)
    events.publish(
        WorkOrderUpdated(
            work_order_id=aggregate_id,
            number=work_order.number,
            status=work_order.status,
            customer_id=_customer_public_id(work_order),
            ticket_id=str(work_order.ticket_public_id) if work_order.ticket_public_id else None,
            summary=work_order.summary,
            scheduled_for=work_order.window_start.astimezone(UTC).isoformat()
            if work_order.window_start
            else None,
            technician_name=_technician_name(work_order),
        ),
        aggregate_type="field_service.work_order",
        aggregate_id=aggregate_id,
    )
    if work_order.status == S.COMPLETED and work_order.completed_at is not None:
        events.publish(
            WorkOrderCompleted(
                work_order_id=aggregate_id,
                number=work_order.number,
                customer_id=_customer_public_id(work_order),
                equipment_id=str(work_order.equipment.public_id) if work_order.equipment else None,
                ticket_id=str(work_order.ticket_public_id) if work_order.ticket_public_id else None,
                kind=work_order.kind,
                technician_name=_technician_name(work_order),
                completed_at=work_order.completed_at.astimezone(UTC).isoformat(),
                resolution=work_order.resolution,
            ),
            aggregate_type="field_service.work_order",
            aggregate_id=aggregate_id,
        )


def _history(
    work_order: WorkOrder, *, actor: Actor | None, action: str, from_status: str, note: str, at: datetime
) -> None:
    WorkOrderEvent.objects.create(
        work_order=work_order,
        at=at,
        actor_id=common.actor_id(actor),
        actor_label=common.actor_label(actor),
        action=action,
        from_status=from_status,
        to_status=work_order.status,
        note=note,
    )


def _lock(public_id: str) -> WorkOrder:
    key = _uuid_or_none(public_id)
    # Only the work order's row is locked: PostgreSQL refuses FOR UPDATE on the nullable side of a join.
    work_order = (
        WorkOrder.objects.select_for_update(of=("self",))
        .select_related("customer", "technician", "equipment")
        .filter(public_id=key)
        .first()
        if key
        else None
    )
    if work_order is None:
        raise NotFound(_("Work order not found."), code="work_order_not_found")
    return work_order


def _authorise(actor: Actor | None, work_order: WorkOrder, action: str) -> None:
    if actor is None or (actor.is_internal and actor.can(common.MANAGE)):
        return
    technician = work_order.technician
    if (
        action in TECHNICIAN_ACTIONS
        and actor.is_internal
        and actor.can(common.WORK)
        and technician is not None
        and technician.user_id == actor.user_id
    ):
        return
    raise PermissionDenied(_("You do not have permission for this action."), code="permission_denied")


def _refuse_transition(work_order: WorkOrder, target: str) -> Conflict:
    from fedele.field_service.models import WORK_ORDER_STATUS_LABELS

    return Conflict(
        _("Work order %(number)s is %(current)s: it cannot become %(target)s.")
        % {
            "number": work_order.number,
            "current": work_order.status_label,
            "target": WORK_ORDER_STATUS_LABELS.get(target, target),
        },
        code="invalid_transition",
    )


Mutation = Callable[[WorkOrder, datetime], str]


def _transition(
    *, actor: Actor | None, work_order_public_id: str, action: str, target: str, mutate: Mutation
) -> WorkOrder:
    """Lock, authorise, check the move, let ``mutate`` validate and change fields (returning the note
    for the history), then save, write history and audit and publish; all or nothing."""
    with transaction.atomic():
        work_order = _lock(work_order_public_id)
        _authorise(actor, work_order, action)
        if target not in TRANSITIONS[work_order.status]:
            raise _refuse_transition(work_order, target)
        before = _snapshot(work_order)
        from_status = work_order.status
        now = clock.now()
        note = mutate(work_order, now)
        work_order.status = target
        work_order.updated_at = now
        work_order.save()
        _history(work_order, actor=actor, action=action, from_status=from_status, note=note, at=now)
        audit.record(
            action=f"field_service.work_order_{action}",
            object_type="field_service.work_order",
            object_id=str(work_order.public_id),
            before=before,
            after=_snapshot(work_order),
            actor_id=common.actor_id(actor),
        )
        _publish(work_order)
    return work_order


def _window_note(start: datetime, end: datetime) -> str:
    local_start = clock.local(start, common.BUSINESS_TZ)
    local_end = clock.local(end, common.BUSINESS_TZ)
    return f"{local_start:%Y-%m-%d %H:%M}–{local_end:%Y-%m-%d %H:%M} ({common.BUSINESS_TZ})"


# ----------------------------------------------------------------------------------------------
# Actions


def work_order_create(
    *,
    actor: Actor | None,
    customer_public_id: str,
    summary: str,
    kind: str = WorkOrderKind.REPAIR.value,
    priority: str = WorkOrderPriority.NORMAL.value,
    description: str = "",
    equipment_public_id: str | None = None,
    ticket_public_id: str | None = None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    technician_public_id: str | None = None,
) -> WorkOrder:
    """A new work order; with a window it is scheduled at once (and checked for double booking)."""
    common.require(actor, common.MANAGE)
    customer = customer_summary(str(customer_public_id)) if _uuid_or_none(customer_public_id) else None
    if customer is None:
        raise ValidationFailed(
            _("Customer not found."), code="customer_not_found", fields={"customer_id": _("Not found.")}
        )
    title = common.text(summary, "summary", max_length=200, required=True)
    details = common.text(description, "description", max_length=10000)
    kind = _choice(kind, WorkOrderKind, "kind")
    priority = _choice(priority, WorkOrderPriority, "priority")
    ticket = _ticket(ticket_public_id, str(customer.public_id))
    now = clock.now()
    window: tuple[datetime, datetime] | None = None
    if window_start is not None or window_end is not None:
        window = _window(window_start, window_end, now)
    with transaction.atomic():
        equipment = _equipment(equipment_public_id, customer.customer_id)
        technician = _technician(technician_public_id, lock=False)
        if technician is not None and window is not None:
            _check_free(technician, *window, exclude_pk=None)
        year = clock.local(now, common.BUSINESS_TZ).year
        work_order = WorkOrder.objects.create(
            number=sequences.next_number(SERIES_PREFIX, year=year),
            customer_id=customer.customer_id,
            equipment=equipment,
            ticket_public_id=ticket,
            kind=kind,
            summary=title,
            description=details,
            priority=priority,
            status=S.SCHEDULED.value if window is not None else S.NEW.value,
            window_start=window[0] if window else None,
            window_end=window[1] if window else None,
            technician=technician,
            created_by_id=common.actor_id(actor),
            created_at=now,
            updated_at=now,
        )
        _history(
            work_order,
            actor=actor,
            action="create",
            from_status="",
            note=_window_note(*window) if window else "",
            at=now,
        )
        audit.record(
            action="field_service.work_order_created",
            object_type="field_service.work_order",
            object_id=str(work_order.public_id),
            after={**_snapshot(work_order), "number": work_order.number, "customer_id": customer.customer_id},
            actor_id=common.actor_id(actor),
        )
        _publish(work_order)
    return work_order


def work_order_schedule(
    *,
    actor: Actor | None,
    work_order_public_id: str,
    window_start: datetime | None,
    window_end: datetime | None,
    technician_public_id: str | None = None,
) -> WorkOrder:
    """Set (or move) the appointment window; optionally (re)assign the technician. A dispatched order
    goes back to scheduled: its ETA no longer holds."""
    common.require(actor, common.MANAGE)

    def mutate(work_order: WorkOrder, now: datetime) -> str:
        start, end = _window(window_start, window_end, now)
        technician = (
            _technician(technician_public_id, lock=False) if technician_public_id else work_order.technician
        )
        if technician is not None:
            _check_free(technician, start, end, exclude_pk=work_order.pk)
        work_order.window_start, work_order.window_end = start, end
        work_order.technician = technician
        work_order.eta = None
        work_order.hold_reason = ""
        return _window_note(start, end)

    return _transition(
        actor=actor,
        work_order_public_id=work_order_public_id,
        action="schedule",
        target=S.SCHEDULED,
        mutate=mutate,
    )


def work_order_assign(
    *, actor: Actor | None, work_order_public_id: str, technician_public_id: str | None
) -> WorkOrder:
    """Give the work order to a technician (None: nobody). Only before dispatch (new, scheduled, on hold):
    a dispatched order is rescheduled with its new technician instead."""
    common.require(actor, common.MANAGE)
    with transaction.atomic():
        work_order = _lock(work_order_public_id)
        if work_order.status not in ASSIGNABLE:
            raise Conflict(
                _("Work order %(number)s is %(status)s: reschedule it to change the technician.")
                % {"number": work_order.number, "status": work_order.status_label},
                code="invalid_transition",
            )
        technician = _technician(technician_public_id, lock=False)
        if (
            technician is not None
            and work_order.status in BOOKED
            and work_order.window_start is not None
            and work_order.window_end is not None
        ):
            _check_free(technician, work_order.window_start, work_order.window_end, exclude_pk=work_order.pk)
        before = _snapshot(work_order)
        now = clock.now()
        work_order.technician = technician
        work_order.updated_at = now
        work_order.save()
        _history(
            work_order,
            actor=actor,
            action="assign",
            from_status=work_order.status,
            note=technician.display_name if technician else "",
            at=now,
        )
        audit.record(
            action="field_service.work_order_assign",
            object_type="field_service.work_order",
            object_id=str(work_order.public_id),
            before=before,
            after=_snapshot(work_order),
            actor_id=common.actor_id(actor),
        )
        _publish(work_order)
    return work_order


def work_order_dispatch(
    *, actor: Actor | None, work_order_public_id: str, eta: datetime | None = None
) -> WorkOrder:
    """Send the assigned technician (the order needs a window and a technician)."""
    common.require(actor, common.MANAGE)

    def mutate(work_order: WorkOrder, now: datetime) -> str:
        if work_order.technician is None:
            raise ValidationFailed(
                _("Assign a technician before dispatching."),
                code="technician_required",
                fields={"technician_id": _("Required.")},
            )
        if work_order.window_start is None:
            raise ValidationFailed(
                _("Schedule a window before dispatching."),
                code="window_required",
                fields={"window_start": _("Required.")},
            )
        work_order.eta = _eta(eta, now, required=False)
        work_order.dispatched_at = now
        return ""

    return _transition(
        actor=actor,
        work_order_public_id=work_order_public_id,
        action="dispatch",
        target=S.DISPATCHED,
        mutate=mutate,
    )


def work_order_en_route(*, actor: Actor | None, work_order_public_id: str, eta: datetime | None) -> WorkOrder:
    """The technician left for the site (again: a new ETA while en route)."""

    def mutate(work_order: WorkOrder, now: datetime) -> str:
        work_order.eta = _eta(eta, now, required=True)
        assert work_order.eta is not None
        return clock.local(work_order.eta, common.BUSINESS_TZ).strftime("ETA %Y-%m-%d %H:%M")

    return _transition(
        actor=actor,
        work_order_public_id=work_order_public_id,
        action="en_route",
        target=S.EN_ROUTE,
        mutate=mutate,
    )


def work_order_start(*, actor: Actor | None, work_order_public_id: str) -> WorkOrder:
    """Work begins on site (or resumes after a hold)."""

    def mutate(work_order: WorkOrder, now: datetime) -> str:
        if work_order.started_at is None:
            work_order.started_at = now
        work_order.hold_reason = ""
        return ""

    return _transition(
        actor=actor,
        work_order_public_id=work_order_public_id,
        action="start",
        target=S.IN_PROGRESS,
        mutate=mutate,
    )


def work_order_hold(*, actor: Actor | None, work_order_public_id: str, reason: str) -> WorkOrder:
    """Stop for now (waiting for parts, customer not home): the window no longer binds the technician."""
    note = common.text(reason, "reason", max_length=500, required=True)

    def mutate(work_order: WorkOrder, now: datetime) -> str:
        work_order.hold_reason = note
        work_order.eta = None
        return note

    return _transition(
        actor=actor, work_order_public_id=work_order_public_id, action="hold", target=S.ON_HOLD, mutate=mutate
    )


def work_order_complete(*, actor: Actor | None, work_order_public_id: str, resolution: str) -> WorkOrder:
    """The job is done; the resolution says what was found and done."""
    text = common.text(resolution, "resolution", max_length=10000, required=True)

    def mutate(work_order: WorkOrder, now: datetime) -> str:
        work_order.resolution = text
        work_order.completed_at = now
        return text

    return _transition(
        actor=actor,
        work_order_public_id=work_order_public_id,
        action="complete",
        target=S.COMPLETED,
        mutate=mutate,
    )


def work_order_cancel(*, actor: Actor | None, work_order_public_id: str, reason: str) -> WorkOrder:
    """Not needed any more (the customer fixed it, a duplicate). Frees the technician's window."""
    common.require(actor, common.MANAGE)
    note = common.text(reason, "reason", max_length=500, required=True)

    def mutate(work_order: WorkOrder, now: datetime) -> str:
        work_order.cancellation_reason = note
        work_order.cancelled_at = now
        work_order.eta = None
        return note

    return _transition(
        actor=actor,
        work_order_public_id=work_order_public_id,
        action="cancel",
        target=S.CANCELLED,
        mutate=mutate,
    )
