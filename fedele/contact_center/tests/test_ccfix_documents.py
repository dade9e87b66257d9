"""Document-on-demand sends outside any transaction and row lock: the attempt is claimed and logged as
``pending`` and committed first, the provider is called, then the log row and the request are settled.
A provider failure (expected or not) is logged and visible; an attempt in flight is never sent twice;
an attempt whose process died is settled as interrupted after ``CLAIM_STALE_SECONDS`` and retried."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections

from fedele.contact_center.models import Document, DocumentRequest, DocumentSendLog
from fedele.contact_center.services import documents
from fedele.contact_center.services.documents import (
    CLAIM_STALE_SECONDS,
    INTERRUPTED,
    MAX_ATTEMPTS,
    document_create,
    document_request_by_keyword,
    document_requests_retry_failed,
    document_send,
)
from fedele.shared import sms
from fedele.shared.testing import in_threads

PDF = b"%PDF-1.4\n% manual\n"
T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night Europe/Rome moves to summer time


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FEDELE_PUBLIC_URL = "https://cc.example.it"
    settings.LANGUAGE_CODE = "en"
    sms.outbox.clear()
    ObservingBackend.seen.clear()
    ObservingBackend.fail_with = None
    ObservingBackend.pause_seconds = 0.0


def _manual() -> Document:
    return document_create(
        actor=None,
        code="manual",
        title_it="Manuale d'uso",
        title_en="User manual",
        upload=SimpleUploadedFile("manuale.pdf", PDF, content_type="application/pdf"),
        sms_keyword="MANUALE",
    )


class ObservingBackend(sms.BaseSmsBackend):
    """The SMS provider: notes what the database looks like while it is called (from its own thread's
    connection), then sends through the in-memory outbox or fails as told."""

    seen: ClassVar[list[dict[str, Any]]] = []
    fail_with: ClassVar[BaseException | None] = None
    pause_seconds: ClassVar[float] = 0.0

    def send(self, message: sms.SmsMessage) -> sms.SentSms:
        ObservingBackend.seen.append(
            {
                "in_transaction": connection.in_atomic_block,
                "log": list(DocumentSendLog.objects.values_list("attempt", "status", "detail")),
                "request": list(DocumentRequest.objects.values_list("status", "attempts")),
            }
        )
        if ObservingBackend.pause_seconds:
            time.sleep(ObservingBackend.pause_seconds)
        if ObservingBackend.fail_with is not None:
            raise ObservingBackend.fail_with
        return sms.LocmemBackend().send(message)


BACKEND = "fedele.contact_center.tests.test_ccfix_documents.ObservingBackend"


@pytest.mark.django_db(transaction=True)
def test_the_provider_is_called_after_the_attempt_is_committed_and_outside_any_transaction(settings):
    settings.FEDELE_SMS_BACKEND = BACKEND
    _manual()
    request = document_request_by_keyword(from_number="+393331234567", keyword="MANUALE", message_ref="SM1")
    assert ObservingBackend.seen == [
        {"in_transaction": False, "log": [(1, "pending", "queued")], "request": [("pending", 1)]}
    ]
    request.refresh_from_db()
    assert (request.status, request.attempts, request.provider_ref, request.last_error) == (
        "sent",
        1,
        "locmem-1",
        "",
    )
    assert list(DocumentSendLog.objects.values_list("attempt", "status", "detail")) == [
        (1, "sent", "locmem-1")
    ]
    assert len(sms.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_a_provider_refusal_settles_the_logged_attempt_as_failed(settings):
    settings.FEDELE_SMS_BACKEND = BACKEND
    ObservingBackend.fail_with = sms.SmsSendFailed("21614: not a mobile number", status=400)
    _manual()
    request = document_request_by_keyword(from_number="+393331234567", keyword="MANUALE", message_ref="SM2")
    request.refresh_from_db()
    assert (request.status, request.attempts, request.last_error, request.sent_at) == (
        "failed",
        1,
        "21614: not a mobile number",
        None,
    )
    assert list(DocumentSendLog.objects.values_list("attempt", "status", "detail")) == [
        (1, "failed", "21614: not a mobile number")
    ]
    assert sms.outbox == []


@pytest.mark.django_db(transaction=True)
def test_an_unexpected_provider_error_is_logged_not_lost_and_does_not_break_the_inbound_sms(settings):
    settings.FEDELE_SMS_BACKEND = BACKEND
    ObservingBackend.fail_with = RuntimeError("socket closed by a proxy")
    _manual()
    # The request committed; the send after commit fails unexpectedly: the caller still gets its request.
    request = document_request_by_keyword(from_number="+393331234567", keyword="MANUALE", message_ref="SM3")
    request.refresh_from_db()
    assert (request.status, request.attempts, request.last_error) == ("failed", 1, "RuntimeError")
    assert list(DocumentSendLog.objects.values_list("attempt", "status", "detail")) == [
        (1, "failed", "RuntimeError")
    ]
    # The scheduler retries it like any failure.
    ObservingBackend.fail_with = None
    assert document_requests_retry_failed() == 1
    request.refresh_from_db()
    assert (request.status, request.attempts) == ("sent", 2)
    assert list(DocumentSendLog.objects.order_by("attempt").values_list("attempt", "status")) == [
        (1, "failed"),
        (2, "sent"),
    ]
    assert len(sms.outbox) == 1


def _request_with_an_attempt_in_flight(at: datetime) -> DocumentRequest:
    """A request whose first attempt was claimed at ``at`` and never settled (its worker died, or is
    still waiting for the provider)."""
    document = _manual()
    request = DocumentRequest.objects.create(
        document=document,
        channel="sms_link",
        destination="+393331234567",
        source="sms_keyword",
        idempotency_key="sms:SM9",
        created_at=at,
        attempts=1,
    )
    DocumentSendLog.objects.create(
        request=request, attempt=1, status="pending", detail="queued", created_at=at
    )
    return request


@pytest.mark.django_db
def test_an_attempt_in_flight_is_not_sent_again_by_a_retry(settings):
    settings.FEDELE_SMS_BACKEND = "fedele.shared.sms.LocmemBackend"
    with time_machine.travel(T0, tick=False):
        request = _request_with_an_attempt_in_flight(T0)
    # One second before the claim counts as lost: still in flight, nothing is sent.
    with time_machine.travel(T0 + timedelta(seconds=CLAIM_STALE_SECONDS - 1), tick=False):
        assert document_send(request_id=request.pk).status == "pending"
        assert document_requests_retry_failed() == 0
    assert sms.outbox == []
    assert list(DocumentSendLog.objects.values_list("attempt", "status", "detail")) == [
        (1, "pending", "queued")
    ]
    request.refresh_from_db()
    assert (request.status, request.attempts) == ("pending", 1)


@pytest.mark.django_db
def test_an_attempt_whose_worker_died_is_settled_as_interrupted_and_tried_again(settings):
    settings.FEDELE_SMS_BACKEND = "fedele.shared.sms.LocmemBackend"
    with time_machine.travel(T0, tick=False):
        request = _request_with_an_attempt_in_flight(T0)
    with time_machine.travel(T0 + timedelta(seconds=CLAIM_STALE_SECONDS), tick=False):
        sent = document_send(request_id=request.pk)
    assert (sent.status, sent.attempts, sent.provider_ref) == ("sent", 2, "locmem-1")
    assert list(DocumentSendLog.objects.order_by("attempt").values_list("attempt", "status", "detail")) == [
        (1, "failed", INTERRUPTED),
        (2, "sent", "locmem-1"),
    ]
    assert len(sms.outbox) == 1


@pytest.mark.django_db
def test_the_scheduler_picks_up_a_lost_attempt_and_a_request_whose_send_never_ran(settings):
    settings.FEDELE_SMS_BACKEND = "fedele.shared.sms.LocmemBackend"
    with time_machine.travel(T0, tick=False):
        lost = _request_with_an_attempt_in_flight(T0)
        never_sent = DocumentRequest.objects.create(
            document=lost.document,
            channel="sms_link",
            destination="+393339876543",
            source="sms_keyword",
            idempotency_key="sms:SM10",
            created_at=T0,
        )
    with time_machine.travel(T0 + timedelta(seconds=CLAIM_STALE_SECONDS - 1), tick=False):
        assert document_requests_retry_failed() == 0
    assert sms.outbox == []
    with time_machine.travel(T0 + timedelta(seconds=CLAIM_STALE_SECONDS), tick=False):
        assert document_requests_retry_failed() == 2
        assert document_requests_retry_failed() == 0
    assert sorted(DocumentRequest.objects.values_list("idempotency_key", "status", "attempts")) == [
        ("sms:SM10", "sent", 1),
        ("sms:SM9", "sent", 2),
    ]
    assert sorted(
        DocumentSendLog.objects.values_list("request__idempotency_key", "attempt", "status", "detail")
    ) == [
        ("sms:SM10", 1, "sent", "locmem-2"),
        ("sms:SM9", 1, "failed", INTERRUPTED),
        ("sms:SM9", 2, "sent", "locmem-1"),
    ]
    assert [message.to for message in sms.outbox] == ["+393331234567", "+393339876543"]
    assert never_sent.pk > lost.pk


@pytest.mark.django_db
def test_a_late_answer_for_an_attempt_settled_as_interrupted_is_recorded(settings):
    settings.FEDELE_SMS_BACKEND = "fedele.shared.sms.LocmemBackend"
    with time_machine.travel(T0, tick=False):
        request = _request_with_an_attempt_in_flight(T0)
    log = DocumentSendLog.objects.get()
    DocumentSendLog.objects.filter(pk=log.pk).update(status="failed", detail=INTERRUPTED)
    DocumentRequest.objects.filter(pk=request.pk).update(status="failed", last_error=INTERRUPTED)
    # A late failure: the log row tells what the provider said; the request stays as it was.
    documents._settle(request.pk, log.pk, status="failed", detail="timeout")
    request.refresh_from_db()
    assert (request.status, request.last_error) == ("failed", INTERRUPTED)
    assert DocumentSendLog.objects.values_list("status", "detail").get() == ("failed", "timeout")
    # A late success counts: the request is sent and the retry job leaves it alone.
    documents._settle(request.pk, log.pk, status="sent", detail="SM-late")
    request.refresh_from_db()
    assert (request.status, request.provider_ref, request.last_error) == ("sent", "SM-late", "")
    assert document_requests_retry_failed() == 0


@pytest.mark.django_db
def test_no_attempt_beyond_the_maximum(settings, django_capture_on_commit_callbacks):
    settings.FEDELE_SMS_BACKEND = BACKEND
    ObservingBackend.fail_with = sms.SmsSendFailed("provider down", status=503)
    _manual()
    with django_capture_on_commit_callbacks(execute=True):
        request = document_request_by_keyword(from_number="+393331234567", keyword="MANUALE")
    assert document_requests_retry_failed() == 1
    assert document_requests_retry_failed() == 1
    assert document_requests_retry_failed() == 0
    ObservingBackend.fail_with = None
    again = document_send(request_id=request.pk)
    assert (again.status, again.attempts) == ("failed", MAX_ATTEMPTS)
    assert list(DocumentSendLog.objects.order_by("attempt").values_list("attempt", "status")) == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
    ]
    assert sms.outbox == []
    assert len(ObservingBackend.seen) == MAX_ATTEMPTS


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_no_row_lock_is_held_while_the_provider_is_called(settings):
    """While the provider is slow to answer, another connection can lock the request row at once
    (NOWAIT) and sees the attempt logged as pending."""
    settings.FEDELE_SMS_BACKEND = BACKEND
    ObservingBackend.pause_seconds = 1.0
    _manual()
    observed: dict[str, Any] = {}

    def look_while_sending() -> None:
        try:
            time.sleep(0.4)
            from django.db import transaction

            with transaction.atomic():
                locked = DocumentRequest.objects.select_for_update(nowait=True).get()
                observed["locked"] = (locked.status, locked.attempts)
                observed["log"] = list(DocumentSendLog.objects.values_list("attempt", "status"))
        except Exception as error:  # the assertion below shows what happened
            observed["error"] = repr(error)
        finally:
            connections.close_all()

    watcher = threading.Thread(target=look_while_sending)
    watcher.start()
    document_request_by_keyword(from_number="+393331234567", keyword="MANUALE", message_ref="SM4")
    watcher.join()
    assert observed == {"locked": ("pending", 1), "log": [(1, "pending")]}
    assert list(DocumentSendLog.objects.values_list("attempt", "status")) == [(1, "sent")]
    assert len(sms.outbox) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_six_workers_sending_one_request_at_once_send_it_once(settings):
    settings.FEDELE_SMS_BACKEND = BACKEND
    ObservingBackend.pause_seconds = 0.3
    document = _manual()
    request = DocumentRequest.objects.create(
        document=document,
        channel="sms_link",
        destination="+393331234567",
        source="sms_keyword",
        idempotency_key="sms:SM5",
        created_at=datetime(2026, 2, 28, 23, 59, tzinfo=UTC),
    )
    assert in_threads(lambda index: document_send(request_id=request.pk), 6) == []
    request.refresh_from_db()
    assert (request.status, request.attempts) == ("sent", 1)
    assert list(DocumentSendLog.objects.values_list("attempt", "status")) == [(1, "sent")]
    assert len(sms.outbox) == 1
