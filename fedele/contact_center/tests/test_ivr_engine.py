"""The IVR engine walks published flows: exact step lists, retries, checks, lookups, version pinning."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
import time_machine

from fedele.billing.tests.factories import BillingAccountFactory, InvoiceFactory
from fedele.contact_center.ivr.engine import ivr_continue, ivr_start
from fedele.contact_center.ivr.steps import IvrStep, StepKind
from fedele.contact_center.models import (
    InteractionEvent,
    InteractionState,
    IvrSession,
    IvrSessionState,
)
from fedele.contact_center.services.ivr import ivr_draft_save, ivr_number_assign, ivr_publish
from fedele.contact_center.tests.ivr_support import (
    BILLING_FLOW,
    billing_flow,
    incoming_call,
    make_queues,
    published_flow,
)
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared.errors import Conflict, NotFound, ValidationFailed

pytestmark = pytest.mark.django_db

WELCOME = IvrStep(kind=StepKind.SAY, text="Benvenuti in Fedele.", language="it", params={"node": "welcome"})
MENU_PROMPT = IvrStep(
    kind=StepKind.SAY,
    text="Premi 1 per l'assistenza, 2 per le fatture.",
    language="it",
    params={"node": "main", "barge_in": True},
)
MENU_COLLECT = IvrStep(
    kind=StepKind.COLLECT,
    language="it",
    params={"max_digits": 1, "min_digits": 1, "finish_on": "", "timeout_seconds": 5, "node": "main"},
)
CODE_PROMPT = IvrStep(
    kind=StepKind.SAY,
    text="Digita il codice cliente e premi cancelletto.",
    language="it",
    params={"node": "code", "barge_in": True},
)
CODE_COLLECT = IvrStep(
    kind=StepKind.COLLECT,
    language="it",
    params={"max_digits": 12, "min_digits": 3, "finish_on": "#", "timeout_seconds": 8, "node": "code"},
)


def _queue_step(queue: str, skills: dict[str, int], position: int = 1, wait: int = 180) -> IvrStep:
    return IvrStep(
        kind=StepKind.QUEUE,
        language="it",
        params={
            "node": queue,
            "queue_code": queue,
            "required_skills": skills,
            "priority": 0,
            "position": position,
            "estimated_wait_seconds": wait,
        },
    )


def _announcement(node: str, position: int = 1, minutes: int = 3) -> IvrStep:
    return IvrStep(
        kind=StepKind.SAY,
        text=f"Posizione in coda: {position}. L'attesa stimata è di {minutes} minuti.",
        language="it",
        params={"node": node},
    )


@pytest.fixture(autouse=True)
def _english_messages(settings):
    # Default texts are gettext strings; the Italian catalogue is filled later, so compare in English.
    settings.LANGUAGE_CODE = "en"


@time_machine.travel("2026-03-10 10:00:00+01:00", tick=False)
def test_menu_two_then_customer_code_then_balance_lookup_then_billing_queue():
    make_queues()
    flow = published_flow()
    customer = CustomerFactory(number="C-000123")
    account = BillingAccountFactory(customer=customer)
    InvoiceFactory(
        account=account, total=Decimal("122.00"), amount_paid=Decimal("22.50"), due_date=date(2026, 3, 1)
    )
    call = incoming_call()

    assert ivr_start(interaction=call, flow_code=flow.code) == [WELCOME, MENU_PROMPT, MENU_COLLECT]
    assert ivr_continue(interaction=call, digits="2", timed_out=False) == [CODE_PROMPT, CODE_COLLECT]
    steps = ivr_continue(interaction=call, digits="000123#", timed_out=False)

    assert steps == [
        IvrStep(
            kind=StepKind.SAY, text="Il saldo da pagare è 99,50 euro.", language="it", params={"node": "tell"}
        ),
        _announcement("billing"),
        _queue_step("billing", {"billing": 2}),
    ]
    call.refresh_from_db()
    assert call.state == InteractionState.QUEUED
    assert call.queue is not None and call.queue.code == "billing"
    assert call.required_skills == {"billing": 2}
    assert call.customer_public_id == str(customer.public_id)
    assert call.attributes["ivr"] == {
        "flow": "main-line",
        "version": 1,
        "result": "queued",
        "node": "billing",
    }
    session = IvrSession.objects.get(interaction=call)
    assert session.state == IvrSessionState.QUEUED
    assert session.awaiting == ""
    assert session.variables["customer_code"] == "C-000123"
    assert session.variables["balance_due"] == "99.50"
    assert session.digits_history == [
        {"node": "main", "digits": "2", "timed_out": False},
        {"node": "code", "digits": "000123#", "timed_out": False},
    ]
    ivr_kinds = list(
        InteractionEvent.objects.filter(interaction=call, kind__startswith="ivr.").values_list("kind", "data")
    )
    assert [kind for kind, _data in ivr_kinds] == [
        "ivr.node",
        "ivr.node",
        "ivr.input",
        "ivr.node",
        "ivr.input",
        "ivr.node",
        "ivr.lookup",
        "ivr.node",
        "ivr.node",
        "ivr.queued",
    ]
    assert [data["node"] for kind, data in ivr_kinds if kind == "ivr.node"] == [
        "welcome",
        "main",
        "code",
        "balance",
        "tell",
        "billing",
    ]


def test_an_invalid_menu_key_retries_then_gives_up_with_goodbye():
    make_queues()
    flow = published_flow()
    call = incoming_call()
    ivr_start(interaction=call, flow_code=flow.code)
    retry = ivr_continue(interaction=call, digits="7", timed_out=False)
    assert retry == [
        IvrStep(
            kind=StepKind.SAY,
            text="Spiacenti, la scelta non è valida.",
            language="it",
            params={"node": "main"},
        ),
        MENU_PROMPT,
        MENU_COLLECT,
    ]
    # retries: 1 → the second failure (a timeout here) has no further attempt and no on_fail.
    assert ivr_continue(interaction=call, digits=None, timed_out=True) == [
        IvrStep(
            kind=StepKind.SAY,
            text="Grazie per aver chiamato. Arrivederci.",
            language="it",
            params={"node": "main"},
        ),
        IvrStep(kind=StepKind.HANGUP, language="it", params={"node": "main"}),
    ]
    session = IvrSession.objects.get(interaction=call)
    assert session.state == IvrSessionState.FINISHED
    call.refresh_from_db()
    assert call.attributes["ivr"]["result"] == "gave_up"
    with pytest.raises(Conflict):
        ivr_continue(interaction=call, digits="1", timed_out=False)


def test_a_wrong_customer_code_uses_the_invalid_prompt_then_on_fail_branch():
    make_queues()
    flow = published_flow()
    CustomerFactory(number="C-000123")
    call = incoming_call()
    ivr_start(interaction=call, flow_code=flow.code)
    ivr_continue(interaction=call, digits="2", timed_out=False)
    assert ivr_continue(interaction=call, digits="999999#", timed_out=False) == [
        IvrStep(kind=StepKind.SAY, text="Codice non valido.", language="it", params={"node": "code"}),
        CODE_PROMPT,
        CODE_COLLECT,
    ]
    # Too short (min_length 3) is just as invalid; retries used up → on_fail (the billing queue).
    steps = ivr_continue(interaction=call, digits="12#", timed_out=False)
    assert steps == [_announcement("billing"), _queue_step("billing", {"billing": 2})]
    call.refresh_from_db()
    assert call.customer_public_id == ""


def test_english_caller_hears_english_and_unknown_caller_skips_the_lookup():
    make_queues()
    flow = published_flow()
    CustomerFactory(number="C-000321")  # identified, but never billed: the lookup finds nothing
    call = incoming_call()
    call.language = "en"
    call.save(update_fields=["language"])
    steps = ivr_start(interaction=call, flow_code=flow.code)
    assert [step.text for step in steps[:2]] == ["Welcome to Fedele.", "Press 1 for support, 2 for billing."]
    ivr_continue(interaction=call, digits="2", timed_out=False)
    steps = ivr_continue(interaction=call, digits="000321", timed_out=False)  # no finish key is fine
    assert steps == [
        IvrStep(
            kind=StepKind.SAY,
            text="You are number 1 in the queue. The estimated wait is 3 minutes.",
            language="en",
            params={"node": "billing"},
        ),
        IvrStep(
            kind=StepKind.QUEUE,
            language="en",
            params={
                "node": "billing",
                "queue_code": "billing",
                "required_skills": {"billing": 2},
                "priority": 0,
                "position": 1,
                "estimated_wait_seconds": 180,
            },
        ),
    ]


def test_second_caller_in_the_same_queue_hears_position_two():
    make_queues()
    flow = published_flow()
    first = incoming_call(call_ref="CA1")
    second = incoming_call("+393339999999", call_ref="CA2")
    for call in (first, second):
        ivr_start(interaction=call, flow_code=flow.code)
    ivr_continue(interaction=first, digits="1", timed_out=False)
    steps = ivr_continue(interaction=second, digits="1", timed_out=False)
    assert steps[-1].params["position"] == 2
    assert steps[-1].params["estimated_wait_seconds"] == 360  # 2 × 180 s, no agents staffed → one assumed
    assert steps[0].text == "Posizione in coda: 2. L'attesa stimata è di 6 minuti."


def test_a_call_keeps_its_version_when_a_new_one_is_published():
    make_queues()
    flow = published_flow()
    call = incoming_call()
    ivr_start(interaction=call, flow_code=flow.code)
    changed = billing_flow()
    changed["nodes"]["main"]["options"] = {"1": "support", "2": "support"}
    changed["nodes"]["main"]["prompt"] = {"it": "Nuovo menu.", "en": "New menu."}
    for node in ("code", "balance", "tell", "billing"):
        del changed["nodes"][node]
    ivr_draft_save(actor=None, flow=flow, source=json.dumps(changed))
    ivr_publish(actor=None, flow=flow)

    # The call in progress still walks version 1: "2" goes to the customer code, not to support.
    assert ivr_continue(interaction=call, digits="2", timed_out=False) == [CODE_PROMPT, CODE_COLLECT]
    assert IvrSession.objects.get(interaction=call).flow_version.number == 1
    # A new call starts on version 2.
    new_call = incoming_call("+393330000001", call_ref="CA2")
    steps = ivr_start(interaction=new_call, flow_code=flow.code)
    assert steps[1].text == "Nuovo menu."
    assert IvrSession.objects.get(interaction=new_call).flow_version.number == 2


def test_start_by_dialled_number_and_a_repeated_start_changes_nothing():
    make_queues()
    flow = published_flow()
    ivr_number_assign(actor=None, number="02 1234 5678", flow=flow)
    call = incoming_call()
    first = ivr_start(interaction=call, number="+390212345678")
    events = InteractionEvent.objects.filter(interaction=call).count()
    again = ivr_start(interaction=call, number="+390212345678")
    assert again == [MENU_PROMPT, MENU_COLLECT]
    assert first[1:] == again
    assert InteractionEvent.objects.filter(interaction=call).count() == events
    assert IvrSession.objects.filter(interaction=call).count() == 1


def test_unknown_flow_or_number_or_unpublished_flow_is_refused_and_writes_nothing():
    make_queues()
    call = incoming_call()
    with pytest.raises(NotFound):
        ivr_start(interaction=call, flow_code="nope")
    with pytest.raises(NotFound):
        ivr_start(interaction=call, number="+390000000000")
    from fedele.contact_center.services.ivr import ivr_flow_create

    draft_only = ivr_flow_create(actor=None, code="draft-only", name="Draft", source=json.dumps(BILLING_FLOW))
    with pytest.raises(Conflict):
        ivr_start(interaction=call, flow_code=draft_only.code)
    assert not IvrSession.objects.exists()
    call.refresh_from_db()
    assert "ivr" not in call.attributes


def test_bad_digits_are_refused_without_touching_the_session():
    make_queues()
    flow = published_flow()
    call = incoming_call()
    ivr_start(interaction=call, flow_code=flow.code)
    before = IvrSession.objects.get(interaction=call)
    for digits in ("12a", "1" * 41, "<x>"):
        with pytest.raises(ValidationFailed):
            ivr_continue(interaction=call, digits=digits, timed_out=False)
    after = IvrSession.objects.get(interaction=call)
    assert (after.history, after.digits_history, after.awaiting) == (
        before.history,
        before.digits_history,
        "main",
    )


def test_say_loop_guard_ends_an_unvalidated_loop_instead_of_spinning():
    # The validator refuses such a flow; a version written straight to the table must still not spin.
    from fedele.contact_center.models import IvrFlow, IvrFlowVersion, IvrVersionStatus
    from fedele.shared import clock

    flow = IvrFlow.objects.create(code="loop", name="Loop", created_at=clock.now())
    version = IvrFlowVersion.objects.create(
        flow=flow,
        number=1,
        status=IvrVersionStatus.PUBLISHED,
        created_at=clock.now(),
        definition={
            "languages": ["en"],
            "start": "a",
            "nodes": {
                "a": {"type": "say", "prompt": {"en": "A"}, "next": "b"},
                "b": {"type": "say", "prompt": {"en": "B"}, "next": "a"},
            },
        },
    )
    flow.published_version = version
    flow.save()
    call = incoming_call()
    steps = ivr_start(interaction=call, flow_code="loop")
    assert len(steps) == 102  # 100 prompts, then goodbye and hang up
    assert steps[-1].kind == StepKind.HANGUP
    assert InteractionEvent.objects.filter(interaction=call, kind="ivr.error").count() == 1


def test_a_call_past_the_ivr_cannot_start_it():
    make_queues()
    flow = published_flow()
    call = incoming_call()
    call.state = InteractionState.QUEUED
    call.save(update_fields=["state"])
    with pytest.raises(Conflict) as refused:
        ivr_start(interaction=call, flow_code=flow.code)
    assert refused.value.code == "ivr_call_not_new"
    assert not IvrSession.objects.filter(interaction=call).exists()
    call.refresh_from_db()
    assert call.state == InteractionState.QUEUED and "ivr" not in call.attributes


def test_a_retried_input_with_the_same_ref_is_answered_the_same_way_once():
    make_queues()
    flow = published_flow()
    call = incoming_call()
    ivr_start(interaction=call, flow_code=flow.code)
    first = ivr_continue(interaction=call, digits="2", timed_out=False, input_ref="EV-1")
    events = InteractionEvent.objects.filter(interaction=call).count()
    again = ivr_continue(interaction=call, digits="2", timed_out=False, input_ref="EV-1")
    assert again == first == [CODE_PROMPT, CODE_COLLECT]
    assert InteractionEvent.objects.filter(interaction=call).count() == events
    session = IvrSession.objects.get(interaction=call)
    assert [entry["digits"] for entry in session.digits_history] == ["2"]
    assert session.awaiting == "code"
    # A new ref is a new input; a retry after the call left the IVR still gets its own answer.
    queued = ivr_continue(interaction=call, digits="12#", timed_out=False, input_ref="EV-2")
    queued = ivr_continue(interaction=call, digits="12#", timed_out=False, input_ref="EV-3")
    assert queued[-1].kind == StepKind.QUEUE
    assert ivr_continue(interaction=call, digits="12#", timed_out=False, input_ref="EV-3") == queued
    with pytest.raises(Conflict):
        ivr_continue(interaction=call, digits="12#", timed_out=False, input_ref="EV-2")
