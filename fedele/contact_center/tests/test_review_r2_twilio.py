"""Review R2: Twilio webhooks speak the call's language (the webhook request has no Accept-Language,
so gettext alone answered in the site's default while <Say> used the caller's voice), a retried
``outbound`` webhook does not ring the agent's phone a second time (but a retry after a failed dial
does call them), and the inbound announcements are marked for the translation catalogue."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import time_machine

from fedele.contact_center.models import Interaction
from fedele.contact_center.services.interactions import interaction_create
from fedele.contact_center.telephony.registry import adapter_override
from fedele.contact_center.tests.test_telephony_twilio import (
    CALLS_URL,
    INBOUND_SID,
    T0,
    TWILIO,
    Recorder,
    post,
)

pytestmark = pytest.mark.django_db
XML = '<?xml version="1.0" encoding="UTF-8"?><Response>'


@pytest.fixture(autouse=True)
def _twilio(settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path
    with TWILIO:
        yield


@pytest.fixture
def support_line() -> Any:
    from fedele.contact_center.models import VoiceNumber
    from fedele.contact_center.tests.factories import QueueFactory

    queue = QueueFactory(code="support", channels=["voice"])
    VoiceNumber.objects.create(number="+390212345678", provider="twilio", queue=queue, language="it")
    return queue


# ------------------------------------------------------------------------------------------- language


@time_machine.travel(T0, tick=False)
@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("it", '<Say language="it-IT">Grazie, verrà effettuata una richiamata.</Say>'),
        ("en", '<Say language="en-US">Thank you, we will call you back.</Say>'),
    ],
)
def test_the_voicemail_thanks_is_in_the_callers_language(
    support_line: Any, language: str, expected: str
) -> None:
    from fedele.contact_center.models import VoicemailBox

    VoicemailBox.objects.create(code="support-vm", name="Support", queue=support_line)
    post("voice_inbound")
    Interaction.objects.filter(provider_ref=INBOUND_SID).update(language=language)
    with adapter_override("twilio", Recorder().adapter()):
        response = post("voicemail_record_action")
    assert response.content.decode() == XML + expected + "<Hangup/></Response>"


def test_keys_nobody_waits_for_are_refused_in_the_callers_language(support_line: Any) -> None:
    post("voice_inbound")
    body = post("gather_digits_2").content.decode()
    assert body == (
        XML + '<Say language="it-IT">Siamo spiacenti, al momento non possiamo rispondere alla chiamata. '
        "Si prega di riprovare più tardi.</Say><Hangup/></Response>"
    )


def test_the_inbound_announcements_are_extracted_for_translation(tmp_path: Path) -> None:
    """makemessages runs xgettext with Django's keywords: a literal passed through a variable to
    gettext is never extracted, so Italian callers heard English."""
    xgettext = shutil.which("xgettext")
    assert xgettext is not None, "xgettext (gettext) is needed, as for makemessages"
    source = Path(__file__).parents[1] / "telephony" / "inbound.py"
    output = tmp_path / "inbound.pot"
    subprocess.run(  # noqa: S603 - xgettext found on PATH, fixed arguments
        [
            xgettext,
            "--language=Python",
            "--from-code=UTF-8",
            "--keyword=gettext_noop",
            "--keyword=gettext_lazy",
            "--keyword=ngettext_lazy:1,2",
            "--keyword=pgettext:1c,2",
            "--keyword=pgettext_lazy:1c,2",
            "--keyword=npgettext:1c,2,3",
            "--keyword=npgettext_lazy:1c,2,3",
            "--output",
            str(output),
            str(source),
        ],
        check=True,
    )
    # xgettext writes no file at all when it finds nothing to extract.
    catalogue = output.read_text(encoding="utf-8") if output.exists() else ""
    assert 'msgid "We are sorry, this number is not in service."' in catalogue
    assert 'msgid "We are closed now. Please call again during our opening hours."' in catalogue


# ------------------------------------------------------------------------------------------- outbound


def _click_to_dial(extension: str) -> tuple[Interaction, str]:
    from fedele.contact_center.models import AgentState
    from fedele.contact_center.services import presence
    from fedele.contact_center.tests.factories import AgentFactory

    agent = AgentFactory(extension=extension)
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=T0)
    call = interaction_create(
        channel="voice",
        direction="outbound",
        from_address="+390212345678",
        to_address="+393339876543",
        provider="twilio",
        attributes={"dialling_agent_id": agent.pk},
    )
    return call, f"/contact-center/telephony/twilio/outbound/?interaction={call.public_id}"


def _agent_dials(recorder: Recorder) -> int:
    return sum(1 for r in recorder.requests if r.method == "POST" and str(r.url) == CALLS_URL)


def test_a_retried_outbound_webhook_does_not_ring_the_agent_twice(support_line: Any) -> None:
    _call, path = _click_to_dial("client:giulia")
    recorder = Recorder()
    with adapter_override("twilio", recorder.adapter()):
        first = post("status_outbound_in-progress", signature="sign", path=path)
        retry = post("status_outbound_in-progress", signature="sign", path=path)
    assert first.status_code == retry.status_code == 200
    assert first.content == retry.content
    assert "<Conference" in retry.content.decode()
    assert _agent_dials(recorder) == 1
    assert recorder.form(0)["To"] == ["client:giulia"]


def test_a_retry_after_a_failed_agent_dial_calls_the_agent(support_line: Any) -> None:
    _call, path = _click_to_dial("client:marco")
    failing = Recorder(status=500)
    with adapter_override("twilio", failing.adapter()):
        assert post("status_outbound_in-progress", signature="sign", path=path).status_code == 200
    assert _agent_dials(failing) == 1
    working = Recorder()
    with adapter_override("twilio", working.adapter()):
        assert post("status_outbound_in-progress", signature="sign", path=path).status_code == 200
        assert post("status_outbound_in-progress", signature="sign", path=path).status_code == 200
    assert _agent_dials(working) == 1
    assert working.form(0)["To"] == ["client:marco"]


# ------------------------------------------------------------------------------------------- IVR keys


def test_a_retried_gather_post_is_answered_the_same_and_not_taken_twice() -> None:
    from fedele.contact_center.models import IvrSession
    from fedele.contact_center.services.ivr import ivr_number_assign
    from fedele.contact_center.tests.ivr_support import make_queues, published_flow

    make_queues()
    ivr_number_assign(actor=None, number="+390212345678", flow=published_flow())
    first = post("voice_inbound").content.decode()
    gather = "https://cc.example.it/contact-center/telephony/twilio/gather/?turn=0"
    assert f'action="{gather}"' in first
    path = "/contact-center/telephony/twilio/gather/?turn=0"
    answer = post("gather_digits_2", signature="sign", path=path).content.decode()
    assert "Digita il codice cliente e premi cancelletto." in answer
    assert 'action="https://cc.example.it/contact-center/telephony/twilio/gather/?turn=1"' in answer
    # Twilio posts the same keys to the same URL again (our answer was slow): the same TwiML, and the
    # "2" is not taken as the customer code the caller has not typed yet.
    retry = post("gather_digits_2", signature="sign", path=path).content.decode()
    assert retry == answer
    session = IvrSession.objects.get()
    assert [(entry["node"], entry["digits"]) for entry in session.digits_history] == [("main", "2")]
    assert session.awaiting == "code"
