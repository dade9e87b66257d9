"""User and team administration over the API: roles, deactivation, permission checks."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from fedele.accounts.models import Team, User
from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.shared.models import AuditLog


def post(client: Client, path: str, body: object, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


def patch(client: Client, path: str, body: object, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.patch(path, json.dumps(body), content_type="application/json", **headers)


@pytest.mark.django_db
def test_admin_creates_a_user_with_roles_and_changes_them(client: Client) -> None:
    admin = user_with_roles("admin")
    headers = auth_header(admin)
    response = post(
        client,
        "/api/v1/users",
        {
            "email": "Nuovo.Agente@Example.it",
            "first_name": "Nuovo",
            "last_name": "Agente",
            "roles": ["agent", "dispatcher"],
            "password": "Long-enough-pass-77",
        },
        headers,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "nuovo.agente@example.it"
    assert body["roles"] == ["agent", "dispatcher"]
    assert body["is_active"] is True
    created = User.objects.get(email="nuovo.agente@example.it")
    assert created.check_password("Long-enough-pass-77")
    assert created.has_perm("customers.add_customer")

    response = patch(client, f"/api/v1/users/{body['id']}", {"roles": ["analyst"]}, headers)
    assert response.status_code == 200
    assert response.json()["roles"] == ["analyst"]
    created = User.objects.get(pk=created.pk)  # fresh permission cache
    assert not created.has_perm("customers.add_customer")
    assert AuditLog.objects.filter(action="user.roles_changed", object_id=body["id"]).count() == 1


@pytest.mark.django_db
def test_deactivated_user_loses_api_access_and_admin_cannot_deactivate_self(client: Client) -> None:
    admin = user_with_roles("admin")
    agent = user_with_roles("agent")
    agent_headers = auth_header(agent)
    assert client.get("/api/v1/me", **agent_headers).status_code == 200

    response = patch(client, f"/api/v1/users/{agent.public_id}", {"is_active": False}, auth_header(admin))
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert client.get("/api/v1/me", **agent_headers).status_code == 401

    response = patch(client, f"/api/v1/users/{admin.public_id}", {"is_active": False}, auth_header(admin))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "cannot_deactivate_self"
    assert User.objects.get(pk=admin.pk).is_active is True


@pytest.mark.django_db
def test_bad_user_input_writes_nothing(client: Client) -> None:
    admin = user_with_roles("admin")
    headers = auth_header(admin)
    before = User.objects.count()
    cases = [
        ({"email": "x@example.it", "roles": ["wizard"], "password": "Long-enough-pass-77"}, 422),
        ({"email": "not-an-email", "roles": ["agent"], "password": "Long-enough-pass-77"}, 422),
        ({"email": "y@example.it", "roles": ["agent"], "password": "1234567890"}, 422),
        ({"email": "z@example.it", "roles": [], "password": "Long-enough-pass-77"}, 422),
        ({"email": admin.email, "roles": ["agent"], "password": "Long-enough-pass-77"}, 409),
        (
            {
                "email": "w@example.it",
                "roles": ["agent"],
                "password": "Long-enough-pass-77",
                "is_superuser": True,
            },
            422,
        ),
    ]
    for body, status in cases:
        response = post(client, "/api/v1/users", body, headers)
        assert response.status_code == status, (body, response.content)
        assert set(response.json()) == {"error"}
    assert User.objects.count() == before


@pytest.mark.django_db
def test_only_user_managers_may_administer(client: Client) -> None:
    supervisor = user_with_roles("supervisor")
    response = client.get("/api/v1/users", **auth_header(supervisor))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    response = post(client, "/api/v1/teams", {"name": "Back office"}, auth_header(supervisor))
    assert response.status_code == 403
    assert Team.objects.count() == 0


@pytest.mark.django_db
def test_teams_are_created_with_members_and_unknown_members_are_refused(client: Client) -> None:
    admin = user_with_roles("admin")
    first = user_with_roles("agent")
    second = user_with_roles("agent")
    headers = auth_header(admin)
    response = post(
        client,
        "/api/v1/teams",
        {"name": "Assistenza", "member_ids": [str(first.public_id), str(second.public_id)]},
        headers,
    )
    assert response.status_code == 201
    assert sorted(response.json()["member_ids"]) == sorted([str(first.public_id), str(second.public_id)])
    response = post(
        client,
        "/api/v1/teams",
        {"name": "Fantasma", "member_ids": ["00000000-0000-4000-8000-000000000000"]},
        headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"]["member_ids"] == [
        "Unknown user 00000000-0000-4000-8000-000000000000."
    ]
    response = post(client, "/api/v1/teams", {"name": "Assistenza"}, headers)
    assert response.status_code == 409
    assert list(Team.objects.values_list("name", flat=True)) == ["Assistenza"]
    listing = client.get("/api/v1/teams", **headers).json()
    assert [team["name"] for team in listing] == ["Assistenza"]
