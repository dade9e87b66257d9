"""Accounts API: /me and the caller's API tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from fedele.accounts import services
from fedele.accounts.models import ApiToken
from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.shared.models import AuditLog

START = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


def _post(client: Client, path: str, body: object, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


@pytest.mark.django_db
def test_me_describes_the_caller(client: Client) -> None:
    user = user_with_roles(
        "agent", "analyst", first_name="Paola", last_name="Gialli", email="paola@example.it"
    )
    response = client.get("/api/v1/me", **auth_header(user))
    assert response.status_code == 200
    assert response.json() == {
        "id": str(user.public_id),
        "email": "paola@example.it",
        "first_name": "Paola",
        "last_name": "Gialli",
        "language": "en",
        "roles": ["agent", "analyst"],
        "two_factor_enabled": False,
    }


@pytest.mark.django_db
def test_create_list_and_revoke_tokens(client: Client, time_machine) -> None:
    time_machine.move_to(START, tick=False)
    user = user_with_roles("agent")
    headers = auth_header(user)
    response = _post(
        client, "/api/v1/me/tokens", {"name": "CI", "scopes": ["read"], "expires_in_days": 30}, headers
    )
    assert response.status_code == 201, response.content
    created = response.json()
    plain = created.pop("token")
    token = ApiToken.objects.get(public_id=created["id"])
    assert created == {
        "id": str(token.public_id),
        "name": "CI",
        "prefix": token.prefix,
        "scopes": ["read"],
        "created_at": "2026-09-01T09:00:00Z",
        "last_used_at": None,
        "expires_at": "2026-10-01T09:00:00Z",
        "revoked_at": None,
    }
    assert plain.startswith(f"fdl_{token.prefix}_")
    assert services.hash_token(plain) == token.token_hash

    listed = client.get("/api/v1/me/tokens", **headers).json()
    assert [t["name"] for t in listed] == ["CI", "test"]
    assert all("token" not in t for t in listed)

    new_headers = {"HTTP_AUTHORIZATION": f"Bearer {plain}"}
    assert client.get("/api/v1/me", **new_headers).status_code == 200
    response = _post(client, f"/api/v1/me/tokens/{token.public_id}/revoke", {}, headers)
    assert response.status_code == 200
    assert response.json()["revoked_at"] == "2026-09-01T09:00:00Z"
    assert client.get("/api/v1/me", **new_headers).status_code == 401
    assert AuditLog.objects.filter(action="api_token.revoked", object_id=str(token.public_id)).count() == 1


@pytest.mark.django_db
def test_token_of_another_user_cannot_be_revoked(client: Client) -> None:
    owner = user_with_roles("agent")
    token, _plain = services.api_token_create(user=owner, name="mine")
    response = _post(
        client, f"/api/v1/me/tokens/{token.public_id}/revoke", {}, auth_header(user_with_roles("admin"))
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Token not found.", "fields": {}}}
    token.refresh_from_db()
    assert token.revoked_at is None
    assert not AuditLog.objects.filter(action="api_token.revoked").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "scopes": ["admin"]}, "scopes.0"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "x", "expires_in_days": "soon"}, "expires_in_days"),
        ({"name": "x", "owner": "someone"}, "owner"),
    ],
)
def test_bad_token_requests_write_nothing(client: Client, body: dict[str, object], field: str) -> None:
    headers = auth_header(user_with_roles("agent"))
    before = (ApiToken.objects.count(), AuditLog.objects.count())
    response = _post(client, "/api/v1/me/tokens", body, headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    assert (ApiToken.objects.count(), AuditLog.objects.count()) == before


@pytest.mark.django_db
def test_unknown_fields_are_named(client: Client) -> None:
    response = _post(
        client, "/api/v1/me/tokens", {"name": "x", "admin": True}, auth_header(user_with_roles("agent"))
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"admin": ["Unknown field."]}


@pytest.mark.django_db
def test_expired_token_in_the_list_and_in_use(client: Client, time_machine) -> None:
    time_machine.move_to(START, tick=False)
    user = user_with_roles("agent")
    _token, plain = services.api_token_create(user=user, name="week", expires_in_days=7)
    time_machine.move_to(START + timedelta(days=8), tick=False)
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert response.status_code == 401
    listed = client.get("/api/v1/me/tokens", **auth_header(user)).json()
    assert {t["name"]: t["expires_at"] for t in listed}["week"] == "2026-09-08T09:00:00Z"
