"""Field service pages: each renders for the roles that may see it (and not for others), forms work, the
transition buttons follow the state machine and the role, the customer 360 panel and the navigation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.field_service.models import Equipment, Technician, WorkOrder
from fedele.field_service.services import work_orders
from fedele.field_service.tests.factories import EquipmentFactory, TechnicianFactory, WorkOrderFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _client(*roles: str, language: str = "en") -> tuple[Client, Any]:
    user = user_with_roles(*roles, language=language)
    client = Client()
    client.force_login(user)
    return client, user


def _pages(order: WorkOrder, equipment: Equipment) -> list[str]:
    return [
        reverse("field_service:work_order_list"),
        reverse("field_service:work_order_detail", args=[order.public_id]),
        reverse("field_service:equipment_list"),
        reverse("field_service:equipment_detail", args=[equipment.public_id]),
        reverse("field_service:technician_list"),
    ]


@pytest.mark.parametrize("role", ["admin", "supervisor", "dispatcher", "technician", "agent", "analyst"])
def test_pages_render_for_each_role_that_may_see_them(role: str) -> None:
    equipment = EquipmentFactory(name="Caldaia Vaillant ecoTEC plus 25")
    order = WorkOrderFactory(customer=equipment.customer, equipment=equipment, summary="Perdita d'acqua")
    client, _user = _client(role)
    for url in _pages(order, equipment):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    detail = client.get(reverse("field_service:work_order_detail", args=[order.public_id])).content.decode()
    assert "Perdita d&#x27;acqua" in detail
    assert "Caldaia Vaillant ecoTEC plus 25" in detail
    can_manage = role in ("admin", "supervisor", "dispatcher")
    assert ('id="action-schedule"' in detail) is can_manage
    assert ('id="action-cancel"' in detail) is can_manage
    create = client.get(reverse("field_service:work_order_create"))
    assert create.status_code == (200 if can_manage else 403)


@pytest.mark.parametrize("role", ["billing_clerk", "loyalty_manager", "portal_customer"])
def test_pages_are_refused_to_other_roles(role: str) -> None:
    equipment = EquipmentFactory()
    order = WorkOrderFactory(customer=equipment.customer, equipment=equipment)
    client, _user = _client(role)
    for url in _pages(order, equipment):
        assert client.get(url).status_code == 403, url


def test_anonymous_is_sent_to_login() -> None:
    response = Client().get(reverse("field_service:work_order_list"))
    assert response.status_code == 302


def test_list_filters_and_counts() -> None:
    technician = TechnicianFactory(display_name="Luca Gallo")
    WorkOrderFactory(status="scheduled", technician=technician, summary="Visita A")
    WorkOrderFactory(status="completed", summary="Visita B")
    WorkOrderFactory(status="new", summary="Visita C")
    client, _user = _client("dispatcher", language="it")
    page = client.get(reverse("field_service:work_order_list")).content.decode()
    assert page.count('data-work-order="') == 3
    assert 'data-status="completed"' in page
    open_only = client.get(reverse("field_service:work_order_list") + "?status=open").content.decode()
    assert open_only.count('data-work-order="') == 2
    by_technician = client.get(
        reverse("field_service:work_order_list") + f"?technician={technician.public_id}"
    ).content.decode()
    assert by_technician.count('data-work-order="') == 1
    assert "Visita A" in by_technician
    partial = client.get(
        reverse("field_service:work_order_list") + "?status=new",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="work-order-results",
    ).content.decode()
    assert "<html" not in partial
    assert partial.count('data-work-order="') == 1


def test_technician_opens_on_their_own_work_orders_and_moves_them() -> None:
    client, user = _client("technician")
    mine = TechnicianFactory(user=user)
    order = work_orders.work_order_create(
        actor=None,
        customer_public_id=str(CustomerFactory().public_id),
        summary="Caldaia in blocco",
        window_start=datetime(2026, 3, 10, 9, tzinfo=UTC),
        window_end=datetime(2026, 3, 10, 12, tzinfo=UTC),
        technician_public_id=str(mine.public_id),
    )
    WorkOrderFactory(summary="Non mia")
    page = client.get(reverse("field_service:work_order_list")).content.decode()
    assert page.count('data-work-order="') == 1
    assert (
        client.get(reverse("field_service:work_order_list") + "?mine=0")
        .content.decode()
        .count('data-work-order="')
        == 2
    )
    work_orders.work_order_dispatch(actor=None, work_order_public_id=str(order.public_id))
    detail = client.get(reverse("field_service:work_order_detail", args=[order.public_id])).content.decode()
    assert 'id="action-en-route"' in detail
    assert "· System</span>" in detail  # a change the system made, in the reader's language
    assert "· system" not in detail
    assert 'id="action-dispatch"' not in detail
    moved = client.post(
        reverse("field_service:work_order_action", args=[order.public_id, "en_route"]),
        {"eta": "2026-03-10T09:45"},
    )
    assert moved.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.eta) == ("en_route", datetime(2026, 3, 10, 8, 45, tzinfo=UTC))
    client.post(reverse("field_service:work_order_action", args=[order.public_id, "start"]))
    refused = client.post(
        reverse("field_service:work_order_action", args=[order.public_id, "cancel"]), {"reason": "No"}
    )
    assert refused.status_code == 403
    empty = client.post(
        reverse("field_service:work_order_action", args=[order.public_id, "complete"]), {"resolution": " "}
    )
    assert empty.status_code == 302
    order.refresh_from_db()
    assert order.status == "in_progress"
    client.post(
        reverse("field_service:work_order_action", args=[order.public_id, "complete"]),
        {"resolution": "Sostituita la valvola"},
    )
    order.refresh_from_db()
    assert (order.status, order.resolution) == ("completed", "Sostituita la valvola")


def test_schedule_form_across_the_dst_night_and_refused_moves_show_an_error() -> None:
    order = WorkOrderFactory()
    with time_machine.travel(datetime(2026, 3, 28, 12, tzinfo=UTC), tick=False):
        # Logged in on the day (a session from 10 March would have expired by the 28th).
        client, _user = _client("dispatcher")
        response = client.post(
            reverse("field_service:work_order_action", args=[order.public_id, "schedule"]),
            {"day": "2026-03-29", "start_time": "00:00", "end_time": "12:30"},
        )
        assert response.status_code == 302
        order.refresh_from_db()
        assert (order.status, order.window_start, order.window_end) == (
            "scheduled",
            datetime(2026, 3, 28, 23, tzinfo=UTC),
            datetime(2026, 3, 29, 10, 30, tzinfo=UTC),
        )
        refused = client.post(
            reverse("field_service:work_order_action", args=[order.public_id, "complete"]),
            {"resolution": "x"},
            follow=True,
        )
    assert "cannot become" in refused.content.decode()
    order.refresh_from_db()
    assert order.status == "scheduled"


def test_create_work_order_form() -> None:
    client, _user = _client("dispatcher")
    customer = CustomerFactory()
    equipment = EquipmentFactory(customer=customer, name="Router Fritz!Box")
    technician = TechnicianFactory()
    form = client.get(reverse("field_service:work_order_create") + f"?customer={customer.public_id}")
    assert "Router Fritz!Box" in form.content.decode()
    bad = client.post(
        reverse("field_service:work_order_create"),
        {
            "customer": customer.number,
            "summary": "X",
            "kind": "repair",
            "priority": "normal",
            "day": "2026-03-11",
        },
    )
    assert bad.status_code == 200
    assert "is-invalid" in bad.content.decode()
    assert WorkOrder.objects.count() == 0
    too_long = client.post(
        reverse("field_service:work_order_create"),
        {
            "customer": customer.number,
            "summary": "X",
            "kind": "repair",
            "priority": "normal",
            "day": "2026-03-11",
            "start_time": "06:00",
            "end_time": "19:00",
        },
    )
    assert "At most 12 hours after the start." in too_long.content.decode()
    assert WorkOrder.objects.count() == 0
    created = client.post(
        reverse("field_service:work_order_create"),
        {
            "customer": customer.number,
            "summary": "Router senza linea",
            "kind": "repair",
            "priority": "high",
            "equipment": str(equipment.public_id),
            "day": "2026-03-11",
            "start_time": "09:00",
            "end_time": "11:00",
            "technician": str(technician.public_id),
        },
    )
    order = WorkOrder.objects.get()
    assert created.status_code == 302
    assert created["Location"] == reverse("field_service:work_order_detail", args=[order.public_id])
    assert (order.number, order.status, order.equipment_id, order.technician_id, order.window_start) == (
        "WO-2026-000001",
        "scheduled",
        equipment.pk,
        technician.pk,
        datetime(2026, 3, 11, 8, tzinfo=UTC),
    )


def test_register_equipment_and_retire_it() -> None:
    client, _user = _client("dispatcher")
    customer = CustomerFactory(street="Via Po 3", city="Torino", postal_code="10123", province="TO")
    response = client.post(
        reverse("field_service:equipment_create"),
        {
            "customer": str(customer.public_id),
            "serial_number": "VX-77",
            "name": "Caldaia",
            "installed_on": "2024-02-29",
            "warranty_months": "12",
        },
    )
    equipment = Equipment.objects.get()
    assert response.status_code == 302
    assert (equipment.warranty_ends_on.isoformat(), equipment.site_address) == (
        "2025-02-28",
        "Via Po 3, 10123 Torino (TO)",
    )
    page = client.get(reverse("field_service:equipment_detail", args=[equipment.public_id])).content.decode()
    assert "Out of warranty" in page
    duplicate = client.post(
        reverse("field_service:equipment_create"),
        {"customer": customer.number, "serial_number": "vx-77", "name": "Altra"},
    )
    assert "Already registered." in duplicate.content.decode()
    assert Equipment.objects.count() == 1
    client.post(
        reverse("field_service:equipment_detail", args=[equipment.public_id]), {"reason": "Sostituita"}
    )
    equipment.refresh_from_db()
    assert equipment.status == "retired"


def test_add_technician_and_agent_cannot() -> None:
    client, _user = _client("supervisor")
    response = client.post(
        reverse("field_service:technician_list"), {"display_name": "Sara Costa", "phone": "335 987 6543"}
    )
    assert response.status_code == 302
    assert Technician.objects.get().phone == "+393359876543"
    bad = client.post(reverse("field_service:technician_list"), {"display_name": "X", "phone": "12"})
    assert "Write it with the country prefix, e.g. +39 335 123 4567." in bad.content.decode()
    agent, _agent_user = _client("agent")
    assert agent.post(reverse("field_service:technician_list"), {"display_name": "Y"}).status_code == 403
    assert Technician.objects.count() == 1


def test_customer_panel_and_navigation() -> None:
    customer = CustomerFactory()
    EquipmentFactory(customer=customer, name="Contatore gas")
    WorkOrderFactory(customer=customer, summary="Lettura contatore", status="new")
    client, _user = _client("agent")
    page = client.get(reverse("customers:detail", args=[customer.public_id])).content.decode()
    assert 'id="customer-field-service"' in page
    assert "Contatore gas" in page
    assert "Lettura contatore" in page
    assert reverse("field_service:work_order_list") in client.get(reverse("home")).content.decode()
    other, _other_user = _client("billing_clerk")
    assert (
        'id="customer-field-service"'
        not in other.get(reverse("customers:detail", args=[customer.public_id])).content.decode()
    )
