"""API guard: Idempotency-Key replay, per-caller rate limits and the body size limit, over real requests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.customers.models import Customer
from fedele.customers.services import customers as customer_services
from fedele.shared import idempotency
from fedele.shared.models import AuditLog, IdempotencyRecord, OutboxEvent

START = datetime(2026, 6, 1, 10, 0, 15, tzinfo=UTC)
ANNA = {"kind": "person", "first_name": "Anna", "last_name": "Neri", "email": "anna@example.it"}


def _post(
    client: Client,
    body: Any,
    headers: dict[str, str],
    key: str | None = None,
    path: str = "/api/v1/customers",
):  # type: ignore[no-untyped-def]
    extra = dict(headers)
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, raw, content_type="application/json", **extra)


def _counts() -> tuple[int, int, int]:
    """Customers, audit rows and outbox events, leaving out the audit rows of token set-up."""
    audit_rows = AuditLog.objects.exclude(action="api_token.created").count()
    return Customer.objects.count(), audit_rows, OutboxEvent.objects.count()


@pytest.fixture
def headers() -> dict[str, str]:
    return auth_header(user_with_roles("agent"))


# --- Idempotency-Key -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_same_key_and_body_replays_the_first_response(client: Client, headers: dict[str, str]) -> None:
    first = _post(client, ANNA, headers, key="order-1")
    assert first.status_code == 201, first.content
    assert "Idempotent-Replayed" not in first
    after_first = _counts()
    assert after_first[0] == 1

    second = _post(client, ANNA, headers, key="order-1")
    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert second.json()["id"] == first.json()["id"]
    assert _counts() == after_first
    record = IdempotencyRecord.objects.get()
    assert (record.method, record.path, record.status_code) == ("POST", "/api/v1/customers", 201)
    assert record.completed_at is not None


@pytest.mark.django_db
def test_same_key_with_another_body_is_a_conflict(client: Client, headers: dict[str, str]) -> None:
    assert _post(client, ANNA, headers, key="k").status_code == 201
    before = _counts()
    response = _post(client, {**ANNA, "email": "other@example.it"}, headers, key="k")
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "idempotency_key_reused",
            "message": "This Idempotency-Key was already used with a different request.",
            "fields": {},
        }
    }
    # Another path with the same key and body is another request too.
    response = _post(client, ANNA, headers, key="k", path="/api/v1/me/tokens")
    assert response.status_code == 409
    assert _counts() == before


@pytest.mark.django_db
def test_keys_belong_to_their_caller(client: Client) -> None:
    first_caller = auth_header(user_with_roles("agent"))
    second_caller = auth_header(user_with_roles("agent"))
    one = _post(client, ANNA, first_caller, key="shared-key")
    two = _post(client, {**ANNA, "email": "bruno@example.it"}, second_caller, key="shared-key")
    assert (one.status_code, two.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in two
    assert one.json()["id"] != two.json()["id"]
    assert Customer.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 2


@pytest.mark.django_db
def test_server_errors_are_not_stored_so_the_client_can_retry(
    client: Client, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create = customer_services.customer_create
    calls = {"n": 0}

    def flaky_create(**kwargs: Any) -> Customer:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        return real_create(**kwargs)

    monkeypatch.setattr(customer_services, "customer_create", flaky_create)
    failed = _post(client, ANNA, headers, key="retry-me")
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "internal_error"
    assert IdempotencyRecord.objects.count() == 0
    assert _counts() == (0, 0, 0)

    retried = _post(client, ANNA, headers, key="retry-me")
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_client_errors_are_stored_and_replayed(client: Client, headers: dict[str, str]) -> None:
    bad = {**ANNA, "phone": "12"}
    first = _post(client, bad, headers, key="bad-1")
    assert first.status_code == 422
    second = _post(client, bad, headers, key="bad-1")
    assert second.status_code == 422
    assert second["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert _counts() == (0, 0, 0)


@pytest.mark.django_db
def test_a_key_in_flight_is_refused(client: Client, headers: dict[str, str], time_machine) -> None:
    time_machine.move_to(START, tick=False)
    scope = "auth:" + __import__("hashlib").sha256(headers["HTTP_AUTHORIZATION"].encode()).hexdigest()[:40]
    IdempotencyRecord.objects.create(
        scope=scope, key="busy", method="POST", path="/api/v1/customers", request_hash="x", created_at=START
    )
    response = _post(client, ANNA, headers, key="busy")
    assert response.status_code == 409
    assert response.json()["error"]["code"] in {"idempotency_in_progress", "idempotency_key_reused"}
    assert Customer.objects.count() == 0
    # An in-flight record older than two minutes was abandoned (the worker died): the key is free.
    time_machine.move_to(START + timedelta(minutes=3), tick=False)
    assert _post(client, ANNA, headers, key="busy").status_code == 201
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_keys_expire_after_a_day(client: Client, headers: dict[str, str], time_machine) -> None:
    time_machine.move_to(START, tick=False)
    assert _post(client, ANNA, headers, key="daily").status_code == 201
    time_machine.move_to(START + timedelta(hours=23), tick=False)
    assert _post(client, ANNA, headers, key="daily")["Idempotent-Replayed"] == "true"
    time_machine.move_to(START + timedelta(hours=25), tick=False)
    assert idempotency.purge_expired() == 1
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.django_db
def test_overlong_key_is_refused(client: Client, headers: dict[str, str]) -> None:
    response = _post(client, ANNA, headers, key="k" * 256)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert _counts() == (0, 0, 0)
    assert IdempotencyRecord.objects.count() == 0
    assert _post(client, ANNA, headers, key="k" * 255).status_code == 201


@pytest.mark.django_db
def test_patch_is_idempotent_too_and_get_ignores_the_key(client: Client, headers: dict[str, str]) -> None:
    created = _post(client, ANNA, headers).json()
    path = f"/api/v1/customers/{created['id']}"
    first = client.patch(
        path,
        json.dumps({"city": "Milano"}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="p1",
        **headers,
    )
    second = client.patch(
        path,
        json.dumps({"city": "Milano"}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="p1",
        **headers,
    )
    assert (first.status_code, second.status_code) == (200, 200)
    assert second["Idempotent-Replayed"] == "true"
    assert AuditLog.objects.filter(action="customer.updated").count() == 1
    read = client.get(path, HTTP_IDEMPOTENCY_KEY="p1", **headers)
    assert read.status_code == 200 and "Idempotent-Replayed" not in read


# --- rate limit ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rate_limit_per_caller(client: Client, settings, time_machine) -> None:
    settings.FEDELE_API_RATE_LIMIT_PER_MINUTE = 3
    time_machine.move_to(START, tick=False)  # 15 s into the minute
    limited = auth_header(user_with_roles("agent"))
    other = auth_header(user_with_roles("agent"))
    for _ in range(3):
        assert client.get("/api/v1/me", **limited).status_code == 200
    response = client.get("/api/v1/me", **limited)
    assert response.status_code == 429
    assert response["Retry-After"] == "45"
    assert response.json() == {
        "error": {
            "code": "rate_limited",
            "message": "Too many requests: the limit is 3 per 60 seconds.",
            "fields": {},
        }
    }
    before = _counts()
    response = _post(client, ANNA, limited, key="while-limited")
    assert response.status_code == 429
    assert _counts() == before
    assert IdempotencyRecord.objects.count() == 0
    assert client.get("/api/v1/me", **other).status_code == 200  # another caller has its own budget
    time_machine.move_to(START + timedelta(seconds=45), tick=False)  # the next minute
    assert client.get("/api/v1/me", **limited).status_code == 200


# --- body size -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_oversized_body_is_refused_with_the_envelope(
    client: Client, headers: dict[str, str], settings
) -> None:
    settings.FEDELE_MAX_BODY_BYTES = 1000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = _post(client, {**ANNA, "notes": "x" * 2000}, headers, key="big")
    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "code": "payload_too_large",
            "message": "The request body is too large (limit 1000 bytes).",
            "fields": {},
        }
    }
    assert _counts() == (0, 0, 0)
    assert IdempotencyRecord.objects.count() == 0
    assert _post(client, {**ANNA, "notes": "x" * 500}, headers).status_code == 201


@pytest.mark.django_db
def test_body_limit_follows_django_limit_when_that_is_lower(
    client: Client, headers: dict[str, str], settings
) -> None:
    settings.FEDELE_MAX_BODY_BYTES = 100_000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = _post(client, {**ANNA, "notes": "x" * 2000}, headers, key="big")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert _counts() == (0, 0, 0)


@pytest.mark.django_db
def test_oversized_web_form_gets_plain_413(client: Client, settings) -> None:
    settings.FEDELE_MAX_BODY_BYTES = 100
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = client.post(
        "/accounts/login/",
        "email=a%40example.it&password=" + "p" * 300,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_every_response_carries_a_request_id(client: Client, headers: dict[str, str]) -> None:
    response = client.get("/api/v1/me", HTTP_X_REQUEST_ID="req-123", **headers)
    assert response["X-Request-ID"] == "req-123"
    generated = client.get("/api/v1/me", **headers)["X-Request-ID"]
    assert len(generated) == 32


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_create_one_customer(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    from django.db import connection

    headers = auth_header(user_with_roles("agent"))
    real_create = customer_services.customer_create

    def slow_create(**kwargs: Any) -> Customer:
        time.sleep(0.4)  # the second request arrives while the first is in flight
        return real_create(**kwargs)

    monkeypatch.setattr(customer_services, "customer_create", slow_create)
    barrier = threading.Barrier(2)
    statuses: list[tuple[int, str]] = []

    def send() -> None:
        try:
            barrier.wait(timeout=10)
            response = _post(Client(), ANNA, headers, key="same-moment")
            code = response.json().get("error", {}).get("code", "") if response.status_code != 201 else ""
            statuses.append((response.status_code, code))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [(201, ""), (409, "idempotency_in_progress")]
    assert Customer.objects.count() == 1
    assert OutboxEvent.objects.count() == 1
