"""Field service pages: work orders (list with filters and counts, detail with history and the actions
the state machine allows, create), equipment (list, detail with warranty and work orders, register)
and technicians (list, add). Technicians read these on their phones: every page is one column on a
small screen, and a technician's list opens on their own work orders."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.field_service import selectors
from fedele.field_service.contracts import CLOSED_STATUSES, EquipmentStatus
from fedele.field_service.models import (
    EQUIPMENT_STATUS_LABELS,
    WORK_ORDER_STATUS_LABELS,
    Equipment,
    WorkOrder,
)
from fedele.field_service.services import installed_base, work_orders
from fedele.field_service.services.common import MANAGE, VIEW, WORK
from fedele.field_service.web.forms import EquipmentForm, TechnicianForm, WorkOrderCreateForm, local_moment
from fedele.shared import clock
from fedele.shared.errors import ApplicationError, NotFound, PermissionDenied
from fedele.shared.web.forms import apply_service_errors

ROME = ZoneInfo("Europe/Rome")
LIST_LIMIT = 200
TABLE_TARGET = "work-order-results"
STATUS_BADGES = {
    "new": "secondary",
    "scheduled": "info",
    "dispatched": "primary",
    "en_route": "primary",
    "in_progress": "warning",
    "on_hold": "dark",
    "completed": "success",
    "cancelled": "light",
}
PRIORITY_BADGES = {"low": "light", "normal": "secondary", "high": "warning", "urgent": "danger"}


def _staff(request: HttpRequest, permission: str = VIEW) -> Actor:
    actor = actor_for(request.user)
    if not actor.is_internal or not actor.can(permission):
        raise PermissionDenied(_("You do not have permission for this page."))
    return actor


def _parse_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _customer_from(reference: str) -> Any:
    """A customer by number (C-000123) or public id; None when unknown."""
    from fedele.customers.facade import customer_summary, find_customer_by_code

    value = (reference or "").strip()
    if not value:
        return None
    try:
        return customer_summary(str(UUID(value)))
    except ValueError:
        return find_customer_by_code(value)


def _technician_choices() -> list[tuple[str, str]]:
    return [(str(row.public_id), row.display_name) for row in selectors.technician_list(active=True)]


# ----------------------------------------------------------------------------------------------
# Work orders


@login_required
def work_order_list(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    params = request.GET
    own = selectors.technician_for_user(actor.user_id)
    # A technician who may not manage opens on their own work orders; anyone may switch.
    mine = params.get("mine", "1" if own is not None and not actor.can(MANAGE) else "") == "1"
    status = params.get("status", "")
    status = status if status in WORK_ORDER_STATUS_LABELS or status == "open" else ""
    technician = params.get("technician", "")
    search = params.get("q", "")[:100]
    date_from = _parse_date(params.get("from", ""))
    date_to = _parse_date(params.get("to", ""))
    filters: dict[str, Any] = {
        "q": search,
        "status": status,
        "technician": technician,
        "from": date_from,
        "to": date_to,
        "mine": mine,
    }
    base = selectors.work_order_list(
        technician_public_id=technician or None,
        technician_id=(own.pk if own else -1) if mine else None,
        date_from=date_from,
        date_to=date_to,
        search=search,
    )
    counts = selectors.work_order_counts(base)
    rows_query = base
    if status == "open":
        rows_query = base.exclude(status__in=CLOSED_STATUSES)
    elif status:
        rows_query = base.filter(status=status)
    rows = list(rows_query[: LIST_LIMIT + 1])
    context = {
        "rows": [
            (row, STATUS_BADGES[row.status], PRIORITY_BADGES[row.priority]) for row in rows[:LIST_LIMIT]
        ],
        "more": len(rows) > LIST_LIMIT,
        "filters": filters,
        "counts": [(key, WORK_ORDER_STATUS_LABELS[key], counts[key]) for key in WORK_ORDER_STATUS_LABELS],
        "open_count": sum(value for key, value in counts.items() if key not in CLOSED_STATUSES),
        "status_labels": WORK_ORDER_STATUS_LABELS,
        "technicians": _technician_choices(),
        "is_technician": own is not None,
        "table_target": TABLE_TARGET,
        "can_manage": actor.can(MANAGE),
    }
    htmx = getattr(request, "htmx", None)
    if htmx and getattr(htmx, "target", None) == TABLE_TARGET:
        return render(request, "field_service/partials/_work_order_table.html", context)
    return render(request, "field_service/work_order_list.html", context)


def _work_order_or_404(public_id: UUID) -> WorkOrder:
    row = selectors.work_order_get(str(public_id))
    if row is None:
        raise NotFound(_("Work order not found."), code="work_order_not_found")
    return row


def _can_work(actor: Actor, order: WorkOrder) -> bool:
    if actor.can(MANAGE):
        return True
    return actor.can(WORK) and order.technician is not None and order.technician.user_id == actor.user_id


@login_required
def work_order_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = _staff(request)
    order = _work_order_or_404(public_id)
    from fedele.customers.facade import customer_summary

    actions = work_orders.allowed_actions(order) if order.is_open else []
    if not actor.can(MANAGE):
        actions = (
            [name for name in actions if name in work_orders.TECHNICIAN_ACTIONS]
            if _can_work(actor, order)
            else []
        )
    local_start = order.window_start.astimezone(ROME) if order.window_start else None
    local_end = order.window_end.astimezone(ROME) if order.window_end else None
    return render(
        request,
        "field_service/work_order_detail.html",
        {
            "order": order,
            "customer": customer_summary(str(order.customer.public_id)),
            "history": list(order.history.all()),
            "actions": actions,
            "can_assign": actor.can(MANAGE) and order.status in work_orders.ASSIGNABLE,
            "technicians": _technician_choices(),
            "status_badge": STATUS_BADGES[order.status],
            "priority_badge": PRIORITY_BADGES[order.priority],
            "window_day": local_start.date().isoformat() if local_start else "",
            "window_from": local_start.strftime("%H:%M") if local_start else "",
            "window_to": local_end.strftime("%H:%M") if local_end else "",
            "eta_default": clock.local(clock.now(), "Europe/Rome").strftime("%Y-%m-%dT%H:%M"),
            "under_warranty": order.equipment.under_warranty_on(clock.today()) if order.equipment else False,
        },
    )


def _local_datetime(value: str) -> datetime | None:
    """A datetime-local value ("2026-03-10T14:30") in Europe/Rome; None when empty or malformed."""
    try:
        moment = datetime.fromisoformat(value.strip()) if value and value.strip() else None
    except ValueError:
        return None
    return moment.replace(tzinfo=ROME) if moment is not None and moment.tzinfo is None else moment


def _window_from_post(data: Any) -> tuple[datetime | None, datetime | None]:
    day = _parse_date(data.get("day", ""))

    def at(name: str) -> Any:
        try:
            return time.fromisoformat(data.get(name, "").strip())
        except ValueError:
            return None

    return local_moment(day, at("start_time")), local_moment(day, at("end_time"))


@login_required
@require_POST
def work_order_action(request: HttpRequest, public_id: UUID, action: str) -> HttpResponse:
    actor = _staff(request)
    key = str(public_id)
    data = request.POST
    try:
        if action == "schedule":
            start, end = _window_from_post(data)
            order = work_orders.work_order_schedule(
                actor=actor,
                work_order_public_id=key,
                window_start=start,
                window_end=end,
                technician_public_id=data.get("technician") or None,
            )
        elif action == "assign":
            order = work_orders.work_order_assign(
                actor=actor, work_order_public_id=key, technician_public_id=data.get("technician") or None
            )
        elif action == "dispatch":
            order = work_orders.work_order_dispatch(
                actor=actor, work_order_public_id=key, eta=_local_datetime(data.get("eta", ""))
            )
        elif action == "en_route":
            order = work_orders.work_order_en_route(
                actor=actor, work_order_public_id=key, eta=_local_datetime(data.get("eta", ""))
            )
        elif action == "start":
            order = work_orders.work_order_start(actor=actor, work_order_public_id=key)
        elif action == "hold":
            order = work_orders.work_order_hold(
                actor=actor, work_order_public_id=key, reason=data.get("reason", "")
            )
        elif action == "complete":
            order = work_orders.work_order_complete(
                actor=actor, work_order_public_id=key, resolution=data.get("resolution", "")
            )
        elif action == "cancel":
            order = work_orders.work_order_cancel(
                actor=actor, work_order_public_id=key, reason=data.get("reason", "")
            )
        else:
            raise NotFound(_("Unknown action."))
    except (PermissionDenied, NotFound):
        raise
    except ApplicationError as problem:
        details = "; ".join(_(message) for messages_ in problem.fields.values() for message in messages_)
        messages.error(request, f"{_(problem.message)} {details}".strip())
        return redirect("field_service:work_order_detail", public_id=public_id)
    messages.success(
        request,
        _("Work order %(number)s: %(status)s.") % {"number": order.number, "status": order.status_label},
    )
    return redirect("field_service:work_order_detail", public_id=public_id)


@login_required
@require_http_methods(["GET", "POST"])
def work_order_create(request: HttpRequest) -> HttpResponse:
    actor = _staff(request, MANAGE)
    source = request.POST if request.method == "POST" else request.GET
    customer = _customer_from(source.get("customer", ""))
    equipment_choices = []
    if customer is not None:
        equipment_choices = [
            (str(row.public_id), f"{row.name} · {row.serial_number}")
            for row in selectors.equipment_list(
                customer_id=customer.customer_id,
                status=[EquipmentStatus.ACTIVE, EquipmentStatus.UNDER_REPAIR],
            )
        ]
    choices = {"equipment_choices": equipment_choices, "technician_choices": _technician_choices()}
    if request.method == "POST":
        form = WorkOrderCreateForm(request.POST, **choices)
        if form.is_valid():
            data = form.cleaned_data
            if customer is None:
                form.add_error("customer", _("Customer not found."))
            else:
                start, end = form.window()
                try:
                    order = work_orders.work_order_create(
                        actor=actor,
                        customer_public_id=str(customer.public_id),
                        summary=data["summary"],
                        description=data["description"],
                        kind=data["kind"],
                        priority=data["priority"],
                        equipment_public_id=data["equipment"] or None,
                        ticket_public_id=str(data["ticket"]) if data["ticket"] else None,
                        window_start=start,
                        window_end=end,
                        technician_public_id=data["technician"] or None,
                    )
                except ApplicationError as problem:
                    if isinstance(problem, PermissionDenied):
                        raise
                    _map_window_errors(problem)
                    apply_service_errors(form, problem)
                else:
                    messages.success(request, _("Work order %(number)s created.") % {"number": order.number})
                    return redirect("field_service:work_order_detail", public_id=order.public_id)
        form.mark_errors()
    else:
        initial: dict[str, Any] = {}
        if customer is not None:
            initial["customer"] = customer.number
        if source.get("equipment"):
            initial["equipment"] = source.get("equipment")
        if source.get("ticket"):
            initial["ticket"] = source.get("ticket")
        form = WorkOrderCreateForm(initial=initial, **choices)
    return render(request, "field_service/work_order_form.html", {"form": form, "customer": customer})


def _map_window_errors(problem: ApplicationError) -> None:
    """The services name the window's datetimes; the form has a day and two times."""
    renames = {
        "window_start": "start_time",
        "window_end": "end_time",
        "customer_id": "customer",
        "equipment_id": "equipment",
        "ticket_id": "ticket",
        "technician_id": "technician",
    }
    problem.fields = {renames.get(name, name): value for name, value in problem.fields.items()}


