"""API authentication end to end on a business endpoint: token scopes, revocation, expiry, the
audit actor, and the web session with CSRF."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from fedele.accounts import services
from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.customers.models import Customer
from fedele.shared.models import AuditLog, OutboxEvent

START = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
ANNA = {"kind": "person", "first_name": "Anna", "last_name": "Neri"}
UNAUTHENTICATED = {
    "error": {
        "code": "not_authenticated",
        "message": "Authentication is required: send a valid API token.",
        "fields": {},
    }
}


@pytest.mark.django_db
def test_revoked_and_expired_tokens_get_401(client: Client, time_machine) -> None:
    time_machine.move_to(START, tick=False)
    user = user_with_roles("agent")
    revoked, revoked_plain = services.api_token_create(user=user, name="revoked")
    _expiring, expiring_plain = services.api_token_create(user=user, name="expiring", expires_in_days=7)
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {revoked_plain}").status_code == 200
    services.api_token_revoke(user=user, token_public_id=str(revoked.public_id))
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {revoked_plain}")
    assert response.status_code == 401
    assert response.json() == UNAUTHENTICATED

    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {expiring_plain}").status_code == 200
    time_machine.move_to(START + timedelta(days=7), tick=False)
    response = client.post(
        "/api/v1/customers",
        json.dumps(ANNA),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {expiring_plain}",
    )
    assert response.status_code == 401
    assert response.json() == UNAUTHENTICATED
    assert Customer.objects.count() == 0


@pytest.mark.django_db
def test_read_only_token_cannot_write(client: Client) -> None:
    user = user_with_roles("agent")
    read_only = auth_header(user, scopes=["read"])
    assert client.get("/api/v1/customers", **read_only).status_code == 200
    before = (Customer.objects.count(), AuditLog.objects.count(), OutboxEvent.objects.count())
    response = client.post(
        "/api/v1/customers", json.dumps(ANNA), content_type="application/json", **read_only
    )
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "insufficient_scope",
            "message": "This token lacks the 'write' scope.",
            "fields": {},
        }
    }
    response = client.post(
        "/api/v1/me/tokens", json.dumps({"name": "x"}), content_type="application/json", **read_only
    )
    assert response.status_code == 403
    assert (Customer.objects.count(), AuditLog.objects.count(), OutboxEvent.objects.count()) == before

    write_only = auth_header(user, scopes=["write"])
    response = client.get("/api/v1/customers", **write_only)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


@pytest.mark.django_db
def test_token_acts_as_its_user_in_the_audit_log(client: Client) -> None:
    user = user_with_roles("agent")
    response = client.post(
        "/api/v1/customers",
        json.dumps(ANNA),
        content_type="application/json",
        HTTP_USER_AGENT="pytest-agent",
        HTTP_X_REQUEST_ID="req-42",
        **auth_header(user),
    )
    assert response.status_code == 201
    row = AuditLog.objects.get(action="customer.created")
    assert (row.actor_id, row.actor_label, row.user_agent, row.request_id, row.ip_address) == (
        user.pk,
        user.email,
        "pytest-agent",
        "req-42",
        "127.0.0.1",
    )


@pytest.mark.django_db
def test_web_session_can_call_the_api_but_writes_need_csrf() -> None:
    user = user_with_roles("agent")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["email"] == user.email
    response = client.post("/api/v1/customers", json.dumps(ANNA), content_type="application/json")
    assert response.status_code == 403
    assert response.json() == {
        "error": {"code": "permission_denied", "message": "CSRF check Failed", "fields": {}}
    }
    assert Customer.objects.count() == 0

    client.get("/accounts/profile/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/api/v1/customers", json.dumps(ANNA), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201, response.content
    assert Customer.objects.count() == 1
