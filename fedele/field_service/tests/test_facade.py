"""The field service facade: exact summaries, their order, next_visit's rules, number and serial lookups,
subjects and the events support consumes (end to end: a completed work order notes its ticket)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine

from fedele.customers.tests.factories import CustomerFactory
from fedele.field_service import facade
from fedele.field_service.contracts import EquipmentSummary, WorkOrderSummary
from fedele.field_service.services import work_orders
from fedele.field_service.tests.factories import EquipmentFactory, TechnicianFactory, WorkOrderFactory
from fedele.shared import events, subjects
from fedele.shared.models import OutboxEvent
from fedele.support import facade as support
from fedele.support.tests.factories import TicketFactory, status

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


# ----------------------------------------------------------------------------------------------
# Equipment


def test_customer_equipment_exact_values_and_order() -> None:
    customer = CustomerFactory()
    old = EquipmentFactory(
        customer=customer,
        serial_number="OLD-1",
        installed_on=date(2020, 5, 1),
        warranty_ends_on=date(2022, 5, 1),
        site_street="Via Roma 12",
        site_postal_code="40121",
        site_city="Bologna",
        site_province="BO",
    )
    new = EquipmentFactory(
        customer=customer,
        serial_number="NEW-1",
        name="Router Fritz!Box 7530",
        category="router",
        installed_on=date(2026, 1, 31),
        warranty_ends_on=date(2026, 3, 10),
    )
    repair = EquipmentFactory(customer=customer, status="under_repair", installed_on=date(2024, 2, 29))
    retired = EquipmentFactory(customer=customer, status="retired", installed_on=date(2026, 2, 1))
    undated = EquipmentFactory(customer=customer, installed_on=None, warranty_ends_on=None)
    EquipmentFactory()  # another customer's
    result = facade.customer_equipment(str(customer.public_id))
    assert [row.public_id for row in result] == [
        str(new.public_id),
        str(repair.public_id),
        str(old.public_id),
        str(undated.public_id),
        str(retired.public_id),
    ]
    assert result[0] == EquipmentSummary(
        public_id=str(new.public_id),
        serial_number="NEW-1",
        name="Router Fritz!Box 7530",
        category="router",
        status="active",
        status_label="active",
        installed_on=date(2026, 1, 31),
        warranty_ends_on=date(2026, 3, 10),
        under_warranty=True,  # the last day is covered
        site_address="Via Roma 12, 00100 Roma (RM)",
    )
    assert result[2].site_address == "Via Roma 12, 40121 Bologna (BO)"
    assert result[2].under_warranty is False
    assert result[1].status_label == "under repair"
    assert [row.public_id for row in facade.customer_equipment(str(customer.public_id), limit=2)] == [
        str(new.public_id),
        str(repair.public_id),
    ]
    assert facade.customer_equipment(str(customer.public_id), limit=0) == []


def test_under_warranty_uses_the_rome_date() -> None:
    equipment = EquipmentFactory(installed_on=date(2025, 3, 1), warranty_ends_on=date(2026, 3, 10))
    # 23:30 UTC on 10 March is already 11 March in Rome: the warranty is over there.
    with time_machine.travel(datetime(2026, 3, 10, 23, 30, tzinfo=UTC), tick=False):
        summary = facade.equipment_by_serial(equipment.serial_number)
    assert summary is not None
    assert summary.under_warranty is False
    with time_machine.travel(datetime(2026, 3, 10, 22, 59, tzinfo=UTC), tick=False):
        summary = facade.equipment_by_serial(equipment.serial_number)
    assert summary is not None
    assert summary.under_warranty is True


@pytest.mark.parametrize("reference", ["", "not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_unknown_customer_gives_nothing(reference: str) -> None:
    EquipmentFactory()
    WorkOrderFactory()
    assert facade.customer_equipment(reference) == []
    assert facade.open_work_orders(reference) == []
    assert facade.next_visit(reference) is None


def test_merged_customer_reference_finds_the_survivor() -> None:
    survivor = CustomerFactory()
    duplicate = CustomerFactory(status="merged", merged_into=survivor)
    equipment = EquipmentFactory(customer=survivor)
    assert [row.public_id for row in facade.customer_equipment(str(duplicate.public_id))] == [
        str(equipment.public_id)
    ]


def test_equipment_by_serial_is_case_insensitive_and_trimmed() -> None:
    equipment = EquipmentFactory(serial_number="VX-2026-ABC")
    for form in ("VX-2026-ABC", "vx-2026-abc", "  Vx-2026-aBc \n"):
        found = facade.equipment_by_serial(form)
        assert found is not None and found.public_id == str(equipment.public_id)
    assert facade.equipment_by_serial("VX-2026") is None
    assert facade.equipment_by_serial("") is None
    assert facade.equipment_by_serial("x" * 500) is None


# ----------------------------------------------------------------------------------------------
# Work orders


def test_open_work_orders_exact_summary_and_order() -> None:
    customer = CustomerFactory()
    technician = TechnicianFactory(display_name="Luca Gallo")
    equipment = EquipmentFactory(customer=customer, name="Caldaia Vaillant ecoTEC plus 25")
    later = WorkOrderFactory(
        customer=customer, status="scheduled", window_start=at(30), window_end=at(33), number="WO-2026-000005"
    )
    en_route = WorkOrderFactory(
        customer=customer,
        status="en_route",
        window_start=at(1),
        window_end=at(4),
        eta=at(0.5),
        technician=technician,
        equipment=equipment,
        number="WO-2026-000009",
        ticket_public_id="6f1c2a52-3b7e-4d0e-9a51-0d4a3f2b1c77",
        priority="urgent",
        summary="Caldaia in blocco",
    )
    unscheduled_b = WorkOrderFactory(customer=customer, status="new", number="WO-2026-000004")
    unscheduled_a = WorkOrderFactory(customer=customer, status="on_hold", number="WO-2026-000002")
    same_time = WorkOrderFactory(
        customer=customer, status="scheduled", window_start=at(30), window_end=at(31), number="WO-2026-000003"
    )
    WorkOrderFactory(
        customer=customer, status="completed", window_start=at(-5), window_end=at(-4), number="WO-2026-000001"
    )
    WorkOrderFactory(customer=customer, status="cancelled", number="WO-2026-000006")
    result = facade.open_work_orders(str(customer.public_id))
    assert [row.number for row in result] == [
        "WO-2026-000009",
        "WO-2026-000003",
        "WO-2026-000005",
        "WO-2026-000002",
        "WO-2026-000004",
    ]
    assert result[0] == WorkOrderSummary(
        public_id=str(en_route.public_id),
        number="WO-2026-000009",
        summary="Caldaia in blocco",
        status="en_route",
        status_label="en route",
        priority="urgent",
        customer_public_id=str(customer.public_id),
        equipment_public_id=str(equipment.public_id),
        equipment_name="Caldaia Vaillant ecoTEC plus 25",
        window_start=at(1),
        window_end=at(4),
        eta=at(0.5),
        technician_name="Luca Gallo",
        ticket_public_id="6f1c2a52-3b7e-4d0e-9a51-0d4a3f2b1c77",
    )
    scheduled = result[2]
    assert (
        scheduled.eta,
        scheduled.equipment_name,
        scheduled.technician_name,
        scheduled.ticket_public_id,
    ) == (
        at(30),
        "",
        "",
        None,
    )
    assert result[3].public_id == str(unscheduled_a.public_id)
    assert result[4].public_id == str(unscheduled_b.public_id)
    assert later.number == "WO-2026-000005" and same_time.number == "WO-2026-000003"
    assert len(facade.open_work_orders(str(customer.public_id), limit=2)) == 2


def test_eta_is_the_window_start_until_dispatched() -> None:
    customer = CustomerFactory()
    scheduled = WorkOrderFactory(
        customer=customer, status="scheduled", window_start=at(5), window_end=at(8), eta=at(6)
    )
    dispatched_without_eta = WorkOrderFactory(
        customer=customer, status="dispatched", window_start=at(2), window_end=at(3)
    )
    by_number = {row.number: row for row in facade.open_work_orders(str(customer.public_id))}
    assert by_number[str(scheduled.number)].eta == at(5)
    assert by_number[str(dispatched_without_eta.number)].eta == at(2)


def test_next_visit_prefers_the_visit_under_way() -> None:
    customer = CustomerFactory()
    key = str(customer.public_id)
    assert facade.next_visit(key) is None
    WorkOrderFactory(customer=customer, status="new")
    WorkOrderFactory(customer=customer, status="on_hold", window_start=at(1), window_end=at(2))
    WorkOrderFactory(customer=customer, status="scheduled", window_start=at(-6), window_end=at(-1))
    assert facade.next_visit(key) is None  # nothing planned: the only window is over
    tomorrow = WorkOrderFactory(customer=customer, status="scheduled", window_start=at(24), window_end=at(28))
    soon = WorkOrderFactory(customer=customer, status="scheduled", window_start=at(2), window_end=at(6))
    ending_now = WorkOrderFactory(
        customer=customer, status="scheduled", window_start=at(-3), window_end=at(0)
    )
    visit = facade.next_visit(key)
    assert visit is not None and visit.number == ending_now.number
    assert (facade.next_visit(key, now=at(0.01)) or visit).number == soon.number
    assert (facade.next_visit(key, now=at(7)) or visit).number == tomorrow.number
    assert facade.next_visit(key, now=at(29)) is None
    dispatched = WorkOrderFactory(
        customer=customer, status="dispatched", window_start=at(48), window_end=at(50), eta=at(48.5)
    )
    assert (facade.next_visit(key) or visit).number == dispatched.number
    en_route = WorkOrderFactory(
        customer=customer, status="en_route", window_start=at(50), window_end=at(52), eta=at(1)
    )
    assert (facade.next_visit(key) or visit).number == en_route.number
    on_site = WorkOrderFactory(customer=customer, status="in_progress", window_start=at(-1), window_end=at(2))
    result = facade.next_visit(key, now=at(100))
    assert result is not None and result.number == on_site.number


@pytest.mark.parametrize(
    "written",
    [
        "WO-2026-000042",
        "wo-2026-000042",
        "wo-2026-42",
        "WO 2026 42",
        "2026-42",
        "2026 000042",
        "2026/42",
        "  WO-2026-000042 ",
        "2026000042",
        "202600042",
        "WO2026000042",
    ],
)
def test_work_order_by_number_accepts_the_written_forms(written: str) -> None:
    order = WorkOrderFactory(number="WO-2026-000042")
    WorkOrderFactory(number="WO-2025-000042")
    found = facade.work_order_by_number(written)
    assert found is not None
    assert found.public_id == str(order.public_id)


@pytest.mark.parametrize(
    "written", ["", "WO-2026-000043", "WO-2027-000042", "42", "WO-2026", "2026-0", "WO-2026-00x042", "x" * 80]
)
def test_work_order_by_number_unknown_or_malformed(written: str) -> None:
    WorkOrderFactory(number="WO-2026-000042")
    assert facade.work_order_by_number(written) is None


def test_subjects_resolve_equipment_and_work_orders() -> None:
    from fedele.field_service.setup import register_subjects

    register_subjects()
    equipment = EquipmentFactory(name="Caldaia", serial_number="SN-9")
    order = WorkOrderFactory(
        customer=equipment.customer, number="WO-2026-000007", summary="Perdita", status="new"
    )
    equipment_ref = subjects.resolve("equipment", str(equipment.public_id))
    assert equipment_ref == subjects.SubjectRef(
        "equipment", str(equipment.public_id), str(equipment.customer.public_id), "Caldaia · SN-9", "active"
    )
    order_ref = subjects.resolve("work_order", str(order.public_id))
    assert order_ref == subjects.SubjectRef(
        "work_order", str(order.public_id), str(order.customer.public_id), "WO-2026-000007 · Perdita", "new"
    )
    assert subjects.resolve("work_order", "00000000-0000-0000-0000-000000000000") is None
    assert subjects.resolve("equipment", "junk") is None


# ----------------------------------------------------------------------------------------------
# Events consumed by support, end to end


def _deliver_field_service_events() -> int:
    delivered = 0
    for row in OutboxEvent.objects.filter(event_type__startswith="field_service.").order_by("id"):
        events.dispatch(row.event_id)
        delivered += 1
    return delivered


def test_support_notes_the_linked_ticket_and_reopens_it_on_completion() -> None:
    customer = CustomerFactory()
    ticket = TicketFactory(customer=customer, status=status("pending_third_party"), language="en")
    about = TicketFactory(
        customer=customer, language="en", subject_kind="work_order", subject_reference="placeholder"
    )
    technician = TechnicianFactory(display_name="Luca Gallo")
    order = work_orders.work_order_create(
        actor=None,
        customer_public_id=str(customer.public_id),
        summary="Caldaia in blocco",
        ticket_public_id=str(ticket.public_id),
    )
    about.subject_reference = str(order.public_id)
    about.save(update_fields=["subject_reference"])
    key = str(order.public_id)
    work_orders.work_order_schedule(
        actor=None,
        work_order_public_id=key,
        window_start=at(2),
        window_end=at(4),
        technician_public_id=str(technician.public_id),
    )
    work_orders.work_order_dispatch(actor=None, work_order_public_id=key)
    work_orders.work_order_start(actor=None, work_order_public_id=key)
    work_orders.work_order_complete(actor=None, work_order_public_id=key, resolution="Sostituita valvola")
    assert _deliver_field_service_events() == 6  # five updates and one completion
    notes = list(ticket.messages.filter(kind="system").order_by("id").values_list("body_text", flat=True))
    assert [note.splitlines()[0] for note in notes] == [
        "Work order WO-2026-000001 is now: new.",
        "Work order WO-2026-000001 is now: scheduled.",
        "Work order WO-2026-000001 is now: dispatched.",
        "Work order WO-2026-000001 is now: in_progress.",
        "Work order WO-2026-000001 is now: completed.",
    ]
    last = notes[-1].splitlines()
    assert last[1] == "Caldaia in blocco"
    assert last[2].startswith("Scheduled for ")
    assert last[3] == "Technician: Luca Gallo."
    # The ticket about the work order (its subject) is noted too.
    assert about.messages.filter(kind="system").count() == 5
    summary = support.ticket_summary(str(ticket.public_id))
    assert summary is not None and summary.status == "open"
    # Delivered again (at-least-once): nothing doubles.
    _deliver_field_service_events()
    assert ticket.messages.filter(kind="system").count() == 5
