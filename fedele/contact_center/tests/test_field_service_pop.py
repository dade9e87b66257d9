"""The screen pop's field-service blocks: the customer's equipment (status, warranty, site) and open work
orders (number, status, appointment window in Europe/Rome time, ETA once a technician is on the way,
technician), at most 5 of each with "n more", read through the field-service facade in the agent's
language; the same in the screen-pop API. No N+1: the query count does not grow with the rows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.translation import override

from fedele.accounts.tests.factories import auth_header
from fedele.contact_center.models import InteractionState
from fedele.contact_center.selectors.desktop import (
    ScreenPopSection,
    field_service_pop,
    register_screen_pop_section,
    screen_pop,
    unregister_screen_pop_section,
    window_text,
)
from fedele.contact_center.tests.desktop_support import make_desk
from fedele.contact_center.tests.factories import InteractionFactory
from fedele.customers.tests.factories import CustomerFactory
from fedele.field_service.tests.factories import EquipmentFactory, TechnicianFactory, WorkOrderFactory

pytestmark = pytest.mark.django_db
API = "/api/v1/contact-center"
NOW = "2026-12-08T08:00:00+00:00"  # Tuesday 8 December 2026, 09:00 in Rome


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _now(time_machine: Any) -> None:
    time_machine.move_to(NOW, tick=False)


def customer_with_field_service() -> Any:
    """Mario Rossi: a boiler under warranty, a router out of warranty under repair; a scheduled visit
    today 10:00–12:00, a technician en route (ETA 09:40), a new work order with no appointment, plus a
    completed work order and another customer's that the pop must not show."""
    customer = CustomerFactory(first_name="Mario", last_name="Rossi", display_name="Mario Rossi")
    boiler = EquipmentFactory(
        customer=customer,
        name="Caldaia ecoTEC plus 25",
        serial_number="VA-2024-0001",
        category="boiler",
        installed_on=date(2024, 4, 1),
        warranty_ends_on=date(2027, 3, 31),
        site_street="Via Roma 12",
        site_postal_code="40121",
        site_city="Bologna",
        site_province="BO",
    )
    EquipmentFactory(
        customer=customer,
        name="Router FritzBox 7590",
        serial_number="AVM-7590-0001",
        category="router",
        status="under_repair",
        installed_on=date(2022, 1, 10),
        warranty_ends_on=date(2024, 1, 10),
        site_street="Via Roma 12",
        site_postal_code="40121",
        site_city="Bologna",
        site_province="BO",
    )
    luca = TechnicianFactory(display_name="Luca Bianchi")
    anna = TechnicianFactory(display_name="Anna Neri")
    WorkOrderFactory(
        customer=customer,
        equipment=boiler,
        summary="Manutenzione annuale caldaia",
        status="scheduled",
        window_start=utc(2026, 12, 8, 9, 0),
        window_end=utc(2026, 12, 8, 11, 0),
        technician=luca,
    )
    WorkOrderFactory(
        customer=customer,
        summary="Router senza linea",
        status="en_route",
        priority="high",
        window_start=utc(2026, 12, 8, 8, 0),
        window_end=utc(2026, 12, 8, 10, 0),
        technician=anna,
        eta=utc(2026, 12, 8, 8, 40),
    )
    WorkOrderFactory(customer=customer, summary="Sopralluogo impianto", status="new")
    WorkOrderFactory(customer=customer, summary="Già fatto", status="completed")
    WorkOrderFactory(summary="Di un altro cliente", status="scheduled")
    return customer


def connected_contact(desk: Any, customer: Any | None) -> Any:
    return InteractionFactory(
        customer_public_id=str(customer.public_id) if customer is not None else "",
        from_address="+393330000000",
        agent=desk.agent,
        queue=desk.queue,
        state=InteractionState.CONNECTED,
    )


def _section(page: str, testid: str) -> str:
    return page.split(f'data-testid="{testid}"', 1)[1].split('data-testid="pop-', 1)[0]


# -- the selector --------------------------------------------------------------------------------------