# ----------------------------------------------------------------------------------------------
# Equipment


@login_required
def equipment_list(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    params = request.GET
    status = params.get("status", "")
    status = status if status in EQUIPMENT_STATUS_LABELS else ""
    customer = _customer_from(params.get("customer", ""))
    filters = {"q": params.get("q", "")[:100], "status": status, "category": params.get("category", "")[:40]}
    rows_query = selectors.equipment_list(
        customer_id=customer.customer_id if customer else None,
        status=status or None,
        category=filters["category"],
        search=filters["q"],
    )
    rows = list(rows_query[: LIST_LIMIT + 1])
    today = clock.today()
    return render(
        request,
        "field_service/equipment_list.html",
        {
            "rows": [(row, row.under_warranty_on(today)) for row in rows[:LIST_LIMIT]],
            "more": len(rows) > LIST_LIMIT,
            "filters": filters,
            "customer": customer,
            "status_labels": EQUIPMENT_STATUS_LABELS,
            "can_manage": actor.can(MANAGE),
        },
    )


def _equipment_or_404(public_id: UUID) -> Equipment:
    row = selectors.equipment_get(str(public_id))
    if row is None:
        raise NotFound(_("Equipment not found."), code="equipment_not_found")
    return row


@login_required
def equipment_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = _staff(request)
    equipment = _equipment_or_404(public_id)
    if request.method == "POST":
        _staff(request, MANAGE)
        try:
            installed_base.equipment_retire(
                actor=actor, equipment_public_id=str(public_id), reason=request.POST.get("reason", "")
            )
        except (PermissionDenied, NotFound):
            raise
        except ApplicationError as problem:
            messages.error(request, _(problem.message))
        else:
            messages.success(request, _("The unit is retired."))
        return redirect("field_service:equipment_detail", public_id=public_id)
    from fedele.customers.facade import customer_summary

    return render(
        request,
        "field_service/equipment_detail.html",
        {
            "equipment": equipment,
            "customer": customer_summary(str(equipment.customer.public_id)),
            "under_warranty": equipment.under_warranty_on(clock.today()),
            "orders": [
                (row, STATUS_BADGES[row.status])
                for row in selectors.work_order_list(equipment_id=equipment.pk).order_by("-id")[:50]
            ],
            "can_manage": actor.can(MANAGE),
            "retired": equipment.status == EquipmentStatus.RETIRED,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def equipment_create(request: HttpRequest) -> HttpResponse:
    actor = _staff(request, MANAGE)
    if request.method == "POST":
        form = EquipmentForm(request.POST)
        if form.is_valid():
            data = dict(form.cleaned_data)
            customer = _customer_from(data.pop("customer"))
            if customer is None:
                form.add_error("customer", _("Customer not found."))
            else:
                try:
                    equipment = installed_base.equipment_register(
                        actor=actor, customer_public_id=str(customer.public_id), **data
                    )
                except ApplicationError as problem:
                    if isinstance(problem, PermissionDenied):
                        raise
                    apply_service_errors(form, problem)
                else:
                    messages.success(
                        request, _("Equipment %(serial)s registered.") % {"serial": equipment.serial_number}
                    )
                    return redirect("field_service:equipment_detail", public_id=equipment.public_id)
        form.mark_errors()
    else:
        customer = _customer_from(request.GET.get("customer", ""))
        form = EquipmentForm(initial={"customer": customer.number} if customer else {})
    return render(request, "field_service/equipment_form.html", {"form": form})


# ----------------------------------------------------------------------------------------------
# Technicians


@login_required
@require_http_methods(["GET", "POST"])
def technician_list(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    form = TechnicianForm()
    if request.method == "POST":
        _staff(request, MANAGE)
        form = TechnicianForm(request.POST)
        if form.is_valid():
            try:
                technician = installed_base.technician_create(actor=actor, **form.cleaned_data)
            except ApplicationError as problem:
                if isinstance(problem, PermissionDenied):
                    raise
                apply_service_errors(form, problem)
            else:
                messages.success(request, _("%(name)s added.") % {"name": technician.display_name})
                return redirect("field_service:technician_list")
        form.mark_errors()
    today_start = clock.today()
    rows = list(selectors.technician_list())
    todays = Counter(
        row.technician_id
        for row in selectors.work_order_list(date_from=today_start, date_to=today_start, open_only=True)
        if row.technician_id is not None
    )
    return render(
        request,
        "field_service/technician_list.html",
        {
            "rows": [(row, todays.get(row.pk, 0)) for row in rows],
            "form": form,
            "can_manage": actor.can(MANAGE),
        },
    )
