"""API tokens and their users' permissions are cached per process, and every change that matters
(revoking the token, deactivating or erasing the user, changing roles or a role's permissions) is seen
by the very next request."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fedele.accounts import services
from fedele.accounts.models import ApiToken, User
from fedele.accounts.tests.factories import user_with_roles
from fedele.shared import versioned_cache

pytestmark = pytest.mark.django_db
ME = "/api/v1/me"


def _get(client: Client, plain: str) -> Any:
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {plain}")


def _statements(client: Client, plain: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = _get(client, plain)
    assert response.status_code == 200, response.content
    return len(queries.captured_queries), [q["sql"] for q in queries.captured_queries]


@pytest.fixture
def agent() -> User:
    return user_with_roles("agent", email="agente@example.it")


def test_a_known_token_costs_one_version_read_per_request(client: Client, agent: User) -> None:
    _token, plain = services.api_token_create(user=agent, name="cache")
    first, _sql = _statements(client, plain)
    # version, token with user and organisation, groups, permissions, last_used_at
    assert first == 5
    again, sql = _statements(client, plain)
    assert again == 1
    assert "cache-version:" in sql[0]
    assert _get(client, plain).json()["email"] == "agente@example.it"


def test_revoking_a_token_refuses_the_next_request(client: Client, agent: User) -> None:
    token, plain = services.api_token_create(user=agent, name="cache")
    assert _get(client, plain).status_code == 200
    services.api_token_revoke(user=agent, token_public_id=str(token.public_id))
    refused = _get(client, plain)
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "not_authenticated")


def test_deactivating_the_user_refuses_the_next_request(client: Client, agent: User) -> None:
    _token, plain = services.api_token_create(user=agent, name="cache")
    assert _get(client, plain).status_code == 200
    services.user_set_active(user=agent, is_active=False)
    assert _get(client, plain).status_code == 401
    services.user_set_active(user=agent, is_active=True)
    assert _get(client, plain).status_code == 200


def test_erasing_the_user_refuses_the_next_request(client: Client, agent: User) -> None:
    _token, plain = services.api_token_create(user=agent, name="cache")
    assert _get(client, plain).status_code == 200
    services.user_erase(user=agent)
    assert _get(client, plain).status_code == 401


def test_changing_roles_changes_permissions_on_the_next_request(client: Client) -> None:
    admin = user_with_roles("admin", email="capo@example.it")
    _token, plain = services.api_token_create(user=admin, name="cache")
    users = "/api/v1/users"
    assert client.get(users, HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 200
    services.user_set_roles(user=admin, roles=["agent"])
    denied = client.get(users, HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "permission_denied")
    assert _get(client, plain).json()["roles"] == ["agent"]
    services.user_set_roles(user=admin, roles=["admin"])
    assert client.get(users, HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 200


def test_a_role_losing_a_permission_is_seen_on_the_next_request(client: Client) -> None:
    admin = user_with_roles("admin", email="capo@example.it")
    _token, plain = services.api_token_create(user=admin, name="cache")
    users = "/api/v1/users"
    assert client.get(users, HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 200
    # As the admin site would do it: the group's permissions change, no accounts service involved.
    Group.objects.get(name="admin").permissions.remove(
        Permission.objects.get(content_type__app_label="accounts", codename="manage_users")
    )
    assert client.get(users, HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 403


def test_a_change_by_another_process_is_seen_on_the_next_request(client: Client, agent: User) -> None:
    token, plain = services.api_token_create(user=agent, name="cache")
    assert _get(client, plain).status_code == 200
    # Another process revokes the token: the row and the version change, this process's cache does not.
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=token.created_at)
    assert _get(client, plain).status_code == 200  # without the version: the cached token
    versioned_cache.bump(services.AUTH_CACHE)
    assert _get(client, plain).status_code == 401


def test_requests_get_their_own_user_objects(client: Client, agent: User) -> None:
    _token, plain = services.api_token_create(user=agent, name="cache")
    with versioned_cache.scope():
        first = services.api_token_authenticate(plain)
        second = services.api_token_authenticate(plain)
    assert first is not None and second is not None
    assert first.user is not second.user
    assert first.user.pk == second.user.pk == agent.pk
    first.user.first_name = "Cambiato"
    assert second.user.first_name == agent.first_name


def test_last_used_is_written_at_most_once_a_minute(client: Client, agent: User, time_machine: Any) -> None:
    token, plain = services.api_token_create(user=agent, name="cache")
    time_machine.move_to("2026-05-04 10:00:00+00:00", tick=False)
    _get(client, plain)
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_at.isoformat() == "2026-05-04T10:00:00+00:00"
    time_machine.move_to("2026-05-04 10:00:50+00:00", tick=False)
    assert _statements(client, plain)[0] == 1
    time_machine.move_to("2026-05-04 10:01:30+00:00", tick=False)
    count, sql = _statements(client, plain)
    assert count == 2
    assert sql[1].startswith('UPDATE "accounts_apitoken" SET "last_used_at"')
    token.refresh_from_db()
    assert token.last_used_at.isoformat() == "2026-05-04T10:01:30+00:00"


def test_outside_a_request_every_call_reads_the_database(agent: User) -> None:
    token, plain = services.api_token_create(user=agent, name="cache")
    assert services.api_token_authenticate(plain) == token
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=token.created_at)
    assert services.api_token_authenticate(plain) is None