def test_equipment_and_open_work_orders_in_english() -> None:
    customer = customer_with_field_service()
    pop = field_service_pop(str(customer.public_id), language="en")
    assert pop is not None
    assert [
        (
            line.equipment.name,
            line.equipment.serial_number,
            line.equipment.status_label,
            line.warranty,
            line.equipment.site_address,
        )
        for line in pop.equipment
    ] == [
        (
            "Caldaia ecoTEC plus 25",
            "VA-2024-0001",
            "active",
            "under warranty until 31/03/2027",
            "Via Roma 12, 40121 Bologna (BO)",
        ),
        (
            "Router FritzBox 7590",
            "AVM-7590-0001",
            "under repair",
            "out of warranty",
            "Via Roma 12, 40121 Bologna (BO)",
        ),
    ]
    assert pop.equipment_more == 0
    assert [line.url for line in pop.equipment] == [
        f"/field-service/equipment/{line.equipment.public_id}/" for line in pop.equipment
    ]
    assert [
        (
            line.work_order.summary,
            line.work_order.status_label,
            line.window,
            line.eta,
            line.work_order.technician_name,
        )
        for line in pop.work_orders
    ] == [
        ("Router senza linea", "en route", "Tue 8 Dec, 09:00–11:00", "09:40", "Anna Neri"),
        ("Manutenzione annuale caldaia", "scheduled", "Tue 8 Dec, 10:00–12:00", "", "Luca Bianchi"),
        ("Sopralluogo impianto", "new", "", "", ""),
    ]
    assert pop.work_orders_more == 0
    assert [line.url for line in pop.work_orders] == [
        f"/field-service/work-orders/{line.work_order.public_id}/" for line in pop.work_orders
    ]
    assert all(line.work_order.number.startswith("WO-2026-") for line in pop.work_orders)


def test_dates_are_italian_for_an_italian_agent() -> None:
    customer = customer_with_field_service()
    pop = field_service_pop(str(customer.public_id), language="it")
    assert pop is not None
    assert [(line.window, line.eta) for line in pop.work_orders] == [
        ("mar 8 dic, 09:00–11:00", "09:40"),
        ("mar 8 dic, 10:00–12:00", ""),
        ("", ""),
    ]


def test_labels_are_italian_for_an_italian_agent() -> None:
    customer = customer_with_field_service()
    with override("en"):  # the request's language does not matter: the agent's does
        pop = field_service_pop(str(customer.public_id), language="it")
    assert pop is not None
    assert [(line.equipment.status_label, line.warranty) for line in pop.equipment] == [
        ("attiva", "in garanzia fino al 31/03/2027"),
        ("in riparazione", "fuori garanzia"),
    ]
    assert [line.work_order.status_label for line in pop.work_orders] == [
        "in viaggio",
        "pianificato",
        "nuovo",  # a work order (intervento) is masculine: "work order status" context
    ]


def test_warranty_ending_today_still_covers_and_none_on_record_is_out() -> None:
    customer = CustomerFactory()
    EquipmentFactory(
        customer=customer,
        name="Contatore",
        serial_number="MT-1",
        installed_on=date(2024, 12, 9),
        warranty_ends_on=date(2026, 12, 8),
    )
    EquipmentFactory(
        customer=customer,
        name="Modem",
        serial_number="MD-1",
        installed_on=date(2023, 2, 28),
        warranty_ends_on=None,
    )
    pop = field_service_pop(str(customer.public_id), language="en")
    assert pop is not None
    assert [(line.equipment.name, line.warranty) for line in pop.equipment] == [
        ("Contatore", "under warranty until 08/12/2026"),
        ("Modem", "out of warranty"),
    ]


def test_at_most_five_of_each_then_how_many_more() -> None:
    customer = CustomerFactory()
    for index in range(7):
        EquipmentFactory(
            customer=customer,
            name=f"Unità {index}",
            serial_number=f"SN-{index}",
            installed_on=date(2026, 1, 1 + index),
        )
    for index in range(6):
        WorkOrderFactory(
            customer=customer,
            summary=f"Visita {index}",
            status="scheduled",
            window_start=utc(2026, 12, 10 + index, 8, 0),
            window_end=utc(2026, 12, 10 + index, 10, 0),
        )
    pop = field_service_pop(str(customer.public_id), language="en")
    assert pop is not None
    assert [line.equipment.name for line in pop.equipment] == [f"Unità {index}" for index in (6, 5, 4, 3, 2)]
    assert pop.equipment_more == 2
    assert [line.work_order.summary for line in pop.work_orders] == [f"Visita {index}" for index in range(5)]
    assert pop.work_orders_more == 1
    assert pop.work_orders[0].window == "Thu 10 Dec, 09:00–11:00"


