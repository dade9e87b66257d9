"""IVR races on PostgreSQL with real threads: repeated provider webhooks, concurrent keys, concurrent
draft saves and the same SMS keyword delivered twice at once."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from fedele.contact_center.ivr.engine import ivr_continue, ivr_start
from fedele.contact_center.ivr.steps import IvrStep, StepKind
from fedele.contact_center.models import (
    DocumentRequest,
    InteractionEvent,
    InteractionState,
    IvrFlowVersion,
    IvrSession,
    IvrVersionStatus,
)
from fedele.contact_center.services.documents import document_create, document_request_by_keyword
from fedele.contact_center.services.ivr import ivr_draft_save
from fedele.contact_center.tests.ivr_support import billing_flow, incoming_call, make_queues, published_flow
from fedele.shared import sms
from fedele.shared.errors import Conflict
from fedele.shared.testing import in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _english(settings, tmp_path):
    settings.LANGUAGE_CODE = "en"
    settings.MEDIA_ROOT = tmp_path


def test_concurrent_starts_of_one_call_open_one_session():
    make_queues()
    flow = published_flow()
    call = incoming_call()
    results: dict[int, list[IvrStep]] = {}

    def start(index: int) -> None:
        results[index] = ivr_start(interaction=call, flow_code=flow.code)

    assert in_threads(start, 6) == []
    assert IvrSession.objects.filter(interaction=call).count() == 1
    assert (
        InteractionEvent.objects.filter(interaction=call, kind="ivr.node", data__node="welcome").count() == 1
    )
    prompt_and_collect = [step.kind for step in next(iter(results.values()))][-2:]
    assert prompt_and_collect == [StepKind.SAY, StepKind.COLLECT]
    # Every thread saw the same menu; only the first also heard the welcome.
    assert sorted(len(steps) for steps in results.values()) == [2, 2, 2, 2, 2, 3]


def test_concurrent_keys_for_one_prompt_are_taken_once():
    make_queues()
    flow = published_flow()
    call = incoming_call()
    ivr_start(interaction=call, flow_code=flow.code)
    outcomes: dict[int, str] = {}

    def press(index: int) -> None:
        try:
            steps = ivr_continue(interaction=call, digits="1", timed_out=False)
        except Conflict:
            outcomes[index] = "conflict"
        else:
            outcomes[index] = steps[-1].kind

    assert in_threads(press, 4) == []
    assert sorted(outcomes.values()) == ["conflict", "conflict", "conflict", "queue"]
    call.refresh_from_db()
    assert call.state == InteractionState.QUEUED
    assert InteractionEvent.objects.filter(interaction=call, kind="ivr.queued").count() == 1
    assert IvrSession.objects.get(interaction=call).digits_history == [
        {"node": "main", "digits": "1", "timed_out": False}
    ]


def test_concurrent_draft_saves_make_one_draft():
    make_queues()
    flow = published_flow()

    def save(index: int) -> None:
        ivr_draft_save(
            actor=None, flow=flow, source=json.dumps(billing_flow(default_language="en")), note=str(index)
        )

    assert in_threads(save, 4) == []
    assert IvrFlowVersion.objects.filter(flow=flow, status=IvrVersionStatus.DRAFT).count() == 1
    assert list(
        IvrFlowVersion.objects.filter(flow=flow).order_by("number").values_list("number", flat=True)
    ) == [1, 2]


def test_the_same_sms_keyword_delivered_twice_at_once_sends_once():
    sms.outbox.clear()
    document_create(
        actor=None,
        code="manual",
        title_it="Manuale",
        title_en="Manual",
        upload=SimpleUploadedFile("m.pdf", b"%PDF-1.4", content_type="application/pdf"),
        sms_keyword="MANUALE",
    )
    ids: set[int] = set()

    def deliver(index: int) -> None:
        ids.add(
            document_request_by_keyword(from_number="+393331234567", keyword="manuale", message_ref="SM42").pk
        )

    assert in_threads(deliver, 4) == []
    assert len(ids) == 1
    request = DocumentRequest.objects.get()
    assert (request.status, request.attempts) == ("sent", 1)
    assert len(sms.outbox) == 1
