"""Outbound webhooks against a real HTTP receiver: signatures, filtering, retries, failure, replay."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from fedele.shared import events, webhooks
from fedele.shared.events import DomainEvent, publish
from fedele.shared.models import AuditLog, OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from fedele.shared.tests.webhook_receiver import Receiver

START = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
SECRET = "whsec_test_secret"


@dataclass(frozen=True, slots=True)
class InvoicePaid(DomainEvent):
    event_type = "tests.InvoicePaid"
    invoice: str
    amount: str


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def _endpoint(url: str, event_types: list[str], secret: str = SECRET) -> WebhookEndpoint:
    endpoint = webhooks.endpoint_create(url=url, event_types=event_types)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=secret)
    endpoint.refresh_from_db()
    return endpoint


def _publish_and_fan_out(invoice: str = "INV-2026-000001") -> OutboxEvent:
    row = publish(InvoicePaid(invoice, "12.30"), aggregate_type="invoice", aggregate_id=invoice)
    assert events.dispatch(row.event_id) is True
    return row


# --- signatures -----------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_timestamp_and_body() -> None:
    header = webhooks.sign("whsec_x", b'{"a":1}', 1_700_000_000)
    assert header == (
        "t=1700000000,v1=" + __import__("hmac").new(b"whsec_x", b'1700000000.{"a":1}', "sha256").hexdigest()
    )


def test_verify_signature_accepts_the_real_one_and_rejects_forgeries() -> None:
    body = b'{"id":"evt_1","type":"x"}'
    now = int(time.time())
    good = webhooks.sign(SECRET, body, now)
    assert webhooks.verify_signature(SECRET, good, body) is True
    assert webhooks.verify_signature(SECRET, good, body + b" ") is False  # tampered body
    assert webhooks.verify_signature(SECRET, good, body.replace(b"x", b"y")) is False
    assert webhooks.verify_signature("whsec_other", good, body) is False  # wrong secret
    stale = webhooks.sign(SECRET, body, now - 301)
    assert webhooks.verify_signature(SECRET, stale, body) is False  # replayed later
    future = webhooks.sign(SECRET, body, now + 301)
    assert webhooks.verify_signature(SECRET, future, body) is False
    assert webhooks.verify_signature(SECRET, stale, body, tolerance_seconds=600) is True
    # The timestamp is signed: moving it breaks the MAC.
    moved = good.replace(f"t={now}", f"t={now + 1}")
    assert webhooks.verify_signature(SECRET, moved, body) is False
    for malformed in (
        "",
        "garbage",
        "t=abc,v1=00",
        f"t={now}",
        "v1=00",
        f"t={now},v1=é",
        f"t={now},v1=\ud800",
    ):
        assert webhooks.verify_signature(SECRET, malformed, body) is False


def test_backoff_schedule() -> None:
    assert [webhooks.backoff_for(n).total_seconds() for n in range(1, 6)] == [30, 60, 120, 240, 480]
    assert webhooks.backoff_for(0) == timedelta(seconds=30)
    assert webhooks.backoff_for(40) == timedelta(hours=6)


# --- endpoints and fan-out ------------------------------------------------------------------------


@pytest.mark.django_db
def test_endpoint_validation_writes_nothing() -> None:
    for url, types in (("ftp://example.com/x", ["*"]), ("example.com", ["*"]), ("https://ok.example", [" "])):
        with pytest.raises(webhooks.ValidationFailed):
            webhooks.endpoint_create(url=url, event_types=types)
    assert WebhookEndpoint.objects.count() == 0
    assert AuditLog.objects.count() == 0


@pytest.mark.django_db
def test_fan_out_creates_one_delivery_per_interested_active_endpoint(
    django_capture_on_commit_callbacks,
) -> None:
    wants_it = _endpoint("https://a.example/hook", ["tests.InvoicePaid", "tests.Other"])
    wants_all = _endpoint("https://b.example/hook", ["*"])
    _endpoint("https://c.example/hook", ["tests.Other"])
    inactive = _endpoint("https://d.example/hook", ["*"])
    webhooks.endpoint_deactivate(endpoint_public_id=str(inactive.public_id))
    assert wants_it.event_types == ["tests.InvoicePaid", "tests.Other"]
    assert AuditLog.objects.filter(action="webhook_endpoint.created").count() == 4
    assert AuditLog.objects.filter(action="webhook_endpoint.deactivated").count() == 1

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        row = _publish_and_fan_out()
    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert [d.endpoint_id for d in deliveries] == [wants_it.pk, wants_all.pk]
    assert all(d.status == WebhookDelivery.Status.PENDING and d.attempts == 0 for d in deliveries)
    assert deliveries[0].payload == {
        "id": str(row.event_id),
        "type": "tests.InvoicePaid",
        "created": row.occurred_at.isoformat(),
        "aggregate": {"type": "invoice", "id": "INV-2026-000001"},
        "data": {"invoice": "INV-2026-000001", "amount": "12.30"},
    }
    assert len(callbacks) == 3  # the outbox dispatch and one send per delivery

    # The same event fanned out again (at-least-once) makes no second delivery.
    webhooks.fan_out(events._envelope(row))
    assert WebhookDelivery.objects.count() == 2


@pytest.mark.django_db
def test_delivery_is_sent_signed_after_the_event_commits(
    receiver: Receiver, django_capture_on_commit_callbacks, time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    endpoint = _endpoint(receiver.url, ["tests.InvoicePaid"])
    receiver.secret = SECRET
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        row = publish(InvoicePaid("INV-1", "99.99"), aggregate_type="invoice", aggregate_id="INV-1")
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.signature_valid is True
    delivery = WebhookDelivery.objects.get()
    assert got.headers["Fedele-Event"] == "tests.InvoicePaid"
    assert got.headers["Fedele-Delivery"] == str(delivery.public_id)
    assert got.headers["Idempotency-Key"] == str(row.event_id)
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Fedele-Signature"].startswith(f"t={int(START.timestamp())},v1=")
    assert got.json == {
        "aggregate": {"id": "INV-1", "type": "invoice"},
        "created": "2026-05-04T10:00:00+00:00",
        "data": {"amount": "99.99", "invoice": "INV-1"},
        "id": str(row.event_id),
        "type": "tests.InvoicePaid",
    }
    assert got.body == json.dumps(got.json, separators=(",", ":"), sort_keys=True).encode()
    assert delivery.endpoint_id == endpoint.pk
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempts == 1
    assert delivery.delivered_at == START
    assert delivery.next_attempt_at is None
    assert delivery.last_status_code == 200
    assert delivery.last_response_body == '{"ok":true}'
    attempt = WebhookAttempt.objects.get()
    assert (attempt.status_code, attempt.is_replay, attempt.error, attempt.attempted_at) == (
        200,
        False,
        "",
        START,
    )


@pytest.mark.django_db
def test_server_errors_are_retried_with_exponential_backoff(receiver: Receiver, time_machine) -> None:
    time_machine.move_to(START, tick=False)
    receiver.secret = SECRET
    receiver.statuses = [500, 500, 200]
    _endpoint(receiver.url, ["*"])
    _publish_and_fan_out()
    delivery = WebhookDelivery.objects.get()

    assert webhooks.deliver(delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert delivery.last_status_code == 500
    assert delivery.next_attempt_at == START + timedelta(seconds=30)

    time_machine.move_to(START + timedelta(seconds=29), tick=False)
    assert webhooks.deliver_due() == 0
    assert webhooks.deliver(delivery.pk) == "retrying"  # not due yet: nothing sent
    assert len(receiver.received) == 1

    second = START + timedelta(seconds=30)
    time_machine.move_to(second, tick=False)
    assert webhooks.deliver_due() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.RETRYING
    assert delivery.attempts == 2
    assert delivery.next_attempt_at == second + timedelta(seconds=60)

    third = second + timedelta(seconds=60)
    time_machine.move_to(third, tick=False)
    assert webhooks.deliver_due() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempts == 3
    assert delivery.delivered_at == third
    assert delivery.next_attempt_at is None
    assert list(WebhookAttempt.objects.values_list("status_code", "attempted_at", "is_replay")) == [
        (500, START, False),
        (500, second, False),
        (200, third, False),
    ]
    assert len(receiver.received) == 3
    assert all(r.signature_valid for r in receiver.received)
    assert len({r.body for r in receiver.received}) == 1  # the same event each time
    time_machine.move_to(third + timedelta(hours=1), tick=False)
    assert webhooks.deliver_due() == 0


@pytest.mark.django_db
def test_delivery_fails_after_max_attempts(receiver: Receiver, settings, time_machine) -> None:
    settings.FEDELE_WEBHOOK_MAX_ATTEMPTS = 3
    time_machine.move_to(START, tick=False)
    receiver.secret = SECRET
    receiver.default_status = 503
    _endpoint(receiver.url, ["*"])
    _publish_and_fan_out()
    delivery = WebhookDelivery.objects.get()
    assert webhooks.deliver(delivery.pk) == "retrying"
    time_machine.move_to(START + timedelta(seconds=30), tick=False)
    assert webhooks.deliver_due() == 1
    time_machine.move_to(START + timedelta(seconds=90), tick=False)
    assert webhooks.deliver_due() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts == 3
    assert delivery.next_attempt_at is None
    assert delivery.delivered_at is None
    time_machine.move_to(START + timedelta(days=1), tick=False)
    assert webhooks.deliver_due() == 0
    assert webhooks.deliver(delivery.pk) == "failed"
    assert len(receiver.received) == 3
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 3


@pytest.mark.django_db
def test_a_bad_signature_secret_is_refused_by_the_receiver(receiver: Receiver, time_machine) -> None:
    time_machine.move_to(START, tick=False)
    receiver.secret = "whsec_the_receiver_has_another_secret"
    _endpoint(receiver.url, ["*"])
    _publish_and_fan_out()
    delivery = WebhookDelivery.objects.get()
    assert webhooks.deliver(delivery.pk) == "retrying"
    assert receiver.received[0].signature_valid is False
    delivery.refresh_from_db()
    assert delivery.last_status_code == 401


@pytest.mark.django_db
def test_timeout_setting_bounds_a_slow_receiver(receiver: Receiver, settings, time_machine) -> None:
    settings.FEDELE_WEBHOOK_TIMEOUT_SECONDS = 0.3
    time_machine.move_to(START, tick=False)
    receiver.secret = SECRET
    receiver.delay_seconds = 2.0
    _endpoint(receiver.url, ["*"])
    _publish_and_fan_out()
    delivery = WebhookDelivery.objects.get()
    started = time.monotonic()
    assert webhooks.deliver(delivery.pk) == "retrying"
    assert time.monotonic() - started < 1.5
    delivery.refresh_from_db()
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("ReadTimeout")
    assert delivery.next_attempt_at == START + timedelta(seconds=30)
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and attempt.error.startswith("ReadTimeout")


@pytest.mark.django_db
def test_unreachable_receiver_is_logged_and_retried(time_machine) -> None:
    time_machine.move_to(START, tick=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _endpoint(f"http://127.0.0.1:{port}/nobody", ["*"])
    _publish_and_fan_out()
    delivery = WebhookDelivery.objects.get()
    assert webhooks.deliver(delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("ConnectError")
    assert webhooks.deliver(10**9) == "missing"


@pytest.mark.django_db
def test_replay_resends_and_is_logged_as_a_replay(receiver: Receiver, time_machine) -> None:
    time_machine.move_to(START, tick=False)
    receiver.secret = SECRET
    _endpoint(receiver.url, ["*"])
    _publish_and_fan_out()
    delivery = WebhookDelivery.objects.get()
    assert webhooks.deliver(delivery.pk) == "succeeded"
    assert webhooks.deliver(delivery.pk) == "succeeded"  # a plain second run sends nothing
    assert len(receiver.received) == 1

    later = START + timedelta(hours=2)
    time_machine.move_to(later, tick=False)
    replayed = webhooks.delivery_replay(delivery_public_id=str(delivery.public_id))
    assert replayed.status == WebhookDelivery.Status.SUCCEEDED
    assert replayed.attempts == 2
    assert replayed.delivered_at == later
    assert len(receiver.received) == 2
    assert receiver.received[1].body == receiver.received[0].body
    assert receiver.received[1].signature_valid
    assert list(WebhookAttempt.objects.values_list("status_code", "is_replay")) == [(200, False), (200, True)]
    assert (
        AuditLog.objects.filter(action="webhook_delivery.replayed", object_id=str(delivery.public_id)).count()
        == 1
    )

    # A replay that fails leaves a delivered event delivered; the log shows the failure.
    receiver.statuses = [500]
    replayed = webhooks.delivery_replay(delivery_public_id=str(delivery.public_id))
    assert replayed.status == WebhookDelivery.Status.SUCCEEDED
    assert replayed.last_status_code == 500
    assert replayed.next_attempt_at is None
    assert list(WebhookAttempt.objects.values_list("status_code", "is_replay"))[-1] == (500, True)

    with pytest.raises(webhooks.NotFound):
        webhooks.delivery_replay(delivery_public_id="00000000-0000-0000-0000-000000000000")


@pytest.mark.django_db
def test_replay_revives_a_failed_delivery_and_a_failed_replay_keeps_retries(
    receiver: Receiver, settings, time_machine
) -> None:
    settings.FEDELE_WEBHOOK_MAX_ATTEMPTS = 1
    time_machine.move_to(START, tick=False)
    receiver.secret = SECRET
    receiver.statuses = [500]
    _endpoint(receiver.url, ["*"])
    _publish_and_fan_out()
    delivery = WebhookDelivery.objects.get()
    assert webhooks.deliver(delivery.pk) == "failed"
    replayed = webhooks.delivery_replay(delivery_public_id=str(delivery.public_id))
    assert replayed.status == WebhookDelivery.Status.SUCCEEDED
    assert replayed.delivered_at == START

    settings.FEDELE_WEBHOOK_MAX_ATTEMPTS = 8
    receiver.statuses = [500, 500]
    _publish_and_fan_out("INV-2")
    second = WebhookDelivery.objects.get(event_type="tests.InvoicePaid", payload__aggregate__id="INV-2")
    assert webhooks.deliver(second.pk) == "retrying"
    replayed = webhooks.delivery_replay(delivery_public_id=str(second.public_id))
    assert replayed.status == WebhookDelivery.Status.RETRYING  # the automatic retries go on
    assert replayed.attempts == 2
    assert replayed.next_attempt_at == START + timedelta(seconds=60)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_never_send_the_same_delivery_twice(receiver: Receiver) -> None:
    import threading

    from django.db import connection

    receiver.secret = SECRET
    receiver.delay_seconds = 0.5
    _endpoint(receiver.url, ["*"])
    with transaction.atomic():
        row = publish(InvoicePaid("INV-RACE", "1.00"), aggregate_type="invoice", aggregate_id="INV-RACE")
    # Eager mode has already dispatched and sent it on commit; make it due again for the race.
    delivery = WebhookDelivery.objects.get(event_id=row.event_id)
    assert len(receiver.received) == 1
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.RETRYING, next_attempt_at=delivery.created_at
    )
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(webhooks.deliver(delivery.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(receiver.received) == 2  # the first send, then exactly one of the two workers
    assert sorted(outcomes) == ["retrying", "succeeded"]  # the loser saw the lease and stood back
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 2
