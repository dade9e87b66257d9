"""Field service API: status codes, the error envelope, permissions, idempotency, list query counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.field_service.models import Equipment, WorkOrder, WorkOrderEvent
from fedele.field_service.tests.factories import EquipmentFactory, TechnicianFactory, WorkOrderFactory
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
BASE = "/api/v1/field-service"


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _post(client: Client, path: str, body: Any, headers: dict[str, str]) -> Any:
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.post(BASE + path, raw, content_type="application/json", **headers)


def _counts() -> dict[str, int]:
    return {
        "work_orders": WorkOrder.objects.count(),
        "equipment": Equipment.objects.count(),
        "history": WorkOrderEvent.objects.count(),
        "outbox": OutboxEvent.objects.count(),
        "audit": AuditLog.objects.exclude(action="api_token.created").count(),
    }


@pytest.fixture
def dispatcher() -> dict[str, str]:
    return auth_header(user_with_roles("dispatcher"))


@pytest.fixture
def agent() -> dict[str, str]:
    return auth_header(user_with_roles("agent"))


def test_create_schedule_dispatch_complete_over_the_api(client: Client, dispatcher: dict[str, str]) -> None:
    customer = CustomerFactory()
    equipment = EquipmentFactory(customer=customer)
    technician = TechnicianFactory(display_name="Luca Gallo")
    created = _post(
        client,
        "/work-orders",
        {
            "customer_id": str(customer.public_id),
            "summary": "Caldaia in blocco",
            "kind": "repair",
            "priority": "urgent",
            "equipment_id": str(equipment.public_id),
        },
        dispatcher,
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["number"], body["status"], body["priority"], body["is_open"]) == (
        "WO-2026-000001",
        "new",
        "urgent",
        True,
    )
    assert body["equipment_id"] == str(equipment.public_id)
    assert [row["action"] for row in body["history"]] == ["create"]
    key = body["id"]
    scheduled = _post(
        client,
        f"/work-orders/{key}/schedule",
        {
            "window_start": "2026-03-11T09:00:00+01:00",
            "window_end": "2026-03-11T13:00:00+01:00",
            "technician_id": str(technician.public_id),
        },
        dispatcher,
    )
    assert scheduled.status_code == 200, scheduled.content
    assert scheduled.json()["window_start"] == "2026-03-11T08:00:00Z"
    assert scheduled.json()["technician_name"] == "Luca Gallo"
    dispatched = _post(
        client, f"/work-orders/{key}/dispatch", {"eta": "2026-03-10T10:30:00+01:00"}, dispatcher
    )
    assert dispatched.json()["eta"] == "2026-03-10T09:30:00Z"
    assert _post(client, f"/work-orders/{key}/start", {}, dispatcher).json()["status"] == "in_progress"
    done = _post(client, f"/work-orders/{key}/complete", {"resolution": "Sostituita scheda"}, dispatcher)
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["resolution"], done.json()["is_open"]) == (
        "completed",
        "Sostituita scheda",
        False,
    )
    detail = client.get(f"{BASE}/work-orders/{key}", **dispatcher).json()
    assert [(row["from_status"], row["to_status"]) for row in detail["history"]] == [
        ("", "new"),
        ("new", "scheduled"),
        ("scheduled", "dispatched"),
        ("dispatched", "in_progress"),
        ("in_progress", "completed"),
    ]


def test_refused_transition_is_409_with_the_envelope_and_changes_nothing(
    client: Client, dispatcher: dict[str, str]
) -> None:
    order = WorkOrderFactory(status="completed")
    before = _counts()
    response = _post(client, f"/work-orders/{order.public_id}/start", {}, dispatcher)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert set(response.json()["error"]) == {"code", "message", "fields"}
    assert _counts() == before


def test_validation_errors_are_422_with_fields(client: Client, dispatcher: dict[str, str]) -> None:
    customer = CustomerFactory()
    before = _counts()
    missing = _post(client, "/work-orders", {"customer_id": str(customer.public_id)}, dispatcher)
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "validation_error"
    assert "summary" in missing.json()["error"]["fields"]
    too_long = _post(
        client,
        "/work-orders",
        {
            "customer_id": str(customer.public_id),
            "summary": "X",
            "window_start": "2026-03-11T06:00:00+01:00",
            "window_end": "2026-03-11T19:00:00+01:00",
        },
        dispatcher,
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "window_too_long"
    assert "window_end" in too_long.json()["error"]["fields"]
    unknown = _post(
        client,
        "/work-orders",
        {"customer_id": "00000000-0000-0000-0000-000000000000", "summary": "X"},
        dispatcher,
    )
    assert unknown.json()["error"]["code"] == "customer_not_found"
    extra = _post(
        client, "/work-orders", {"customer_id": str(customer.public_id), "summary": "X", "x": 1}, dispatcher
    )
    assert extra.status_code == 422
    assert _counts() == before


def test_double_booking_is_409(client: Client, dispatcher: dict[str, str]) -> None:
    technician = TechnicianFactory()
    body = {
        "customer_id": str(CustomerFactory().public_id),
        "summary": "Visita",
        "technician_id": str(technician.public_id),
        "window_start": "2026-03-11T09:00:00+01:00",
        "window_end": "2026-03-11T11:00:00+01:00",
    }
    assert _post(client, "/work-orders", body, dispatcher).status_code == 201
    clash = _post(client, "/work-orders", {**body, "window_start": "2026-03-11T10:00:00+01:00"}, dispatcher)
    assert clash.status_code == 409
    assert clash.json()["error"]["code"] == "technician_double_booked"
    assert WorkOrder.objects.count() == 1


def test_agent_reads_but_cannot_write(client: Client, agent: dict[str, str]) -> None:
    order = WorkOrderFactory()
    assert client.get(f"{BASE}/work-orders/{order.public_id}", **agent).status_code == 200
    before = _counts()
    refused = _post(
        client, "/work-orders", {"customer_id": str(order.customer.public_id), "summary": "X"}, agent
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    cancel = _post(client, f"/work-orders/{order.public_id}/cancel", {"reason": "No"}, agent)
    assert cancel.status_code == 403
    assert _counts() == before


def test_without_permission_or_token(client: Client) -> None:
    portal = auth_header(user_with_roles("portal_customer"))
    assert client.get(f"{BASE}/work-orders", **portal).status_code == 403
    assert client.get(f"{BASE}/work-orders").status_code == 401
    read_only = auth_header(user_with_roles("dispatcher"), scopes=("read",))
    refused = _post(client, "/technicians", {"display_name": "Luca"}, read_only)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"


def test_unknown_ids_are_404(client: Client, dispatcher: dict[str, str]) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"{BASE}/work-orders/{missing}", **dispatcher).json()["error"]["code"] == (
        "work_order_not_found"
    )
    assert client.get(f"{BASE}/equipment/{missing}", **dispatcher).status_code == 404
    assert _post(client, f"/work-orders/{missing}/start", {}, dispatcher).status_code == 404


def test_idempotency_key_replays_the_first_answer(client: Client, dispatcher: dict[str, str]) -> None:
    body = {"customer_id": str(CustomerFactory().public_id), "summary": "Router guasto"}
    headers = {**dispatcher, "HTTP_IDEMPOTENCY_KEY": "wo-create-1"}
    first = _post(client, "/work-orders", body, headers)
    second = _post(client, "/work-orders", body, headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert WorkOrder.objects.count() == 1
    other = _post(client, "/work-orders", {**body, "summary": "Altro"}, headers)
    assert other.status_code == 409
    assert WorkOrder.objects.count() == 1


def test_equipment_create_patch_retire(client: Client, dispatcher: dict[str, str]) -> None:
    customer = CustomerFactory()
    created = _post(
        client,
        "/equipment",
        {
            "customer_id": str(customer.public_id),
            "serial_number": "VX-2026-1",
            "name": "Caldaia Vaillant ecoTEC plus 25",
            "category": "boiler",
            "installed_on": "2026-01-31",
            "warranty_months": 1,
            "site_street": "Via Roma 1",
            "site_city": "Bologna",
        },
        dispatcher,
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["warranty_ends_on"], body["under_warranty"], body["site_address"]) == (
        "2026-02-28",
        False,
        "Via Roma 1, Bologna",
    )
    duplicate = _post(
        client,
        "/equipment",
        {"customer_id": str(customer.public_id), "serial_number": "vx-2026-1", "name": "Altro"},
        dispatcher,
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "serial_number_taken"
    patched = client.patch(
        f"{BASE}/equipment/{body['id']}",
        json.dumps({"warranty_ends_on": "2028-01-31", "status": "under_repair"}),
        content_type="application/json",
        **dispatcher,
    )
    assert patched.status_code == 200
    assert (patched.json()["under_warranty"], patched.json()["status"]) == (True, "under_repair")
    retired = _post(client, f"/equipment/{body['id']}/retire", {"reason": "Sostituita"}, dispatcher)
    assert retired.json()["status"] == "retired"
    assert retired.json()["under_warranty"] is False


def test_lists_filter_count_and_keep_their_query_count(client: Client, dispatcher: dict[str, str]) -> None:
    customer = CustomerFactory()
    technician = TechnicianFactory()
    for status in ("new", "scheduled", "scheduled", "completed"):
        WorkOrderFactory(
            customer=customer,
            status=status,
            technician=technician,
            equipment=EquipmentFactory(customer=customer),
        )
    WorkOrderFactory(status="new")
    client.get(f"{BASE}/work-orders", **dispatcher)  # warm the token and permission caches
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{BASE}/work-orders?customer_id={customer.public_id}", **dispatcher)
    body = response.json()
    assert len(body["items"]) == 4
    assert body["counts"]["scheduled"] == 2
    assert body["counts"]["completed"] == 1
    assert body["counts"]["cancelled"] == 0
    first_count = len(queries)
    for _ in range(5):
        WorkOrderFactory(customer=customer, technician=TechnicianFactory(), equipment=EquipmentFactory())
    with CaptureQueriesContext(connection) as more:
        again = client.get(f"{BASE}/work-orders?customer_id={customer.public_id}", **dispatcher)
    assert len(again.json()["items"]) == 9
    assert len(more) == first_count
    open_only = client.get(f"{BASE}/work-orders?open=true&technician_id={technician.public_id}", **dispatcher)
    assert len(open_only.json()["items"]) == 3
    equipment = client.get(f"{BASE}/equipment?customer_id={customer.public_id}", **dispatcher).json()
    assert len(equipment["items"]) == 4
    technicians = client.get(f"{BASE}/technicians", **dispatcher).json()
    assert len(technicians) == 6
