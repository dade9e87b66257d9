"""The remaining node kinds: business hours (DST, holidays), language choice, callback offer, voicemail,
transfer, a closed queue, the ticket-status lookup and audio prompts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import time_machine

from fedele.contact_center.ivr.engine import ivr_continue, ivr_start
from fedele.contact_center.ivr.steps import IvrStep, StepKind
from fedele.contact_center.models import (
    InteractionState,
    IvrSession,
    IvrSessionState,
    Outcome,
)
from fedele.contact_center.tests.ivr_support import incoming_call, make_queues, published_flow
from fedele.customers.tests.factories import CustomerFactory
from fedele.support import facade as support_facade

pytestmark = pytest.mark.django_db
CALENDAR = "Italia 9-18"  # the seeded default: Mon–Fri 09:00–18:00 Europe/Rome, Italian holidays


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


def _flow(nodes: dict[str, Any], start: str, languages: tuple[str, ...] = ("it",)) -> str:
    make_queues()
    return published_flow({"languages": list(languages), "start": start, "nodes": nodes}, code="nodes").code


HOURS_NODES = {
    "hours": {"type": "hours", "calendar": CALENDAR, "open": "open", "closed": "closed"},
    "open": {"type": "hangup", "prompt": {"it": "Aperto."}},
    "closed": {"type": "hangup", "prompt": {"it": "Chiuso."}},
}


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-03-27T17:30:00+00:00", "Chiuso."),  # Friday 18:30 CET
        ("2026-03-27T16:30:00+00:00", "Aperto."),  # Friday 17:30 CET
        ("2026-03-30T15:30:00+00:00", "Aperto."),  # Monday after the DST change: 17:30 CEST
        ("2026-03-30T16:30:00+00:00", "Chiuso."),  # 18:30 CEST (it would be open at 17:30 CET)
        ("2026-04-06T09:00:00+00:00", "Chiuso."),  # Easter Monday, a public holiday
        ("2026-03-28T10:00:00+00:00", "Chiuso."),  # Saturday
    ],
)
def test_business_hours_branch_follows_the_calendar_across_dst_and_holidays(moment: str, expected: str):
    code = _flow(HOURS_NODES, "hours")
    with time_machine.travel(datetime.fromisoformat(moment), tick=False):
        steps = ivr_start(interaction=incoming_call(), flow_code=code)
    assert [step.text for step in steps] == [expected, ""]


def test_language_choice_switches_prompts_and_the_interaction_language():
    nodes = {
        "lang": {
            "type": "language",
            "prompt": {"it": "Per l'italiano premi 1, for English press 2.", "en": "For English press 2."},
            "options": {"1": "it", "2": "en"},
            "next": "bye",
        },
        "bye": {"type": "hangup", "prompt": {"it": "Arrivederci.", "en": "Goodbye."}},
    }
    code = _flow(nodes, "lang", ("it", "en"))
    call = incoming_call()
    ivr_start(interaction=call, flow_code=code)
    assert ivr_continue(interaction=call, digits="2", timed_out=False) == [
        IvrStep(kind=StepKind.SAY, text="Goodbye.", language="en", params={"node": "bye"}),
        IvrStep(kind=StepKind.HANGUP, language="en", params={"node": "bye"}),
    ]
    call.refresh_from_db()
    assert call.language == "en"
    # Nobody chooses: after the retries the flow goes on in its default language.
    other = incoming_call("+393330000002", call_ref="CA2")
    ivr_start(interaction=other, flow_code=code)
    ivr_continue(interaction=other, digits=None, timed_out=True)
    ivr_continue(interaction=other, digits=None, timed_out=True)
    last = ivr_continue(interaction=other, digits=None, timed_out=True)
    assert [step.text for step in last] == ["Arrivederci.", ""]


CALLBACK_NODES = {
    "offer": {
        "type": "callback",
        "prompt": {"it": "Premi 1 per essere richiamato, 2 per attendere."},
        "queue": "support",
        "declined": "wait",
    },
    "wait": {"type": "queue", "queue": "support", "announce": False},
}


def test_callback_offer_accepted_keeps_the_place_and_hangs_up():
    code = _flow(CALLBACK_NODES, "offer")
    call = incoming_call()
    ivr_start(interaction=call, flow_code=code)
    steps = ivr_continue(interaction=call, digits="1", timed_out=False)
    assert steps == [
        IvrStep(
            kind=StepKind.SAY,
            text="Grazie, verrà effettuata una richiamata non appena un operatore sarà disponibile.",
            language="it",
            params={"node": "offer"},
        ),
        IvrStep(kind=StepKind.HANGUP, language="it", params={"node": "offer"}),
    ]
    call.refresh_from_db()
    assert call.outcome == Outcome.CALLBACK
    assert call.callback_request.phone == "+393331234567"
    assert call.callback_request.queue.code == "support"
    assert call.attributes["callback_requested"] is True
    assert IvrSession.objects.get(interaction=call).state == IvrSessionState.FINISHED


def test_callback_offer_declined_waits_in_the_queue():
    code = _flow(CALLBACK_NODES, "offer")
    call = incoming_call()
    ivr_start(interaction=call, flow_code=code)
    steps = ivr_continue(interaction=call, digits="2", timed_out=False)
    assert [step.kind for step in steps] == [StepKind.QUEUE]
    call.refresh_from_db()
    assert call.state == InteractionState.QUEUED


def test_voicemail_and_transfer_steps():
    nodes = {
        "menu": {
            "type": "menu",
            "prompt": {"it": "1 segreteria, 2 centralino."},
            "options": {"1": "box", "2": "desk"},
        },
        "box": {
            "type": "voicemail",
            "box": "support",
            "prompt": {"it": "Lasciate un messaggio."},
            "max_seconds": 60,
        },
        "desk": {"type": "transfer", "target": "sip:desk@pbx.local"},
    }
    code = _flow(nodes, "menu")
    first = incoming_call()
    ivr_start(interaction=first, flow_code=code)
    assert ivr_continue(interaction=first, digits="1", timed_out=False) == [
        IvrStep(kind=StepKind.SAY, text="Lasciate un messaggio.", language="it", params={"node": "box"}),
        IvrStep(
            kind=StepKind.VOICEMAIL,
            language="it",
            params={"node": "box", "box": "support", "max_seconds": 60},
        ),
    ]
    second = incoming_call("+393330000002", call_ref="CA2")
    ivr_start(interaction=second, flow_code=code)
    assert ivr_continue(interaction=second, digits="2", timed_out=False) == [
        IvrStep(
            kind=StepKind.TRANSFER, language="it", params={"node": "desk", "target": "sip:desk@pbx.local"}
        ),
    ]
    second.refresh_from_db()
    assert second.attributes["ivr"]["result"] == "transfer"


def test_a_closed_queue_goes_to_the_closed_branch():
    make_queues()
    from fedele.contact_center.models import Queue

    Queue.objects.filter(code="support").update(calendar_code=CALENDAR)
    nodes = {
        "wait": {"type": "queue", "queue": "support", "closed": "after"},
        "after": {"type": "voicemail", "box": "support"},
    }
    code = published_flow({"languages": ["it"], "start": "wait", "nodes": nodes}, code="closed-line").code
    with time_machine.travel("2026-03-28T10:00:00+00:00", tick=False):  # Saturday
        call = incoming_call()
        steps = ivr_start(interaction=call, flow_code=code)
    assert steps == [
        IvrStep(
            kind=StepKind.VOICEMAIL,
            language="it",
            params={"node": "after", "box": "support", "max_seconds": 120},
        )
    ]
    call.refresh_from_db()
    assert call.state == InteractionState.IVR
    assert call.attributes["closed_action"] == "voicemail"


def test_ticket_status_lookup_reads_the_callers_open_ticket():
    customer = CustomerFactory(phone="+393331234567")
    ticket = support_facade.create_ticket(
        subject="Router guasto", body="Non va", channel="phone", customer_public_id=str(customer.public_id)
    )
    nodes = {
        "status": {"type": "lookup", "lookup": "ticket_status", "next": "tell", "on_missing": "none"},
        "tell": {"type": "hangup", "prompt": {"it": "La pratica {ticket_number} è {ticket_status}."}},
        "none": {"type": "hangup", "prompt": {"it": "Nessuna pratica aperta."}},
    }
    code = _flow(nodes, "status")
    steps = ivr_start(interaction=incoming_call(), flow_code=code)
    assert steps[0].text == f"La pratica {ticket.number} è {ticket.status}."
    unknown = ivr_start(interaction=incoming_call("+393330000009", call_ref="CA9"), flow_code=code)
    assert unknown[0].text == "Nessuna pratica aperta."


def test_audio_prompts_become_play_steps():
    nodes = {
        "hello": {
            "type": "play",
            "prompt": {"it": {"audio": "benvenuti.wav", "text": "Benvenuti"}},
            "next": "bye",
        },
        "bye": {"type": "hangup"},
    }
    code = _flow(nodes, "hello")
    assert ivr_start(interaction=incoming_call(), flow_code=code) == [
        IvrStep(
            kind=StepKind.PLAY,
            text="Benvenuti",
            language="it",
            audio="benvenuti.wav",
            params={"node": "hello"},
        ),
        IvrStep(kind=StepKind.HANGUP, language="it", params={"node": "bye"}),
    ]
