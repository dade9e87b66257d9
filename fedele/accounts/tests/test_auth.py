"""Authentication: argon2 passwords, bearer tokens (scopes, revocation, expiry), web session with CSRF."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher, make_password
from django.test import Client

from fedele.accounts.models import ApiToken
from fedele.accounts.tests.factories import DEFAULT_PASSWORD, auth_header, user_with_roles
from fedele.shared.models import AuditLog

START = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
ANNA = {"kind": "person", "first_name": "Anna", "last_name": "Neri"}
UNAUTHENTICATED = {
    "error": {
        "code": "not_authenticated",
        "message": "Authentication is required: send a valid API token.",
        "fields": {},
    }
}


def test_argon2_is_the_production_password_hasher(settings) -> None:
    from config.settings import base

    assert base.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    settings.PASSWORD_HASHERS = base.PASSWORD_HASHERS
    encoded = make_password("Long-enough-pass-77")
    assert encoded.startswith("argon2$argon2id$")
    assert identify_hasher(encoded).algorithm == "argon2"
    assert check_password("Long-enough-pass-77", encoded)
    assert not check_password("long-enough-pass-77", encoded)


@pytest.mark.django_db
def test_requests_without_a_valid_token_get_401_with_the_envelope(client: Client) -> None:
    cases = [
        {},
        {"HTTP_AUTHORIZATION": "Bearer"},
        {"HTTP_AUTHORIZATION": "Bearer not-a-token"},
        {"HTTP_AUTHORIZATION": "Bearer fdl_00000000_forged"},
        {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},
    ]
    for headers in cases:
        response = client.get("/api/v1/me", **headers)
        assert response.status_code == 401, headers
        assert response.json() == UNAUTHENTICATED


@pytest.mark.django_db
def test_web_login_unlocks_after_the_lockout(client: Client, settings, time_machine) -> None:
    settings.FEDELE_LOGIN_MAX_FAILURES = 2
    settings.FEDELE_LOGIN_LOCKOUT_SECONDS = 300
    time_machine.move_to(START, tick=False)
    user = user_with_roles("agent")
    for _ in range(2):
        assert client.post("/accounts/login/", {"email": user.email, "password": "wrong"}).status_code == 400
    locked = client.post("/accounts/login/", {"email": user.email, "password": DEFAULT_PASSWORD})
    assert locked.status_code == 429
    assert locked["Retry-After"] == "300"
    assert "_auth_user_id" not in client.session
    time_machine.move_to(START + timedelta(seconds=300), tick=False)
    response = client.post("/accounts/login/", {"email": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.django_db
def test_scopes_are_enforced_on_the_accounts_api(client: Client) -> None:
    user = user_with_roles("agent")
    read_only = auth_header(user, scopes=["read"])
    assert client.get("/api/v1/me/tokens", **read_only).status_code == 200
    before = (ApiToken.objects.count(), AuditLog.objects.count())
    response = client.post(
        "/api/v1/me/tokens", json.dumps({"name": "x"}), content_type="application/json", **read_only
    )
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "insufficient_scope",
            "message": "This token lacks the 'write' scope.",
            "fields": {},
        }
    }
    assert (ApiToken.objects.count(), AuditLog.objects.count()) == before
    write_only = auth_header(user, scopes=["write"])
    response = client.get("/api/v1/me/tokens", **write_only)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
