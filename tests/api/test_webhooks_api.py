"""Webhooks over the API: subscribe, list, delivery log, replay; permission and scope checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.shared import events, webhooks
from fedele.shared.events import DomainEvent, publish
from fedele.shared.models import AuditLog, WebhookDelivery, WebhookEndpoint
from fedele.shared.tests.webhook_receiver import Receiver

START = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class InvoicePaid(DomainEvent):
    event_type = "tests.InvoicePaid"
    invoice: str
    amount: str


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def _publish_and_fan_out(invoice: str = "INV-2026-000001") -> None:
    row = publish(InvoicePaid(invoice, "12.30"), aggregate_type="invoice", aggregate_id=invoice)
    assert events.dispatch(row.event_id) is True


@pytest.mark.django_db
def test_webhook_api_subscribe_list_deliveries_and_replay(
    client: Client, receiver: Receiver, time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    admin = user_with_roles("admin")
    headers = auth_header(admin)
    response = client.post(
        "/api/v1/webhooks",
        json.dumps({"url": receiver.url, "event_types": ["tests.InvoicePaid"], "description": "ERP"}),
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) == 6 + 48
    assert body["event_types"] == ["tests.InvoicePaid"]
    receiver.secret = body["secret"]

    listed = client.get("/api/v1/webhooks", **headers).json()
    assert [e["id"] for e in listed] == [body["id"]]
    assert "secret" not in listed[0]

    _publish_and_fan_out()
    delivery = WebhookDelivery.objects.get()
    webhooks.deliver(delivery.pk)
    assert receiver.received[0].signature_valid

    deliveries = client.get(f"/api/v1/webhooks/{body['id']}/deliveries", **headers).json()
    assert [(d["id"], d["status"], d["attempts"]) for d in deliveries] == [
        (str(delivery.public_id), "succeeded", 1)
    ]
    response = client.post(
        f"/api/v1/webhooks/deliveries/{delivery.public_id}/replay", content_type="application/json", **headers
    )
    assert response.status_code == 200
    assert response.json()["attempts"] == 2
    assert len(receiver.received) == 2

    missing = client.get("/api/v1/webhooks/00000000-0000-0000-0000-000000000000/deliveries", **headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_webhook_api_refuses_callers_without_permission_or_scope(client: Client) -> None:
    agent = user_with_roles("agent")
    admin = user_with_roles("admin")
    payload = json.dumps({"url": "https://x.example/hook", "event_types": ["*"]})
    response = client.post("/api/v1/webhooks", payload, content_type="application/json", **auth_header(agent))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert client.get("/api/v1/webhooks", **auth_header(agent)).status_code == 403
    read_only = auth_header(admin, scopes=["read"])
    response = client.post("/api/v1/webhooks", payload, content_type="application/json", **read_only)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    bad = json.dumps({"url": "ftp://x.example/hook", "event_types": ["*"]})
    response = client.post("/api/v1/webhooks", bad, content_type="application/json", **auth_header(admin))
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"url": ["Use an http(s) URL."]}
    assert WebhookEndpoint.objects.count() == 0
    assert AuditLog.objects.filter(action__startswith="webhook").count() == 0
