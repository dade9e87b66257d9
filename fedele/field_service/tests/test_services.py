"""Field service services: technicians, equipment (serials, warranty dates), work order numbering, the
state machine (every move allowed and refused), windows (12 h, DST nights), double booking."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.field_service.models import Equipment, Technician, WorkOrder, WorkOrderEvent, add_months
from fedele.field_service.services import installed_base, work_orders
from fedele.field_service.services.work_orders import TRANSITIONS
from fedele.field_service.tests.factories import EquipmentFactory, TechnicianFactory
from fedele.shared import sequences
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db
ROME = ZoneInfo("Europe/Rome")
NOW = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)  # 09:00 in Rome


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _length(order: WorkOrder) -> timedelta:
    assert order.window_start is not None and order.window_end is not None
    return order.window_end - order.window_start


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)


def _new_order(customer: Any = None, **kwargs: Any) -> WorkOrder:
    customer = customer or CustomerFactory()
    return work_orders.work_order_create(
        actor=None, customer_public_id=str(customer.public_id), summary="Caldaia in blocco", **kwargs
    )


def _scheduled(technician: Technician | None = None, **kwargs: Any) -> WorkOrder:
    technician = technician or TechnicianFactory()
    return _new_order(
        window_start=rome(2026, 3, 11, 9),
        window_end=rome(2026, 3, 11, 13),
        technician_public_id=str(technician.public_id),
        **kwargs,
    )


def _in_status(status: str) -> WorkOrder:
    """A work order moved through the real services into ``status``."""
    order = _new_order()
    key = str(order.public_id)
    if status == "new":
        return order
    if status == "on_hold":
        return work_orders.work_order_hold(actor=None, work_order_public_id=key, reason="Pezzo mancante")
    if status == "cancelled":
        return work_orders.work_order_cancel(actor=None, work_order_public_id=key, reason="Doppione")
    technician = TechnicianFactory()
    order = work_orders.work_order_schedule(
        actor=None,
        work_order_public_id=key,
        window_start=rome(2026, 3, 11, 9),
        window_end=rome(2026, 3, 11, 13),
        technician_public_id=str(technician.public_id),
    )
    if status == "scheduled":
        return order
    order = work_orders.work_order_dispatch(actor=None, work_order_public_id=key)
    if status == "dispatched":
        return order
    if status == "en_route":
        return work_orders.work_order_en_route(
            actor=None, work_order_public_id=key, eta=NOW + timedelta(minutes=40)
        )
    order = work_orders.work_order_start(actor=None, work_order_public_id=key)
    if status == "in_progress":
        return order
    assert status == "completed"
    return work_orders.work_order_complete(
        actor=None, work_order_public_id=key, resolution="Sostituita valvola"
    )


def _act(action: str, order: WorkOrder) -> WorkOrder:
    key = str(order.public_id)
    if action == "schedule":
        return work_orders.work_order_schedule(
            actor=None,
            work_order_public_id=key,
            window_start=rome(2026, 3, 12, 14),
            window_end=rome(2026, 3, 12, 18),
        )
    if action == "dispatch":
        return work_orders.work_order_dispatch(actor=None, work_order_public_id=key)
    if action == "en_route":
        return work_orders.work_order_en_route(
            actor=None, work_order_public_id=key, eta=NOW + timedelta(hours=1)
        )
    if action == "start":
        return work_orders.work_order_start(actor=None, work_order_public_id=key)
    if action == "hold":
        return work_orders.work_order_hold(actor=None, work_order_public_id=key, reason="Cliente assente")
    if action == "complete":
        return work_orders.work_order_complete(actor=None, work_order_public_id=key, resolution="Fatto")
    assert action == "cancel"
    return work_orders.work_order_cancel(actor=None, work_order_public_id=key, reason="Non serve più")


# ----------------------------------------------------------------------------------------------
# Warranty dates


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 2, 29), 48, date(2028, 2, 29)),
        (date(2025, 12, 15), 1, date(2026, 1, 15)),
        (date(2025, 3, 31), 11, date(2026, 2, 28)),
        (date(2026, 3, 1), 0, date(2026, 3, 1)),
        (date(2026, 3, 1), 600, date(2076, 3, 1)),
    ],
)
def test_add_months_clamps_to_the_month_end(start: date, months: int, end: date) -> None:
    assert add_months(start, months) == end


def test_equipment_register_with_warranty_months_on_31_january() -> None:
    customer = CustomerFactory(street="Via Po 3", postal_code="10123", city="Torino", province="to")
    equipment = installed_base.equipment_register(
        actor=None,
        customer_public_id=str(customer.public_id),
        serial_number="  vx-0001  ",
        name="Caldaia Vaillant ecoTEC plus 25",
        category="Boiler",
        installed_on=date(2026, 1, 31),
        warranty_months=1,
    )
    assert equipment.warranty_ends_on == date(2026, 2, 28)
    assert equipment.serial_number == "vx-0001"
    assert equipment.category == "boiler"
    # No site address given: the customer's own address.
    assert equipment.site_address == "Via Po 3, 10123 Torino (TO)"
    assert equipment.under_warranty_on(date(2026, 2, 28)) is True
    assert equipment.under_warranty_on(date(2026, 3, 1)) is False
    audit = AuditLog.objects.get(action="field_service.equipment_registered")
    assert audit.object_id == str(equipment.public_id)


def test_equipment_register_leap_day_plus_twelve_months() -> None:
    with time_machine.travel(datetime(2025, 3, 1, 10, tzinfo=UTC), tick=False):
        equipment = installed_base.equipment_register(
            actor=None,
            customer_public_id=str(CustomerFactory().public_id),
            serial_number="LEAP-1",
            name="Router",
            installed_on="2024-02-29",
            warranty_months=12,
        )
    assert equipment.warranty_ends_on == date(2025, 2, 28)


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({"warranty_months": 12}, "installed_on_required", "installed_on"),
        ({"installed_on": date(2026, 3, 11)}, "installed_on_in_future", "installed_on"),
        (
            {"installed_on": date(2026, 1, 1), "warranty_ends_on": date(2025, 12, 31)},
            "warranty_before_installation",
            "warranty_ends_on",
        ),
        (
            {"installed_on": date(2026, 1, 1), "warranty_ends_on": date(2027, 1, 1), "warranty_months": 12},
            "warranty_ambiguous",
            "warranty_months",
        ),
        ({"installed_on": date(2026, 1, 1), "warranty_months": -1}, "validation_error", "warranty_months"),
        ({"installed_on": date(2026, 1, 1), "warranty_months": 601}, "validation_error", "warranty_months"),
        ({"installed_on": "31/01/2026"}, "validation_error", "installed_on"),
        ({"name": ""}, "validation_error", "name"),
        ({"serial_number": "   "}, "validation_error", "serial_number"),
        ({"serial_number": "x" * 101}, "validation_error", "serial_number"),
    ],
)
def test_equipment_register_refuses_bad_input(kwargs: dict[str, Any], code: str, field: str) -> None:
    values: dict[str, Any] = {"serial_number": "SN-1", "name": "Caldaia"}
    values.update(kwargs)
    with pytest.raises(ValidationFailed) as error:
        installed_base.equipment_register(
            actor=None, customer_public_id=str(CustomerFactory().public_id), **values
        )
    assert error.value.code == code
    assert field in error.value.fields
    assert Equipment.objects.count() == 0
    assert AuditLog.objects.filter(action__startswith="field_service.").count() == 0


def test_equipment_serial_is_unique_whatever_the_case() -> None:
    customer = CustomerFactory()
    installed_base.equipment_register(
        actor=None, customer_public_id=str(customer.public_id), serial_number="AB-12", name="Caldaia"
    )
    with pytest.raises(Conflict) as error:
        installed_base.equipment_register(
            actor=None,
            customer_public_id=str(CustomerFactory().public_id),
            serial_number="ab-12",
            name="Altro",
        )
    assert error.value.code == "serial_number_taken"
    assert Equipment.objects.count() == 1


def test_equipment_register_unknown_customer() -> None:
    for reference in ("00000000-0000-0000-0000-000000000000", "not-a-uuid", ""):
        with pytest.raises(ValidationFailed) as error:
            installed_base.equipment_register(
                actor=None, customer_public_id=reference, serial_number="S", name="N"
            )
        assert error.value.code == "customer_not_found"
    assert Equipment.objects.count() == 0


def test_equipment_update_and_retire() -> None:
    equipment = EquipmentFactory(installed_on=date(2025, 5, 31), warranty_ends_on=None)
    key = str(equipment.public_id)
    updated = installed_base.equipment_update(
        actor=None, equipment_public_id=key, changes={"warranty_months": 9, "status": "under_repair"}
    )
    assert updated.warranty_ends_on == date(2026, 2, 28)
    assert updated.status == "under_repair"
    with pytest.raises(ValidationFailed) as error:
        installed_base.equipment_update(actor=None, equipment_public_id=key, changes={"status": "retired"})
    assert error.value.code == "invalid_status"
    with pytest.raises(ValidationFailed):
        installed_base.equipment_update(actor=None, equipment_public_id=key, changes={"customer_id": 1})
    order = _new_order(customer=equipment.customer, equipment_public_id=key)
    with pytest.raises(Conflict) as conflict:
        installed_base.equipment_retire(actor=None, equipment_public_id=key, reason="Sostituita")
    assert conflict.value.code == "equipment_has_open_work_orders"
    assert Equipment.objects.get(pk=equipment.pk).status == "under_repair"
    work_orders.work_order_cancel(
        actor=None, work_order_public_id=str(order.public_id), reason="Risolto al telefono"
    )
    retired = installed_base.equipment_retire(actor=None, equipment_public_id=key, reason="Sostituita")
    assert retired.status == "retired"
    assert retired.notes.endswith("2026-03-10: Sostituita")
    assert retired.under_warranty_on(date(2026, 1, 1)) is False
    with pytest.raises(Conflict) as again:
        installed_base.equipment_retire(actor=None, equipment_public_id=key)
    assert again.value.code == "equipment_retired"
    with pytest.raises(Conflict):
        installed_base.equipment_update(actor=None, equipment_public_id=key, changes={"name": "X"})
    with pytest.raises(NotFound):
        installed_base.equipment_retire(
            actor=None, equipment_public_id="00000000-0000-0000-0000-000000000000"
        )


# ----------------------------------------------------------------------------------------------
# Technicians


def test_technician_create_normalises_phone_and_refuses_bad_data() -> None:
    user = user_with_roles("technician")
    technician = installed_base.technician_create(
        actor=None,
        display_name=" Luca Gallo ",
        phone="335 123 4567",
        email="Luca@Example.IT",
        user_id=user.pk,
    )
    assert (technician.display_name, technician.phone, technician.email) == (
        "Luca Gallo",
        "+393351234567",
        "luca@example.it",
    )
    with pytest.raises(Conflict) as error:
        installed_base.technician_create(actor=None, display_name="Altro", user_id=user.pk)
    assert error.value.code == "user_already_technician"
    with pytest.raises(ValidationFailed) as bad_phone:
        installed_base.technician_create(actor=None, display_name="Altro", phone="12")
    assert bad_phone.value.code == "invalid_phone"
    with pytest.raises(ValidationFailed):
        installed_base.technician_create(actor=None, display_name="")
    assert Technician.objects.count() == 1
    changed = installed_base.technician_update(
        actor=None,
        technician_public_id=str(technician.public_id),
        changes={"active": False, "phone": "0039 06 1234567"},
    )
    assert (changed.active, changed.phone) == (False, "+39061234567")


def test_agent_cannot_manage() -> None:
    agent = actor_for(user_with_roles("agent"))
    with pytest.raises(PermissionDenied):
        installed_base.technician_create(actor=agent, display_name="Luca")
    with pytest.raises(PermissionDenied):
        _new_order_as(agent)
    assert WorkOrder.objects.count() == 0
    assert sequences.current_value("WO-2026") == 0


def _new_order_as(actor: Any) -> WorkOrder:
    return work_orders.work_order_create(
        actor=actor, customer_public_id=str(CustomerFactory().public_id), summary="Caldaia"
    )


# ----------------------------------------------------------------------------------------------
# Work orders: numbers, creation checks


def test_numbers_are_gapless_per_year_and_a_failed_create_takes_none() -> None:
    first = _new_order()
    second = _new_order()
    with pytest.raises(ValidationFailed):
        _new_order(priority="whenever")
    other = CustomerFactory()
    foreign = EquipmentFactory()
    with pytest.raises(ValidationFailed) as error:
        _new_order(customer=other, equipment_public_id=str(foreign.public_id))
    assert error.value.code == "equipment_of_another_customer"
    third = _new_order()
    assert [first.number, second.number, third.number] == [
        "WO-2026-000001",
        "WO-2026-000002",
        "WO-2026-000003",
    ]
    # New Year's Eve 23:30 in Rome is already 2027 there (22:30 UTC is still 2026 in London).
    with time_machine.travel(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), tick=False):
        assert _new_order().number == "WO-2027-000001"
    with time_machine.travel(datetime(2026, 12, 31, 22, 30, tzinfo=UTC), tick=False):
        assert _new_order().number == "WO-2026-000004"


def test_create_records_history_audit_and_event() -> None:
    customer = CustomerFactory()
    technician = TechnicianFactory(display_name="Luca Gallo")
    equipment = EquipmentFactory(customer=customer, name="Caldaia Vaillant")
    order = _new_order(
        customer=customer,
        equipment_public_id=str(equipment.public_id),
        technician_public_id=str(technician.public_id),
        window_start=rome(2026, 3, 11, 9),
        window_end=rome(2026, 3, 11, 13),
        priority="high",
        kind="maintenance",
    )
    assert order.status == "scheduled"
    assert order.window_start == datetime(2026, 3, 11, 8, tzinfo=UTC)
    assert order.window_end == datetime(2026, 3, 11, 12, tzinfo=UTC)
    history = list(
        WorkOrderEvent.objects.filter(work_order=order).values_list("action", "from_status", "to_status")
    )
    assert history == [("create", "", "scheduled")]
    event = OutboxEvent.objects.get(event_type="field_service.work_order_updated")
    assert event.payload == {
        "work_order_id": str(order.public_id),
        "number": "WO-2026-000001",
        "status": "scheduled",
        "customer_id": str(customer.public_id),
        "ticket_id": None,
        "summary": "Caldaia in blocco",
        "scheduled_for": "2026-03-11T08:00:00+00:00",
        "technician_name": "Luca Gallo",
    }
    assert (
        AuditLog.objects.filter(
            action="field_service.work_order_created", object_id=str(order.public_id)
        ).count()
        == 1
    )


def test_retired_equipment_and_unknown_ticket_are_refused() -> None:
    customer = CustomerFactory()
    equipment = EquipmentFactory(customer=customer, status="retired")
    with pytest.raises(ValidationFailed) as retired:
        _new_order(customer=customer, equipment_public_id=str(equipment.public_id))
    assert retired.value.code == "equipment_retired"
    with pytest.raises(ValidationFailed) as ticket:
        _new_order(customer=customer, ticket_public_id="00000000-0000-0000-0000-000000000000")
    assert ticket.value.code == "ticket_not_found"
    assert WorkOrder.objects.count() == 0
    assert OutboxEvent.objects.filter(event_type__startswith="field_service.").count() == 0


# ----------------------------------------------------------------------------------------------
# The state machine


ALL_ACTIONS = ["schedule", "dispatch", "en_route", "start", "hold", "complete", "cancel"]
TARGET = work_orders.ACTION_TARGETS
ALL_STATUSES = list(TRANSITIONS)


@pytest.mark.parametrize("status", ALL_STATUSES)
@pytest.mark.parametrize("action", ALL_ACTIONS)
def test_every_transition_is_allowed_or_refused_as_the_table_says(status: str, action: str) -> None:
    order = _in_status(status)
    assert order.status == status
    events_before = OutboxEvent.objects.count()
    history_before = WorkOrderEvent.objects.filter(work_order=order).count()
    allowed = TARGET[action] in TRANSITIONS[status]
    if allowed:
        moved = _act(action, order)
        assert moved.status == TARGET[action]
        last = WorkOrderEvent.objects.filter(work_order=order).last()
        assert (last.action, last.from_status, last.to_status) == (action, status, TARGET[action])
        payload = OutboxEvent.objects.filter(event_type="field_service.work_order_updated").last().payload
        assert payload["status"] == TARGET[action]
    else:
        with pytest.raises(Conflict) as error:
            _act(action, order)
        assert error.value.code == "invalid_transition"
        fresh = WorkOrder.objects.get(pk=order.pk)
        assert fresh.status == status
        assert fresh.updated_at == order.updated_at
        assert OutboxEvent.objects.count() == events_before
        assert WorkOrderEvent.objects.filter(work_order=order).count() == history_before


def test_the_table_allows_exactly_these_moves() -> None:
    allowed = {(status, target) for status, targets in TRANSITIONS.items() for target in targets}
    assert allowed == {
        ("new", "scheduled"),
        ("new", "on_hold"),
        ("new", "cancelled"),
        ("scheduled", "scheduled"),
        ("scheduled", "dispatched"),
        ("scheduled", "on_hold"),
        ("scheduled", "cancelled"),
        ("dispatched", "scheduled"),
        ("dispatched", "en_route"),
        ("dispatched", "in_progress"),
        ("dispatched", "on_hold"),
        ("dispatched", "cancelled"),
        ("en_route", "en_route"),
        ("en_route", "in_progress"),
        ("en_route", "on_hold"),
        ("en_route", "cancelled"),
        ("in_progress", "on_hold"),
        ("in_progress", "completed"),
        ("on_hold", "scheduled"),
        ("on_hold", "in_progress"),
        ("on_hold", "cancelled"),
    }


def test_completion_publishes_both_events_with_exact_payloads() -> None:
    customer = CustomerFactory()
    equipment = EquipmentFactory(customer=customer)
    technician = TechnicianFactory(display_name="Sara Costa")
    order = _scheduled(technician=technician, customer=customer, equipment_public_id=str(equipment.public_id))
    key = str(order.public_id)
    work_orders.work_order_dispatch(actor=None, work_order_public_id=key, eta=NOW + timedelta(hours=2))
    work_orders.work_order_start(actor=None, work_order_public_id=key)
    done = work_orders.work_order_complete(
        actor=None, work_order_public_id=key, resolution="  Pulito bruciatore "
    )
    assert (done.resolution, done.completed_at, done.started_at) == ("Pulito bruciatore", NOW, NOW)
    completed = OutboxEvent.objects.get(event_type="field_service.work_order_completed")
    assert completed.payload == {
        "work_order_id": key,
        "number": "WO-2026-000001",
        "customer_id": str(customer.public_id),
        "equipment_id": str(equipment.public_id),
        "ticket_id": None,
        "kind": "repair",
        "technician_name": "Sara Costa",
        "completed_at": "2026-03-10T08:00:00+00:00",
        "resolution": "Pulito bruciatore",
    }
    statuses = list(
        OutboxEvent.objects.filter(event_type="field_service.work_order_updated")
        .order_by("id")
        .values_list("payload__status", flat=True)
    )
    assert statuses == ["scheduled", "dispatched", "in_progress", "completed"]


@pytest.mark.parametrize(
    ("action", "kwargs", "code"),
    [
        ("hold", {"reason": "  "}, "validation_error"),
        ("cancel", {"reason": ""}, "validation_error"),
    ],
)
def test_reasons_are_required(action: str, kwargs: dict[str, Any], code: str) -> None:
    order = _new_order()
    service = {"hold": work_orders.work_order_hold, "cancel": work_orders.work_order_cancel}[action]
    with pytest.raises(ValidationFailed) as error:
        service(actor=None, work_order_public_id=str(order.public_id), **kwargs)
    assert error.value.code == code
    assert WorkOrder.objects.get(pk=order.pk).status == "new"


def test_complete_needs_a_resolution_and_changes_nothing_without() -> None:
    order = _in_status("in_progress")
    with pytest.raises(ValidationFailed):
        work_orders.work_order_complete(actor=None, work_order_public_id=str(order.public_id), resolution=" ")
    assert WorkOrder.objects.get(pk=order.pk).status == "in_progress"


def test_dispatch_needs_a_technician() -> None:
    order = _new_order(window_start=rome(2026, 3, 11, 9), window_end=rome(2026, 3, 11, 10))
    with pytest.raises(ValidationFailed) as error:
        work_orders.work_order_dispatch(actor=None, work_order_public_id=str(order.public_id))
    assert error.value.code == "technician_required"
    assert WorkOrder.objects.get(pk=order.pk).status == "scheduled"


@pytest.mark.parametrize(
    ("eta", "code"),
    [
        (None, "eta_required"),
        (NOW - timedelta(minutes=16), "eta_in_past"),
        (NOW + timedelta(days=7, minutes=1), "eta_too_far"),
        (datetime(2026, 3, 10, 10, 0), "naive_datetime"),
    ],
)
def test_en_route_eta_is_checked(eta: datetime | None, code: str) -> None:
    order = _in_status("dispatched")
    with pytest.raises(ValidationFailed) as error:
        work_orders.work_order_en_route(actor=None, work_order_public_id=str(order.public_id), eta=eta)
    assert error.value.code == code
    fresh = WorkOrder.objects.get(pk=order.pk)
    assert (fresh.status, fresh.eta) == ("dispatched", None)


def test_unknown_work_order_is_not_found() -> None:
    for key in ("00000000-0000-0000-0000-000000000000", "WO-2026-000001"):
        with pytest.raises(NotFound):
            work_orders.work_order_start(actor=None, work_order_public_id=key)


# ----------------------------------------------------------------------------------------------
# Windows and double booking


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        (rome(2026, 3, 11, 13), rome(2026, 3, 11, 9), "window_end_before_start"),
        (rome(2026, 3, 11, 9), rome(2026, 3, 11, 9), "window_end_before_start"),
        (rome(2026, 3, 11, 6), rome(2026, 3, 11, 18, 1), "window_too_long"),
        (rome(2026, 3, 10, 7), rome(2026, 3, 10, 9), "window_in_past"),
        (rome(2026, 3, 11, 9), None, "window_required"),
    ],
)
def test_bad_windows_are_refused(start: datetime, end: datetime | None, code: str) -> None:
    order = _new_order()
    with pytest.raises(ValidationFailed) as error:
        work_orders.work_order_schedule(
            actor=None, work_order_public_id=str(order.public_id), window_start=start, window_end=end
        )
    assert error.value.code == code
    fresh = WorkOrder.objects.get(pk=order.pk)
    assert (fresh.status, fresh.window_start) == ("new", None)


def test_twelve_hours_exactly_is_accepted() -> None:
    order = _new_order(window_start=rome(2026, 3, 11, 6), window_end=rome(2026, 3, 11, 18))
    assert _length(order) == timedelta(hours=12)


def test_windows_across_the_dst_nights_are_measured_in_real_hours() -> None:
    with time_machine.travel(datetime(2026, 3, 28, 12, tzinfo=UTC), tick=False):
        # 00:00-12:30 on the night clocks go forward lasts 11 h 30 min: accepted.
        spring = _new_order(window_start=rome(2026, 3, 29, 0), window_end=rome(2026, 3, 29, 12, 30))
        assert _length(spring) == timedelta(hours=11, minutes=30)
        assert spring.window_start == datetime(2026, 3, 28, 23, tzinfo=UTC)
        assert spring.window_end == datetime(2026, 3, 29, 10, 30, tzinfo=UTC)
    with time_machine.travel(datetime(2026, 10, 24, 12, tzinfo=UTC), tick=False):
        # 00:00-12:00 on the night clocks go back lasts 13 hours: refused.
        with pytest.raises(ValidationFailed) as error:
            _new_order(window_start=rome(2026, 10, 25, 0), window_end=rome(2026, 10, 25, 12))
        assert error.value.code == "window_too_long"
        autumn = _new_order(window_start=rome(2026, 10, 25, 0), window_end=rome(2026, 10, 25, 11))
        assert _length(autumn) == timedelta(hours=12)


def test_a_technician_cannot_be_double_booked() -> None:
    technician = TechnicianFactory(display_name="Luca Gallo")
    first = _scheduled(technician=technician)  # 11 March 9-13 Rome
    with pytest.raises(Conflict) as error:
        _new_order(
            technician_public_id=str(technician.public_id),
            window_start=rome(2026, 3, 11, 12, 59),
            window_end=rome(2026, 3, 11, 15),
        )
    assert error.value.code == "technician_double_booked"
    assert "WO-2026-000001" in error.value.message
    assert WorkOrder.objects.count() == 1
    assert sequences.current_value("WO-2026") == 1
    # Back to back is fine; so is another technician in the same window.
    _new_order(
        technician_public_id=str(technician.public_id),
        window_start=rome(2026, 3, 11, 13),
        window_end=rome(2026, 3, 11, 15),
    )
    _scheduled(technician=TechnicianFactory())
    # Assigning an overlapping order later is refused too, and changes nothing.
    other = _new_order(window_start=rome(2026, 3, 11, 10), window_end=rome(2026, 3, 11, 11))
    with pytest.raises(Conflict):
        work_orders.work_order_assign(
            actor=None,
            work_order_public_id=str(other.public_id),
            technician_public_id=str(technician.public_id),
        )
    assert WorkOrder.objects.get(pk=other.pk).technician_id is None
    # A cancelled or held order frees its window.
    work_orders.work_order_hold(
        actor=None, work_order_public_id=str(first.public_id), reason="Pezzo in arrivo"
    )
    assigned = work_orders.work_order_assign(
        actor=None, work_order_public_id=str(other.public_id), technician_public_id=str(technician.public_id)
    )
    assert assigned.technician_id == technician.pk
    # Rescheduling the held one back into the taken slot is refused.
    with pytest.raises(Conflict):
        work_orders.work_order_schedule(
            actor=None,
            work_order_public_id=str(first.public_id),
            window_start=rome(2026, 3, 11, 9),
            window_end=rome(2026, 3, 11, 13),
        )
    assert WorkOrder.objects.get(pk=first.pk).status == "on_hold"


def test_rescheduling_its_own_window_is_not_a_clash() -> None:
    order = _scheduled()
    moved = work_orders.work_order_schedule(
        actor=None,
        work_order_public_id=str(order.public_id),
        window_start=rome(2026, 3, 11, 10),
        window_end=rome(2026, 3, 11, 14),
    )
    assert moved.window_start == datetime(2026, 3, 11, 9, tzinfo=UTC)


def test_inactive_technician_is_refused() -> None:
    technician = TechnicianFactory(active=False)
    with pytest.raises(ValidationFailed) as error:
        _new_order(technician_public_id=str(technician.public_id))
    assert error.value.code == "technician_inactive"


def test_assign_after_dispatch_is_refused() -> None:
    order = _in_status("dispatched")
    with pytest.raises(Conflict) as error:
        work_orders.work_order_assign(
            actor=None,
            work_order_public_id=str(order.public_id),
            technician_public_id=str(TechnicianFactory().public_id),
        )
    assert error.value.code == "invalid_transition"


# ----------------------------------------------------------------------------------------------
# Who may do what


def test_technician_moves_only_their_own_work_orders() -> None:
    user = user_with_roles("technician")
    actor = actor_for(user)
    mine = TechnicianFactory(user=user)
    order = _scheduled(technician=mine)
    key = str(order.public_id)
    work_orders.work_order_dispatch(actor=None, work_order_public_id=key)
    work_orders.work_order_en_route(actor=actor, work_order_public_id=key, eta=NOW + timedelta(minutes=30))
    work_orders.work_order_start(actor=actor, work_order_public_id=key)
    with pytest.raises(PermissionDenied):
        work_orders.work_order_cancel(actor=actor, work_order_public_id=key, reason="No")
    done = work_orders.work_order_complete(actor=actor, work_order_public_id=key, resolution="Fatto")
    assert done.status == "completed"
    assert WorkOrderEvent.objects.filter(work_order=order, action="complete").get().actor_id == user.pk
    someone_elses = _in_status("dispatched")
    with pytest.raises(PermissionDenied):
        work_orders.work_order_start(actor=actor, work_order_public_id=str(someone_elses.public_id))
    assert WorkOrder.objects.get(pk=someone_elses.pk).status == "dispatched"


def test_dispatcher_manages() -> None:
    dispatcher = actor_for(user_with_roles("dispatcher"))
    order = work_orders.work_order_create(
        actor=dispatcher, customer_public_id=str(CustomerFactory().public_id), summary="Router guasto"
    )
    assert order.created_by_id == dispatcher.user_id
