"""Twilio: the signature check against Twilio's own vectors, the signed webhooks end to end with
recorded payloads (voice → queue, IVR keys, status, recording, voicemail), 403 on unsigned / forged /
tampered / replayed-to-another-URL requests with nothing changed, retries that change nothing, and
the REST adapter's exact requests (httpx.MockTransport stands in for api.twilio.com)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import time_machine
from django.test import Client, override_settings

from fedele.contact_center.models import (
    Interaction,
    InteractionEvent,
    InteractionState,
    Outcome,
    QueueTelephonySettings,
    Recording,
    VoicemailBox,
    VoicemailMessage,
    VoiceNumber,
)
from fedele.contact_center.telephony.registry import adapter_override
from fedele.contact_center.telephony.twilio import (
    TelephonyProviderError,
    TwilioAdapter,
    twilio_signature,
    twilio_signature_valid,
)
from fedele.contact_center.tests.factories import QueueFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


FIXTURES = Path(__file__).parent / "fixtures" / "twilio"
TOKEN = "f3b2c1d0e9a8b7c6d5e4f3a2b1c0d9e8"
ACCOUNT = "AC5ef8732a3c49700934481addd5ce1659"
BASE = "https://cc.example.it"
INBOUND_SID = "CA8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a"
T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
WAIT = f"{BASE}/contact-center/telephony/twilio/queue-wait/"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 28
TWILIO = override_settings(
    FEDELE_TWILIO_AUTH_TOKEN=TOKEN,
    FEDELE_TWILIO_ACCOUNT_SID=ACCOUNT,
    FEDELE_PUBLIC_URL=BASE,
    FEDELE_TWILIO_BASE_URL="https://api.twilio.com",
    FEDELE_TWILIO_CALLER_ID="+390212345678",
)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def post(name: str, *, signature: str | None = "recorded", path: str | None = None, **changes: str) -> Any:
    data = fixture(name)
    params = {**data["params"], **changes}
    url_path = path or data["path"]
    headers: dict[str, str] = {}
    if signature == "recorded":
        headers["HTTP_X_TWILIO_SIGNATURE"] = data["signature"] or twilio_signature(
            BASE + url_path, params, TOKEN
        )
    elif signature == "sign":
        headers["HTTP_X_TWILIO_SIGNATURE"] = twilio_signature(BASE + url_path, params, TOKEN)
    elif signature is not None:
        headers["HTTP_X_TWILIO_SIGNATURE"] = signature
    return Client().post(url_path, params, **headers)


@pytest.fixture(autouse=True)
def _twilio_settings() -> Any:
    with TWILIO:
        yield


@pytest.fixture
def support_line() -> Any:
    queue = QueueFactory(code="support", channels=["voice"])
    VoiceNumber.objects.create(number="+390212345678", provider="twilio", queue=queue, language="it")
    return queue


# ------------------------------------------------------------------------------------------- signature


def test_signature_matches_twilios_published_example() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature(url, params, "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert twilio_signature_valid(url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "12345")
    assert not twilio_signature_valid(
        url, {**params, "Digits": "1235"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "12345"
    )
    assert not twilio_signature_valid(url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "54321")


@pytest.mark.parametrize(
    "name", ["voice_inbound", "gather_digits_2", "recording_completed", "voicemail_record_action"]
)
def test_recorded_signatures_from_twilios_validator_are_accepted(name: str) -> None:
    data = fixture(name)
    assert twilio_signature_valid(BASE + data["path"], data["params"], data["signature"], TOKEN)


def test_the_default_port_may_be_added_or_dropped_by_a_proxy() -> None:
    params = {"CallSid": "CA1", "From": "+39333"}
    signed_with_port = twilio_signature("https://cc.example.it:443/hook/", params, TOKEN)
    assert twilio_signature_valid("https://cc.example.it/hook/", params, signed_with_port, TOKEN)
    signed_without = twilio_signature("https://cc.example.it/hook/", params, TOKEN)
    assert twilio_signature_valid("https://cc.example.it:443/hook/", params, signed_without, TOKEN)
    assert not twilio_signature_valid("https://cc.example.it/other/", params, signed_without, TOKEN)


def test_repeated_parameters_are_signed_sorted_and_once() -> None:
    url = "https://cc.example.it/h/"
    assert twilio_signature(url, {"A": ["2", "1", "2"]}, TOKEN) == twilio_signature(
        url, {"A": ["1", "2"]}, TOKEN
    )
    assert twilio_signature(url, {"A": ["1", "2"]}, TOKEN) != twilio_signature(url, {"A": ["1"]}, TOKEN)


def test_no_token_or_no_signature_is_never_valid() -> None:
    assert not twilio_signature_valid("https://x/", {}, twilio_signature("https://x/", {}, ""), "")
    assert not twilio_signature_valid("https://x/", {}, "", TOKEN)


# ------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("signature", "path", "changes"),
    [
        (None, None, {}),  # unsigned
        ("4DCTradaplFP+gdzqXegwByFCpk=", None, {"From": "+393330000000"}),  # tampered parameter
        ("bm90IGEgc2lnbmF0dXJl", None, {}),  # forged
        ("recorded", "/contact-center/telephony/twilio/status/", {}),  # replayed to another URL
    ],
    ids=["unsigned", "tampered", "forged", "replayed-elsewhere"],
)
def test_bad_signatures_get_403_are_logged_and_change_nothing(
    support_line: Any,
    caplog: pytest.LogCaptureFixture,
    signature: str | None,
    path: str | None,
    changes: dict[str, str],
) -> None:
    with caplog.at_level(logging.WARNING, logger="fedele.contact_center.telephony.webhooks"):
        response = post("voice_inbound", signature=signature, path=path, **changes)
    assert response.status_code == 403
    assert Interaction.objects.count() == 0
    assert InteractionEvent.objects.count() == 0
    assert any("Refused Twilio webhook" in record.getMessage() for record in caplog.records)


def test_a_wrong_auth_token_is_refused() -> None:
    data = fixture("voice_inbound")
    forged = twilio_signature(BASE + data["path"], data["params"], "another-accounts-token")
    assert post("voice_inbound", signature=forged).status_code == 403


def test_signature_checks_the_public_url_not_the_host_header(support_line: Any) -> None:
    data = fixture("voice_inbound")
    evil = twilio_signature("https://evil.example.com" + data["path"], data["params"], TOKEN)
    response = Client(HTTP_HOST="localhost").post(data["path"], data["params"], HTTP_X_TWILIO_SIGNATURE=evil)
    assert response.status_code == 403
    good = Client(HTTP_HOST="localhost").post(
        data["path"], data["params"], HTTP_X_TWILIO_SIGNATURE=data["signature"]
    )
    assert good.status_code == 200


def test_get_is_not_allowed() -> None:
    assert Client().get("/contact-center/telephony/twilio/voice/").status_code == 405


# ------------------------------------------------------------------------------------------- voice


@time_machine.travel(T0, tick=False)
def test_inbound_call_is_queued_and_answered_with_exact_twiml(support_line: Any) -> None:
    response = post("voice_inbound")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Enqueue waitUrl="'
        + WAIT
        + '">support</Enqueue></Response>'
    )
    call = Interaction.objects.get()
    assert (call.provider, call.provider_ref, call.state, call.queue_id) == (
        "twilio",
        INBOUND_SID,
        InteractionState.QUEUED,
        support_line.pk,
    )
    assert (call.from_address, call.to_address, call.queued_at) == ("+393331234567", "+390212345678", T0)
    assert call.attributes["account"] == ACCOUNT
    # Twilio retries the webhook when we were slow: the same call, nothing added.
    events_before = InteractionEvent.objects.count()
    assert post("voice_inbound").status_code == 200
    assert Interaction.objects.count() == 1
    assert InteractionEvent.objects.count() == events_before


@time_machine.travel(T0, tick=False)
def test_a_recorded_queue_announces_the_recording_first(support_line: Any) -> None:
    QueueTelephonySettings.objects.create(
        queue=support_line,
        record_calls=True,
        announce_recording=True,
        announcement_it="Chiamata registrata & <ok>.",
    )
    body = post("voice_inbound").content.decode()
    assert body == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Say language="it-IT">Chiamata registrata &amp; &lt;ok&gt;.</Say>'
        '<Enqueue waitUrl="' + WAIT + '">support</Enqueue></Response>'
    )


def test_an_unknown_number_is_told_it_is_not_in_service() -> None:
    body = post("voice_inbound").content.decode()
    assert "<Hangup/>" in body and "<Say" in body
    assert Interaction.objects.get().state == InteractionState.IVR


@time_machine.travel(T0, tick=False)
def test_status_callback_ends_a_waiting_call_abandoned_once(support_line: Any) -> None:
    post("voice_inbound")
    response = post("status_inbound_completed")
    assert response.status_code == 204
    call = Interaction.objects.get()
    # Twilio's Timestamp says 10:01:35; the caller waited from 10:00:00.
    assert (call.state, call.outcome, call.wait_seconds) == (InteractionState.ENDED, Outcome.ABANDONED, 95)
    assert call.ended_at == datetime(2026, 12, 7, 10, 1, 35, tzinfo=UTC)
    count = InteractionEvent.objects.count()
    assert post("status_inbound_completed").status_code == 204
    assert InteractionEvent.objects.count() == count


def test_ivr_keys_go_to_the_engine_and_come_back_as_twiml() -> None:
    from fedele.contact_center.services.ivr import ivr_number_assign
    from fedele.contact_center.tests.ivr_support import make_queues, published_flow

    make_queues()
    ivr_number_assign(actor=None, number="+390212345678", flow=published_flow())
    first = post("voice_inbound").content.decode()
    assert (
        "<Gather" in first
        and 'action="https://cc.example.it/contact-center/telephony/twilio/gather/?turn=0"' in first
    )
    second = post("gather_digits_2").content.decode()
    assert "customer code" in second or "codice cliente" in second
    call = Interaction.objects.get()
    assert InteractionEvent.objects.get(interaction=call, kind="call.dtmf").data["digits"] == "2"


def test_keys_nobody_waits_for_get_a_polite_goodbye(support_line: Any) -> None:
    post("voice_inbound")
    body = post("gather_digits_2").content.decode()
    assert body.endswith("<Hangup/></Response>")


# ------------------------------------------------------------------------------------------- recordings


def media_transport(
    requests: list[httpx.Request], *, status: int = 200, content: bytes = WAV
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(status, content=content)

    return httpx.MockTransport(handler)


def test_recording_callback_stores_the_audio_fetched_from_twilio(
    support_line: Any, django_capture_on_commit_callbacks: Any
) -> None:
    post("voice_inbound")
    requests: list[httpx.Request] = []
    adapter = TwilioAdapter(client=httpx.Client(transport=media_transport(requests)))
    with adapter_override("twilio", adapter), django_capture_on_commit_callbacks(execute=True):
        response = post("recording_completed")
    assert response.status_code == 204
    recording = Recording.objects.get()
    assert (recording.state, recording.provider_ref, recording.duration_seconds) == (
        Recording.State.STORED,
        "RE1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
        42,
    )
    assert (recording.content_type, recording.size_bytes) == ("audio/wav", len(WAV))
    assert recording.audio.read() == WAV
    assert [str(r.url) for r in requests] == [fixture("recording_completed")["params"]["RecordingUrl"]]
    assert requests[0].headers["Authorization"].startswith("Basic ")
    # A retry neither adds a row nor downloads again.
    with adapter_override("twilio", adapter), django_capture_on_commit_callbacks(execute=True):
        post("recording_completed")
    assert Recording.objects.count() == 1 and len(requests) == 1


def test_a_recording_twilio_refuses_to_serve_is_kept_failed(
    support_line: Any, django_capture_on_commit_callbacks: Any
) -> None:
    post("voice_inbound")
    adapter = TwilioAdapter(client=httpx.Client(transport=media_transport([], status=404)))
    with adapter_override("twilio", adapter), django_capture_on_commit_callbacks(execute=True):
        post("recording_completed")
    recording = Recording.objects.get()
    assert (recording.state, recording.size_bytes, bool(recording.audio)) == (
        Recording.State.FAILED,
        0,
        False,
    )


def test_recording_statuses_other_than_completed_are_ignored(support_line: Any) -> None:
    post("voice_inbound")
    assert post("recording_completed", signature="sign", RecordingStatus="in-progress").status_code == 204
    assert Recording.objects.count() == 0


@time_machine.travel(T0, tick=False)
def test_voicemail_record_action_stores_the_message_and_queues_a_callback(
    support_line: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from fedele.accounts.tests.factories import UserFactory
    from fedele.shared.models import Notification

    supervisor = UserFactory(email="capo@example.it")
    box = VoicemailBox.objects.create(code="support-vm", name="Support", queue=support_line)
    box.subscribers.add(supervisor)
    post("voice_inbound")
    requests: list[httpx.Request] = []
    adapter = TwilioAdapter(client=httpx.Client(transport=media_transport(requests)))
    with adapter_override("twilio", adapter), django_capture_on_commit_callbacks(execute=True):
        response = post("voicemail_record_action")
    assert response.content.decode().endswith("<Hangup/></Response>")
    message = VoicemailMessage.objects.get()
    assert (message.box_id, message.duration_seconds, message.caller_number, message.state) == (
        box.pk,
        17,
        "+393331234567",
        Recording.State.STORED,
    )
    callback = message.callback_interaction
    assert callback is not None
    assert (callback.direction, callback.to_address, callback.state, callback.queue_id) == (
        "outbound",
        "+393331234567",
        InteractionState.QUEUED,
        support_line.pk,
    )
    assert callback.attributes["kind"] == "callback"
    notification = Notification.objects.get(recipient=supervisor)
    assert notification.title == "New voicemail in Support from +393331234567"
    from django.core import mail

    assert [m.to for m in mail.outbox] == [["capo@example.it"]]
    assert Interaction.objects.get(provider_ref=INBOUND_SID).attributes["voicemail_left"] is True


# ------------------------------------------------------------------------------------------- outbound


class Recorder:
    """A stand-in for api.twilio.com: records each request and answers like Twilio does."""

    def __init__(self, *, status: int = 201) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/Conferences.json"):
            return httpx.Response(200, json={"conferences": [{"sid": "CF0001", "friendly_name": "cc-CA1"}]})
        if self.status >= 400:
            return httpx.Response(self.status, json={"code": 21211, "message": "Invalid 'To' Phone Number"})
        return httpx.Response(
            self.status, json={"sid": "CAe1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6", "status": "queued"}
        )

    def form(self, index: int) -> dict[str, list[str]]:
        return parse_qs(self.requests[index].content.decode(), keep_blank_values=True)

    def adapter(self) -> TwilioAdapter:
        return TwilioAdapter(client=httpx.Client(transport=httpx.MockTransport(self)))


CALLS_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls.json"


def test_originate_posts_exactly_what_twilio_expects() -> None:
    recorder = Recorder()
    sid = recorder.adapter().originate(
        to_number="+393339876543", from_number="", context={"interaction": "abc"}
    )
    assert sid == "CAe1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6"
    request = recorder.requests[0]
    assert (request.method, str(request.url)) == ("POST", CALLS_URL)
    assert recorder.form(0) == {
        "To": ["+393339876543"],
        "From": ["+390212345678"],
        "Url": [f"{BASE}/contact-center/telephony/twilio/outbound/?interaction=abc"],
        "StatusCallback": [f"{BASE}/contact-center/telephony/twilio/status/?interaction=abc"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "StatusCallbackMethod": ["POST"],
    }
    assert request.headers["Authorization"] == httpx.BasicAuth(ACCOUNT, TOKEN)._auth_header


def test_call_control_requests() -> None:
    recorder = Recorder(status=200)
    adapter = recorder.adapter()
    adapter.hold("CA1", on=True)
    adapter.mute("CA1", on=True)
    adapter.transfer("CA1", target="+390299999999", warm=False)
    adapter.transfer("CA1", target="+390288888888", warm=True)
    adapter.recording_pause("CA1", paused=True)
    adapter.recording_pause("CA1", paused=False)
    adapter.hangup("CA1")
    account = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}"
    assert [(r.method, str(r.url)) for r in recorder.requests] == [
        ("GET", f"{account}/Conferences.json?FriendlyName=cc-CA1&Status=in-progress"),
        ("POST", f"{account}/Conferences/CF0001/Participants/customer.json"),
        ("GET", f"{account}/Conferences.json?FriendlyName=cc-CA1&Status=in-progress"),
        ("POST", f"{account}/Conferences/CF0001/Participants/agent.json"),
        ("POST", f"{account}/Calls/CA1.json"),
        ("GET", f"{account}/Conferences.json?FriendlyName=cc-CA1&Status=in-progress"),
        ("POST", f"{account}/Conferences/CF0001/Participants.json"),
        ("POST", f"{account}/Calls/CA1/Recordings/Twilio.CURRENT.json"),
        ("POST", f"{account}/Calls/CA1/Recordings/Twilio.CURRENT.json"),
        ("POST", f"{account}/Calls/CA1.json"),
    ]
    assert recorder.form(1) == {"Hold": ["true"]}
    assert recorder.form(3) == {"Muted": ["true"]}
    assert recorder.form(4) == {
        "Twiml": ['<?xml version="1.0" encoding="UTF-8"?><Response><Dial>+390299999999</Dial></Response>']
    }
    assert recorder.form(6) == {
        "From": ["+390212345678"],
        "To": ["+390288888888"],
        "Label": ["transfer"],
        "EarlyMedia": ["true"],
    }
    assert recorder.form(7) == {"Status": ["paused"], "PauseBehavior": ["skip"]}
    assert recorder.form(8) == {"Status": ["in-progress"]}
    assert recorder.form(9) == {"Status": ["completed"]}


def test_a_refusal_or_an_outage_is_a_provider_error() -> None:
    with pytest.raises(TelephonyProviderError) as refused:
        Recorder(status=400).adapter().originate(to_number="+39", from_number="+39", context={})
    assert refused.value.status_code == 502
    assert "Invalid 'To' Phone Number" in refused.value.message

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down", request=request)

    adapter = TwilioAdapter(client=httpx.Client(transport=httpx.MockTransport(unreachable)))
    with pytest.raises(TelephonyProviderError):
        adapter.hangup("CA1")


def test_media_is_only_fetched_from_twilio() -> None:
    recorder = Recorder()
    with pytest.raises(TelephonyProviderError):
        recorder.adapter().fetch_media("https://evil.example.com/Recordings/RE1")
    assert recorder.requests == []


def test_click_to_dial_through_twilio_then_signed_status_callbacks(support_line: Any) -> None:
    from fedele.accounts.tests.factories import UserFactory
    from fedele.contact_center.models import AgentState
    from fedele.contact_center.services import presence
    from fedele.contact_center.services.calls import call_originate
    from fedele.contact_center.tests.factories import AgentFactory

    agent = AgentFactory(user=UserFactory(), extension="201")
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=T0)
    recorder = Recorder()
    with adapter_override("twilio", recorder.adapter()):
        call = call_originate(agent=agent, to_number="333 987 6543", provider="twilio")
    assert (call.provider_ref, call.to_address, call.direction) == (
        "CAe1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6",
        "+393339876543",
        "outbound",
    )
    path = f"/contact-center/telephony/twilio/status/?interaction={call.public_id}"
    assert post("status_outbound_initiated", signature="sign", path=path).status_code == 204
    assert post("status_outbound_ringing", signature="sign", path=path).status_code == 204
    assert post("status_outbound_in-progress", signature="sign", path=path).status_code == 204
    call.refresh_from_db()
    assert (call.state, call.agent_id) == (InteractionState.CONNECTED, agent.pk)
    assert post("status_outbound_completed", signature="sign", path=path).status_code == 204
    call.refresh_from_db()
    assert (call.outcome, call.talk_seconds) == (Outcome.HANDLED, 60)
    assert Interaction.objects.count() == 1


def test_outbound_busy_ends_busy(support_line: Any) -> None:
    from fedele.contact_center.services.interactions import interaction_create

    call = interaction_create(
        channel="voice",
        direction="outbound",
        from_address="+390212345678",
        to_address="+393339876543",
        provider="twilio",
    )
    path = f"/contact-center/telephony/twilio/status/?interaction={call.public_id}"
    post("status_outbound_initiated", signature="sign", path=path)
    post("status_outbound_busy", signature="sign", path=path)
    call.refresh_from_db()
    assert (call.provider_ref, call.state, call.outcome) == (
        "CAe1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6",
        InteractionState.ENDED,
        Outcome.BUSY,
    )


def test_answered_click_to_dial_joins_the_conference_and_calls_the_agent_in(support_line: Any) -> None:
    from fedele.contact_center.models import AgentState
    from fedele.contact_center.services import presence
    from fedele.contact_center.services.interactions import interaction_create
    from fedele.contact_center.tests.factories import AgentFactory

    agent = AgentFactory(extension="client:giulia")
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=T0)
    call = interaction_create(
        channel="voice",
        direction="outbound",
        from_address="+390212345678",
        to_address="+393339876543",
        provider="twilio",
        attributes={"dialling_agent_id": agent.pk},
    )
    recorder = Recorder()
    path = f"/contact-center/telephony/twilio/outbound/?interaction={call.public_id}"
    with adapter_override("twilio", recorder.adapter()):
        response = post("status_outbound_in-progress", signature="sign", path=path)
    sid = "CAe1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6"
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Conference participantLabel="customer" '
        f'endConferenceOnExit="true" startConferenceOnEnter="true" beep="false">cc-{sid}</Conference></Dial>'
        "</Response>"
    )
    assert [(r.method, str(r.url)) for r in recorder.requests] == [("POST", CALLS_URL)]
    form = recorder.form(0)
    assert form["To"] == ["client:giulia"]
    assert 'participantLabel="agent"' in form["Twiml"][0] and f"cc-{sid}" in form["Twiml"][0]
    call.refresh_from_db()
    assert (call.provider_ref, call.state, call.agent_id) == (sid, InteractionState.CONNECTED, agent.pk)
    with adapter_override("twilio", Recorder(status=500).adapter()):
        # A retried webhook while Twilio's API fails: the customer still gets the conference.
        retry = post("status_outbound_in-progress", signature="sign", path=path)
    assert retry.status_code == 200 and "<Conference" in retry.content.decode()


def test_a_separate_webhook_host_is_used_for_signatures_and_callback_urls(settings: Any) -> None:
    from fedele.contact_center.services.ivr import ivr_number_assign
    from fedele.contact_center.tests.ivr_support import make_queues, published_flow

    settings.FEDELE_TWILIO_WEBHOOK_BASE_URL = "https://voice.example.it"
    make_queues()
    ivr_number_assign(actor=None, number="+390212345678", flow=published_flow())
    data = fixture("voice_inbound")
    assert post("voice_inbound").status_code == 403  # signed for the public URL, not the webhook host
    signed = twilio_signature("https://voice.example.it" + data["path"], data["params"], TOKEN)
    body = post("voice_inbound", signature=signed).content.decode()
    assert 'action="https://voice.example.it/contact-center/telephony/twilio/gather/?turn=0"' in body


@time_machine.travel(T0, tick=False)
def test_a_waiting_caller_hears_their_place_and_the_estimated_wait(support_line: Any) -> None:
    post("voice_inbound")
    post("voice_inbound", signature="sign", CallSid="CA-second", From="+393330000002")
    path = "/contact-center/telephony/twilio/queue-wait/"
    params = {"CallSid": "CA-second", "QueuePosition": "1", "QueueTime": "12", "AccountSid": ACCOUNT}
    signature = twilio_signature(BASE + path, params, TOKEN)
    Interaction.objects.filter(provider_ref="CA-second").update(language="en")
    body = Client().post(path, params, HTTP_X_TWILIO_SIGNATURE=signature).content.decode()
    # Second in line; no history (180 s a call) and no agent staffed (counted as one): 360 s = 6 min.
    assert body == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="en-US">'
        "You are number 2 in line. The estimated wait is 6 minutes.</Say>"
        '<Pause length="30"/></Response>'
    )
    unknown = {**params, "CallSid": "CA-nobody"}
    quiet = Client().post(
        path, unknown, HTTP_X_TWILIO_SIGNATURE=twilio_signature(BASE + path, unknown, TOKEN)
    )
    assert quiet.content.decode().endswith('<Pause length="30"/></Response>')
    assert Client().post(path, params).status_code == 403