def test_a_customer_with_nothing_gets_empty_blocks_and_an_unknown_caller_none(client) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk()
    nobody = CustomerFactory()
    empty = field_service_pop(str(nobody.public_id), language="en")
    assert empty is not None
    assert (empty.equipment, empty.equipment_more, empty.work_orders, empty.work_orders_more) == (
        [],
        0,
        [],
        0,
    )
    unknown = connected_contact(desk, None)
    pop = screen_pop(unknown, language="en")
    assert not pop.known and pop.field_service is None
    client.force_login(desk.user)
    page = client.get(reverse("contact_center:desktop") + f"?i={unknown.public_id}").content.decode()
    assert 'data-testid="pop-unknown"' in page
    assert "pop-equipment" not in page and "pop-work-orders" not in page
    known = connected_contact(desk, nobody)
    page = client.get(reverse("contact_center:desktop") + f"?i={known.public_id}").content.decode()
    assert "No equipment on record." in _section(page, "pop-equipment")
    assert "No open work orders." in _section(page, "pop-work-orders")


def test_windows_across_daylight_saving_changes_read_in_rome_time() -> None:
    # Summer time starts on 29 March 2026 at 02:00 (UTC+2 after): 07:00Z is 09:00 in Rome.
    assert window_text(utc(2026, 3, 29, 7, 0), utc(2026, 3, 29, 9, 0), "it") == "dom 29 mar, 09:00–11:00"
    assert window_text(utc(2026, 3, 29, 7, 0), utc(2026, 3, 29, 9, 0), "en") == "Sun 29 Mar, 09:00–11:00"
    # The day before it is still UTC+1.
    assert window_text(utc(2026, 3, 28, 8, 0), utc(2026, 3, 28, 10, 0), "en") == "Sat 28 Mar, 09:00–11:00"
    # Summer time ends on 25 October 2026: 08:00Z is 09:00 in Rome again.
    assert window_text(utc(2026, 10, 25, 8, 0), utc(2026, 10, 25, 10, 0), "it") == "dom 25 ott, 09:00–11:00"
    # A window over midnight names both days; a leap day; a start with no end.
    assert (
        window_text(utc(2026, 12, 8, 22, 0), utc(2026, 12, 9, 1, 0), "it")
        == "mar 8 dic, 23:00 – mer 9 dic, 02:00"
    )
    assert window_text(utc(2028, 2, 29, 9, 0), utc(2028, 2, 29, 11, 0), "en") == "Tue 29 Feb, 10:00–12:00"
    assert window_text(utc(2026, 12, 31, 22, 30), None, "en") == "Thu 31 Dec, 23:30"
    assert window_text(None, None, "en") == ""


