"""IVR steps rendered to TwiML: exact documents for a real flow and for every step kind."""

from __future__ import annotations

import pytest

from fedele.contact_center.ivr.engine import ivr_continue, ivr_start
from fedele.contact_center.ivr.steps import IvrStep, StepKind
from fedele.contact_center.ivr.twiml import render_twiml
from fedele.contact_center.tests.ivr_support import incoming_call, make_queues, published_flow

GATHER = "/contact-center/telephony/twilio/gather/CA0001/"
HEAD = '<?xml version="1.0" encoding="UTF-8"?><Response>'


@pytest.fixture(autouse=True)
def _public_url(settings):
    settings.FEDELE_PUBLIC_URL = "https://cc.example.it"
    settings.LANGUAGE_CODE = "en"


@pytest.mark.django_db
def test_the_flow_start_and_the_queue_turn_render_exactly():
    make_queues()
    flow = published_flow()
    call = incoming_call()
    start = render_twiml(ivr_start(interaction=call, flow_code=flow.code), gather_action=GATHER)
    assert start == (
        HEAD + '<Say language="it-IT">Benvenuti in Fedele.</Say>'
        '<Gather input="dtmf" action="https://cc.example.it/contact-center/telephony/twilio/gather/CA0001/" '
        'method="POST" numDigits="1" timeout="5" finishOnKey="">'
        '<Say language="it-IT">Premi 1 per l\'assistenza, 2 per le fatture.</Say></Gather>'
        '<Redirect method="POST">https://cc.example.it/contact-center/telephony/twilio/gather/CA0001/?timeout=1'
        "</Redirect></Response>"
    )
    queued = render_twiml(
        ivr_continue(interaction=call, digits="1", timed_out=False),
        gather_action=GATHER,
        queue_wait_url="/contact-center/telephony/twilio/wait/",
    )
    assert queued == (
        HEAD + '<Say language="it-IT">Posizione in coda: 1. L\'attesa stimata è di 3 minuti.</Say>'
        '<Enqueue waitUrl="https://cc.example.it/contact-center/telephony/twilio/wait/">support</Enqueue>'
        "</Response>"
    )


def test_every_step_kind_and_escaping():
    steps = [
        IvrStep(kind=StepKind.SAY, text='Tom & "Jerry" <b>', language="en", params={"node": "a"}),
        IvrStep(
            kind=StepKind.PLAY, text="Benvenuti", audio="benvenuti.wav", language="it", params={"node": "b"}
        ),
        IvrStep(
            kind=StepKind.COLLECT,
            params={"max_digits": 16, "min_digits": 3, "finish_on": "#", "timeout_seconds": 8, "node": "c"},
        ),
        IvrStep(kind=StepKind.VOICEMAIL, params={"box": "support", "max_seconds": 90, "node": "d"}),
        IvrStep(kind=StepKind.TRANSFER, params={"target": "+390612345678", "node": "e"}),
        IvrStep(kind=StepKind.TRANSFER, params={"target": "sip:desk@pbx.local", "node": "f"}),
        IvrStep(kind=StepKind.HANGUP, params={"node": "g"}),
    ]
    xml = render_twiml(
        steps,
        gather_action="https://other.example/g?call=1&x=2",
        record_action="/contact-center/telephony/twilio/voicemail/",
    )
    assert xml == (
        HEAD + '<Say language="en-US">Tom &amp; "Jerry" &lt;b&gt;</Say>'
        "<Play>https://cc.example.it/static/contact_center/prompts/benvenuti.wav</Play>"
        '<Gather input="dtmf" action="https://other.example/g?call=1&amp;x=2" method="POST" numDigits="16" '
        'timeout="8" finishOnKey="#"></Gather>'
        '<Redirect method="POST">https://other.example/g?call=1&amp;x=2&amp;timeout=1</Redirect>'
        '<Record action="https://cc.example.it/contact-center/telephony/twilio/voicemail/" maxLength="90" '
        'finishOnKey="#" playBeep="true"/>'
        "<Dial>+390612345678</Dial><Dial><Sip>sip:desk@pbx.local</Sip></Dial><Hangup/></Response>"
    )


def test_an_empty_turn_is_an_empty_response():
    assert render_twiml([], gather_action=GATHER) == HEAD + "</Response>"
