"""The IVR demo: a valid, published flow on the demo number, walked by the real engine; idempotent."""

from __future__ import annotations

import pytest

from fedele.contact_center.ivr import demo
from fedele.contact_center.ivr.engine import ivr_continue, ivr_start
from fedele.contact_center.ivr.steps import StepKind
from fedele.contact_center.models import Document, IvrFlow, IvrNumber
from fedele.contact_center.tests.factories import QueueFactory, SkillFactory
from fedele.contact_center.tests.ivr_support import incoming_call
from fedele.shared.demo import DemoContext

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


def test_demo_flow_is_published_on_the_demo_number_and_answers_calls(time_machine):
    time_machine.move_to("2026-03-10T10:00:00+00:00", tick=False)  # a Tuesday, 11:00 in Rome: open
    for code in ("billing", "technical"):
        SkillFactory(code=code)
        QueueFactory(code=code, channels=["voice"])
    context = DemoContext(faker=None, seed=1)
    demo.load(context)
    demo.load(context)
    flow = IvrFlow.objects.get(code="main-line")
    assert flow.published_version is not None and flow.published_version.number == 1
    assert list(IvrNumber.objects.values_list("number", "flow__code")) == [("+390200000000", "main-line")]
    assert Document.objects.get(code="invoice-copy").sms_keyword == "FATTURA"
    assert context.counts == {"IVR flows": 1}
    call = incoming_call(call_ref="CA-demo")
    steps = ivr_start(interaction=call, number="+390200000000")
    assert [step.kind for step in steps] == [StepKind.SAY, StepKind.SAY, StepKind.COLLECT]
    menu = ivr_continue(interaction=call, digits="2", timed_out=False)
    assert menu[0].text.startswith("For billing and payments press 1.")
    # Technical support, no open ticket → callback offer; 2 = wait in the technical queue.
    offer = ivr_continue(interaction=call, digits="2", timed_out=False)
    assert offer[-1].kind == StepKind.COLLECT and offer[-1].params["node"] == "offer"
    queued = ivr_continue(interaction=call, digits="2", timed_out=False)
    assert queued[-1].kind == StepKind.QUEUE and queued[-1].params["queue_code"] == "technical"


def test_demo_needs_the_contact_center_queues():
    demo.load(DemoContext(faker=None, seed=1))
    assert not IvrFlow.objects.exists()