def test_a_dst_day_window_on_the_desktop_page(client, time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to("2026-03-27T10:00:00+00:00", tick=False)
    desk = make_desk()
    desk.user.language = "it"
    desk.user.save(update_fields=["language"])
    customer = CustomerFactory()
    WorkOrderFactory(
        customer=customer,
        summary="Caldaia in blocco",
        status="scheduled",
        window_start=utc(2026, 3, 29, 7, 0),
        window_end=utc(2026, 3, 29, 9, 0),
    )
    contact = connected_contact(desk, customer)
    client.force_login(desk.user)
    page = client.get(reverse("contact_center:desktop") + f"?i={contact.public_id}").content.decode()
    assert "dom 29 mar, 09:00–11:00" in _section(page, "pop-work-orders")


# -- the desktop page ----------------------------------------------------------------------------------


def test_the_desktop_page_shows_both_blocks_in_english(client) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk()
    desk.user.language = "en"
    desk.user.save(update_fields=["language"])
    customer = customer_with_field_service()
    contact = connected_contact(desk, customer)
    client.force_login(desk.user)
    page = client.get(reverse("contact_center:desktop") + f"?i={contact.public_id}").content.decode()
    equipment = _section(page, "pop-equipment")
    assert "Equipment" in equipment
    assert "Caldaia ecoTEC plus 25" in equipment and "VA-2024-0001" in equipment
    assert '<a class="text-truncate" href="/field-service/equipment/' in equipment
    assert '<span class="text-nowrap" data-status="under_repair">under repair</span>' in equipment
    assert "under warranty until 31/03/2027</span>" in equipment
    assert "out of warranty</span>" in equipment
    assert (
        '<i class="bi bi-geo-alt me-1" aria-hidden="true"></i>Via Roma 12, 40121 Bologna (BO)</div>'
        in equipment
    )
    orders = _section(page, "pop-work-orders")
    assert "Open work orders" in orders
    assert orders.count('<a class="text-truncate" href="/field-service/work-orders/') == 3
    assert '<span class="text-nowrap" data-status="en_route">en route</span>' in orders
    assert "Tue 8 Dec, 09:00–11:00" in orders and "Tue 8 Dec, 10:00–12:00" in orders
    assert (
        '<span class="text-nowrap fw-semibold text-body" data-testid="field-eta">ETA 09:40</span>' in orders
    )
    assert orders.count('data-testid="field-eta"') == 1
    assert "Anna Neri" in orders and "Luca Bianchi" in orders
    assert "not scheduled yet" in orders
    assert "Già fatto" not in page and "Di un altro cliente" not in page


def test_the_desktop_page_shows_both_blocks_in_italian(client) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk()
    desk.user.language = "it"
    desk.user.save(update_fields=["language"])
    customer = customer_with_field_service()
    contact = connected_contact(desk, customer)
    client.force_login(desk.user)
    page = client.get(reverse("contact_center:desktop") + f"?i={contact.public_id}").content.decode()
    equipment = _section(page, "pop-equipment")
    assert "Apparecchiature" in equipment
    assert "in garanzia fino al 31/03/2027</span>" in equipment and "fuori garanzia</span>" in equipment
    orders = _section(page, "pop-work-orders")
    assert "Interventi aperti" in orders
    assert "mar 8 dic, 10:00–12:00" in orders
    assert "arrivo previsto alle 09:40" in orders
    assert "non ancora pianificato" in orders


def test_more_than_five_says_how_many_more_on_the_page(client) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk()
    customer = CustomerFactory()
    for index in range(8):
        EquipmentFactory(customer=customer, name=f"Unità {index}", serial_number=f"SN-{index}")
    contact = connected_contact(desk, customer)
    client.force_login(desk.user)
    page = client.get(reverse("contact_center:desktop") + f"?i={contact.public_id}").content.decode()
    equipment = _section(page, "pop-equipment")
    assert equipment.count("data-equipment=") == 5
    assert '<span class="badge text-bg-secondary">8</span>' in equipment
    assert '<div class="text-secondary" data-testid="field-equipment-more">+ 3 more</div>' in equipment


def test_the_generic_sections_still_work_beside_field_service() -> None:
    desk = make_desk()
    customer = customer_with_field_service()
    contact = connected_contact(desk, customer)
    register_screen_pop_section(
        ScreenPopSection("contracts", "Contracts", lambda customer_id: [("Gold care", "active", "")])
    )
    try:
        pop = screen_pop(contact, language="en")
    finally:
        unregister_screen_pop_section("contracts")
    assert [(section.key, section.rows) for section in pop.extra_sections] == [
        ("contracts", [("Gold care", "active", "")])
    ]
    assert pop.field_service is not None and len(pop.field_service.work_orders) == 3


# -- no N+1 --------------------------------------------------------------------------------------------


def test_query_count_does_not_grow_with_the_rows() -> None:
    desk = make_desk()
    few = CustomerFactory()
    EquipmentFactory(customer=few, name="Uno", serial_number="ONE-1")
    WorkOrderFactory(
        customer=few,
        summary="Una",
        status="scheduled",
        technician=TechnicianFactory(),
        window_start=utc(2026, 12, 9, 8, 0),
        window_end=utc(2026, 12, 9, 10, 0),
    )
    many = CustomerFactory()
    for index in range(9):
        equipment = EquipmentFactory(customer=many, name=f"Unità {index}", serial_number=f"MANY-{index}")
        WorkOrderFactory(
            customer=many,
            equipment=equipment,
            summary=f"Visita {index}",
            status="dispatched",
            technician=TechnicianFactory(),
            window_start=utc(2026, 12, 9, 8, 0),
            window_end=utc(2026, 12, 9, 10, 0),
            eta=utc(2026, 12, 9, 8, 30),
        )
    with CaptureQueriesContext(connection) as small:
        field_service_pop(str(few.public_id), language="en")
    with CaptureQueriesContext(connection) as large:
        pop = field_service_pop(str(many.public_id), language="en")
    assert pop is not None and len(pop.work_orders) == 5 and pop.work_orders_more == 4
    assert len(small.captured_queries) == len(large.captured_queries) == FIELD_SERVICE_QUERIES
    few_contact = connected_contact(desk, few)
    many_contact = connected_contact(desk, many)
    with CaptureQueriesContext(connection) as whole_small:
        screen_pop(few_contact, language="en")
    with CaptureQueriesContext(connection) as whole_large:
        screen_pop(many_contact, language="en")
    assert len(whole_small.captured_queries) == len(whole_large.captured_queries)


# Two per facade call (equipment, open work orders): the customer, then its rows with their joins.
FIELD_SERVICE_QUERIES = 4


# -- the API -------------------------------------------------------------------------------------------


def test_screen_pop_api_carries_equipment_and_work_orders(client) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk()
    customer = customer_with_field_service()
    contact = connected_contact(desk, customer)
    response = client.get(
        f"{API}/desktop/interactions/{contact.public_id}/screen-pop", **auth_header(desk.user)
    )
    assert response.status_code == 200
    field = response.json()["field_service"]
    assert set(field) == {"equipment", "equipment_more", "work_orders", "work_orders_more"}
    boiler = field["equipment"][0]
    assert set(boiler) == {
        "id",
        "serial_number",
        "name",
        "category",
        "status",
        "status_label",
        "installed_on",
        "warranty_ends_on",
        "under_warranty",
        "warranty",
        "site_address",
        "url",
    }
    assert boiler["url"] == f"/field-service/equipment/{boiler['id']}/"
    assert {key: boiler[key] for key in boiler if key not in ("id", "url")} == {
        "serial_number": "VA-2024-0001",
        "name": "Caldaia ecoTEC plus 25",
        "category": "boiler",
        "status": "active",
        "status_label": "active",
        "installed_on": "2024-04-01",
        "warranty_ends_on": "2027-03-31",
        "under_warranty": True,
        "warranty": "under warranty until 31/03/2027",
        "site_address": "Via Roma 12, 40121 Bologna (BO)",
    }
    assert field["equipment"][1]["under_warranty"] is False and field["equipment_more"] == 0
    en_route = field["work_orders"][0]
    assert set(en_route) == {
        "id",
        "number",
        "summary",
        "status",
        "status_label",
        "priority",
        "equipment_id",
        "equipment_name",
        "window_start",
        "window_end",
        "window",
        "eta",
        "eta_time",
        "technician_name",
        "ticket_id",
        "url",
    }
    assert en_route["url"] == f"/field-service/work-orders/{en_route['id']}/"
    assert en_route["number"].startswith("WO-2026-")
    assert {key: en_route[key] for key in en_route if key not in ("id", "number", "url")} == {
        "summary": "Router senza linea",
        "status": "en_route",
        "status_label": "en route",
        "priority": "high",
        "equipment_id": None,
        "equipment_name": "",
        "window_start": "2026-12-08T08:00:00Z",
        "window_end": "2026-12-08T10:00:00Z",
        "window": "Tue 8 Dec, 09:00–11:00",
        "eta": "2026-12-08T08:40:00Z",
        "eta_time": "09:40",
        "technician_name": "Anna Neri",
        "ticket_id": None,
    }
    scheduled = field["work_orders"][1]
    assert (scheduled["status"], scheduled["eta_time"], scheduled["equipment_name"]) == (
        "scheduled",
        "",
        "Caldaia ecoTEC plus 25",
    )
    assert scheduled["equipment_id"] == boiler["id"]
    assert field["work_orders"][2]["window_start"] is None and field["work_orders"][2]["window"] == ""
    assert field["work_orders_more"] == 0
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert "field_service" in schema["ScreenPopOut"]["properties"]
    assert set(schema["PopWorkOrderOut"]["properties"]) == set(en_route)


def test_screen_pop_api_of_an_unknown_caller_has_no_field_service(client) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk()
    contact = connected_contact(desk, None)
    body = client.get(
        f"{API}/desktop/interactions/{contact.public_id}/screen-pop", **auth_header(desk.user)
    ).json()
    assert body["customer"] is None and body["field_service"] is None
