"""SMS and social channels: signed provider webhooks (Twilio and generic JSON), forgeries refused
with 403 and logged, retries deduped, conversations threaded, opt-out keywords, document keywords,
consent-aware outbound through fedele.shared.sms and httpx (MockTransport)."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from django.conf import settings as django_settings
from django.test import Client

from fedele.contact_center.models import (
    AgentState,
    Interaction,
    InteractionMessage,
    InteractionState,
    MessagingChannel,
    MessagingOptOut,
    MessagingReceipt,
    OutboundMessage,
)
from fedele.contact_center.services import messaging, sms_social
from fedele.contact_center.services.interactions import interaction_connect
from fedele.contact_center.telephony.twilio import twilio_signature
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory
from fedele.customers.facade import consent_change, consents_in_force
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import sms
from fedele.shared.errors import PermissionDenied, ValidationFailed
from fedele.shared.webhooks import sign

pytestmark = pytest.mark.django_db

TOKEN = "twilio-auth-token-for-tests"
SECRET = "whsec_generic_for_tests"
MOBILE = "+393331234567"
OUR_NUMBER = "+390212345678"
T0 = datetime.fromisoformat("2026-03-29T03:15:00+02:00")  # just after the DST change


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    monkeypatch.setenv("CC_TEST_TWILIO_TOKEN", TOKEN)
    monkeypatch.setenv("CC_TEST_GENERIC_SECRET", SECRET)
    monkeypatch.setenv("CC_TEST_GENERIC_API", "api-token")
    settings.CONTACT_CENTER_ROUTE_ON_COMMIT = False
    settings.FEDELE_PUBLIC_URL = "https://fedele.example.it"
    settings.FEDELE_TWILIO_ACCOUNT_SID = "AC123"
    settings.FEDELE_TWILIO_AUTH_TOKEN = TOKEN
    sms.outbox.clear()


@pytest.fixture
def sms_channel() -> MessagingChannel:
    return MessagingChannel.objects.create(
        code="sms-it",
        name="SMS",
        kind="twilio",
        network="sms",
        address=OUR_NUMBER,
        queue=QueueFactory(code="messages"),
        secret_env="CC_TEST_TWILIO_TOKEN",
        created_at=T0,
    )


@pytest.fixture
def telegram() -> MessagingChannel:
    return MessagingChannel.objects.create(
        code="telegram",
        name="Telegram",
        kind="generic",
        network="telegram",
        address="@fedele_bot",
        queue=QueueFactory(code="social"),
        secret_env="CC_TEST_GENERIC_SECRET",
        outbound_url="https://bridge.example.it/send",
        outbound_token_env="CC_TEST_GENERIC_API",
        created_at=T0,
    )


def _twilio_post(
    client: Client, channel: MessagingChannel, params: dict[str, str], *, signature: str | None = None
):
    path = f"/contact-center/webhooks/messaging/{channel.code}/"
    url = f"{django_settings.FEDELE_PUBLIC_URL}{path}"
    header = twilio_signature(url, params, TOKEN) if signature is None else signature
    return client.post(
        path,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": header} if header else {},
    )


def _sms(body: str, sid: str, sender: str = MOBILE) -> dict[str, str]:
    return {"MessageSid": sid, "From": sender, "To": OUR_NUMBER, "Body": body, "NumMedia": "0"}


def _generic_post(
    client: Client, channel: MessagingChannel, payload: Any, *, secret: str = SECRET, age: int = 0
):
    body = json.dumps(payload).encode()
    header = sign(secret, body, int(time.time()) - age) if secret else ""
    return client.post(
        f"/contact-center/webhooks/messaging/{channel.code}/",
        data=body,
        content_type="application/json",
        headers={"Fedele-Signature": header} if header else {},
    )


# --- inbound ------------------------------------------------------------------------------------------


def test_a_signed_twilio_sms_opens_a_queued_conversation_and_a_retry_changes_nothing(client, sms_channel):
    customer = CustomerFactory(phone=MOBILE)
    response = _twilio_post(client, sms_channel, _sms("Buongiorno, ho un problema", "SM001"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    interaction = Interaction.objects.get()
    assert (interaction.channel, interaction.network, interaction.direction, interaction.state) == (
        "sms",
        "sms",
        "inbound",
        InteractionState.QUEUED,
    )
    assert (interaction.from_address, interaction.to_address, interaction.queue.code) == (
        MOBILE,
        OUR_NUMBER,
        "messages",
    )
    assert interaction.customer_public_id == str(customer.public_id)
    assert interaction.attributes["messaging_channel"] == "sms-it"
    assert [(m.sender, m.body, m.provider_ref) for m in interaction.messages.all()] == [
        ("customer", "Buongiorno, ho un problema", "SM001")
    ]
    again = _twilio_post(client, sms_channel, _sms("Buongiorno, ho un problema", "SM001"))
    assert again.status_code == 200
    assert (
        Interaction.objects.count(),
        InteractionMessage.objects.count(),
        MessagingReceipt.objects.count(),
    ) == (
        1,
        1,
        1,
    )


def test_a_second_message_threads_into_the_open_conversation_and_reaches_the_agent(
    client, sms_channel, django_capture_on_commit_callbacks
):
    _twilio_post(client, sms_channel, _sms("Primo", "SM001"))
    interaction = Interaction.objects.get()
    agent = AgentFactory(state=AgentState.AVAILABLE)
    interaction_connect(interaction=interaction, agent=agent, at=T0)
    from fedele.contact_center.tests.test_chat import GroupProbe

    desk = GroupProbe(messaging.agent_group(agent.pk))
    with django_capture_on_commit_callbacks(execute=True):
        _twilio_post(client, sms_channel, _sms("Secondo", "SM002"))
    assert Interaction.objects.count() == 1
    assert list(interaction.messages.values_list("body", flat=True)) == ["Primo", "Secondo"]
    (pushed,) = desk.drain()
    assert (pushed["type"], pushed["data"]["message"]["body"]) == ("cc.chat.message", "Secondo")
    # Another sender is another conversation.
    _twilio_post(client, sms_channel, _sms("Altro", "SM003", sender="+393339998877"))
    assert Interaction.objects.count() == 2


def test_media_urls_are_kept_as_attachments(client, sms_channel):
    params = {
        **_sms("foto", "MM001"),
        "NumMedia": "1",
        "MediaUrl0": "https://api.twilio.com/media/ME1",
        "MediaContentType0": "image/jpeg",
    }
    assert _twilio_post(client, sms_channel, params).status_code == 200
    assert InteractionMessage.objects.get().attachments == [
        {"name": "media-1", "url": "https://api.twilio.com/media/ME1", "content_type": "image/jpeg"}
    ]


@pytest.mark.parametrize("signature", ["", "forged-signature", "AAAA" * 7])
def test_unsigned_or_forged_twilio_requests_are_refused_and_logged(client, sms_channel, caplog, signature):
    with caplog.at_level(logging.WARNING, logger="fedele.contact_center.services.sms_social"):
        response = _twilio_post(client, sms_channel, _sms("STOP", "SM666"), signature=signature)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "webhook_signature_invalid"
    assert "Messaging webhook refused: channel=sms-it reason=bad Twilio signature" in caplog.text
    assert (
        Interaction.objects.count(),
        MessagingReceipt.objects.count(),
        MessagingOptOut.objects.count(),
    ) == (0, 0, 0)


def test_a_twilio_request_signed_with_another_token_or_for_changed_params_is_refused(client, sms_channel):
    params = _sms("Ciao", "SM010")
    url = f"{django_settings.FEDELE_PUBLIC_URL}/contact-center/webhooks/messaging/sms-it/"
    other = twilio_signature(url, params, "another-token")
    assert _twilio_post(client, sms_channel, params, signature=other).status_code == 403
    tampered = twilio_signature(url, {**params, "Body": "Ciao!"}, TOKEN)
    assert _twilio_post(client, sms_channel, params, signature=tampered).status_code == 403
    assert Interaction.objects.count() == 0


def test_a_channel_without_its_secret_refuses_everything(client, sms_channel, monkeypatch):
    monkeypatch.delenv("CC_TEST_TWILIO_TOKEN")
    assert _twilio_post(client, sms_channel, _sms("Ciao", "SM011")).status_code == 403
    assert Interaction.objects.count() == 0


def test_generic_json_is_accepted_signed_and_deduped(client, telegram):
    payload = {"messages": [
        {"id": "tg-1", "from": "telegram:4242", "to": "@fedele_bot", "text": "Ciao", "name": "Luca"},
        {"id": "tg-2", "from": "telegram:4242", "to": "@fedele_bot", "text": "Ci sei?"},
    ]}  # fmt: skip
    response = _generic_post(client, telegram, payload)
    assert response.status_code == 200
    assert response.json() == {"received": 2, "duplicates": 0}
    interaction = Interaction.objects.get()
    assert (interaction.channel, interaction.network, interaction.customer_public_id) == (
        "social",
        "telegram",
        "",
    )
    assert interaction.attributes["sender_name"] == "Luca"
    assert list(interaction.messages.values_list("body", flat=True)) == ["Ciao", "Ci sei?"]
    assert _generic_post(client, telegram, payload).json() == {"received": 2, "duplicates": 2}
    assert InteractionMessage.objects.count() == 2


@pytest.mark.parametrize(
    ("secret", "age"),
    [("", 0), ("whsec_wrong", 0), (SECRET, 301)],  # unsigned, forged, replayed after 5 minutes
)
def test_generic_requests_unsigned_forged_or_stale_are_refused(client, telegram, caplog, secret, age):
    with caplog.at_level(logging.WARNING, logger="fedele.contact_center.services.sms_social"):
        response = _generic_post(
            client, telegram, {"id": "x", "from": "telegram:1", "text": "hi"}, secret=secret, age=age
        )
    assert response.status_code == 403
    assert "reason=bad HMAC signature" in caplog.text
    assert Interaction.objects.count() == 0


@pytest.mark.parametrize(
    "payload", [[], {"messages": []}, {"id": "", "from": "x"}, {"messages": [{"id": "1"}]}]
)
def test_a_signed_but_malformed_body_is_refused_with_nothing_written(client, telegram, payload):
    response = _generic_post(client, telegram, payload)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "webhook_payload_invalid"
    assert (Interaction.objects.count(), MessagingReceipt.objects.count()) == (0, 0)


def test_an_unknown_channel_is_404(client):
    assert client.post("/contact-center/webhooks/messaging/ghost/", data={}).status_code == 404


# --- opt-out ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["STOP", " stop ", "Stop All", "ANNULLA", "annulla\n", "Cancella"])
def test_opt_out_keywords_record_the_withdrawal_and_confirm_once(
    client, sms_channel, text, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(phone=MOBILE)
    consent_change(actor=None, customer_public_id=str(customer.public_id), channel="sms", purpose="marketing",
                   granted=True, source="test")  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        assert _twilio_post(client, sms_channel, _sms(text, "SM100")).status_code == 200
        assert _twilio_post(client, sms_channel, _sms("STOP", "SM101")).status_code == 200  # a second STOP
    opt_out = MessagingOptOut.objects.get()
    assert (opt_out.network, opt_out.address, opt_out.customer_public_id) == (
        "sms",
        MOBILE,
        str(customer.public_id),
    )
    assert consents_in_force(str(customer.public_id))[("sms", "marketing")].granted is False
    assert [(sent.to, sent.sender) for sent in sms.outbox] == [(MOBILE, OUR_NUMBER)]
    assert "no more promotional messages" in sms.outbox[0].body
    assert Interaction.objects.count() == 0  # a keyword is not a conversation
    assert MessagingReceipt.objects.filter(kind="opt_out").count() == 2
    with pytest.raises(PermissionDenied) as refused:
        sms_social.message_send(channel=sms_channel, to=MOBILE, body="Sconti!", purpose="marketing",
                                customer_public_id=str(customer.public_id))  # fmt: skip
    assert refused.value.code == "opted_out"
    with pytest.raises(PermissionDenied):  # the same number written the national way
        sms_social.message_send(channel=sms_channel, to="333 1234567", body="Sconti!", purpose="marketing",
                                customer_public_id=str(customer.public_id))  # fmt: skip
    assert OutboundMessage.objects.filter(purpose="marketing").count() == 0
    assert len(sms.outbox) == 1


def test_stop_inside_a_sentence_is_a_message_not_an_opt_out(client, sms_channel):
    _twilio_post(client, sms_channel, _sms("Non riesco a fermare lo STOP automatico", "SM200"))
    assert MessagingOptOut.objects.count() == 0
    assert Interaction.objects.count() == 1


# --- outbound -----------------------------------------------------------------------------------------


def test_marketing_needs_consent_and_is_sent_and_logged_with_it(sms_channel):
    customer = CustomerFactory(phone=MOBILE)
    with pytest.raises(PermissionDenied) as refused:
        sms_social.message_send(channel=sms_channel, to=MOBILE, body="Offerta", purpose="marketing",
                                customer_public_id=str(customer.public_id))  # fmt: skip
    assert refused.value.code == "consent_missing"
    assert (len(sms.outbox), OutboundMessage.objects.count()) == (0, 0)
    consent_change(actor=None, customer_public_id=str(customer.public_id), channel="sms", purpose="marketing",
                   granted=True, source="test")  # fmt: skip
    sent = sms_social.message_send(
        channel=sms_channel,
        to="333 123 4567",
        body="Offerta",
        purpose="marketing",
        customer_public_id=str(customer.public_id),
        at=T0,
    )
    assert (sent.to_address, sent.body, sent.purpose, sent.provider_ref, sent.sent_at) == (
        MOBILE,
        "Offerta",
        "marketing",
        "locmem-1",
        T0,
    )
    assert [(m.to, m.body) for m in sms.outbox] == [(MOBILE, "Offerta")]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"body": "  "}, ValidationFailed),
        ({"body": "x" * 1601}, ValidationFailed),
        ({"purpose": "spam"}, ValidationFailed),
        ({"to": ""}, ValidationFailed),
        ({"to": "12"}, ValidationFailed),
        ({"customer_public_id": ""}, PermissionDenied),  # an unknown recipient has consented to nothing
    ],
)
def test_bad_outbound_is_refused_with_nothing_sent(sms_channel, overrides, error):
    customer = CustomerFactory(phone=MOBILE)
    consent_change(actor=None, customer_public_id=str(customer.public_id), channel="sms", purpose="service",
                   granted=True, source="test")  # fmt: skip
    values = {"to": MOBILE, "body": "Il tecnico arriva alle 10", "purpose": "service",
              "customer_public_id": str(customer.public_id)}  # fmt: skip
    values.update(overrides)
    with pytest.raises(error):
        sms_social.message_send(channel=sms_channel, **values)
    assert (len(sms.outbox), OutboundMessage.objects.count()) == (0, 0)


def test_an_agent_answers_an_sms_conversation_through_the_provider(client, sms_channel):
    _twilio_post(client, sms_channel, _sms("STOP inviando offerte ma aiutatemi", "SM300"))
    MessagingOptOut.objects.create(network="sms", address=MOBILE, keyword="STOP", created_at=T0)
    interaction = Interaction.objects.get()
    agent = AgentFactory(state=AgentState.AVAILABLE)
    interaction_connect(interaction=interaction, agent=agent, at=T0)
    # An opted-out sender still gets the answer to their own question (a service message).
    reply = messaging.chat_message_send(
        interaction=interaction, agent=agent, body="Eccomi, come posso aiutarla?"
    )
    assert (reply.sender, reply.provider_ref) == ("agent", "locmem-1")
    assert [(m.to, m.sender, m.body) for m in sms.outbox] == [
        (MOBILE, OUR_NUMBER, "Eccomi, come posso aiutarla?")
    ]
    logged = OutboundMessage.objects.get()
    assert (logged.purpose, logged.interaction_id, logged.to_address) == ("service", interaction.pk, MOBILE)
    with pytest.raises(ValidationFailed):
        messaging.chat_message_send(interaction=interaction, agent=agent, body="x" * 1601)
    assert len(sms.outbox) == 1


def _mock_client(monkeypatch: pytest.MonkeyPatch, handler: Any) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    monkeypatch.setattr(
        sms_social, "_http_client", lambda: httpx.Client(transport=httpx.MockTransport(record))
    )
    return seen


def test_generic_outbound_posts_json_with_the_bearer_token(client, telegram, monkeypatch):
    seen = _mock_client(monkeypatch, lambda request: httpx.Response(200, json={"id": "out-77"}))
    _generic_post(client, telegram, {"id": "tg-9", "from": "telegram:4242", "text": "Aiuto"})
    interaction = Interaction.objects.get()
    agent = AgentFactory(state=AgentState.AVAILABLE)
    interaction_connect(interaction=interaction, agent=agent, at=T0)
    reply = messaging.chat_message_send(interaction=interaction, agent=agent, body="Ciao Luca")
    (request,) = seen
    assert (str(request.url), request.headers["Authorization"]) == (
        "https://bridge.example.it/send",
        "Bearer api-token",
    )
    assert json.loads(request.content) == {"to": "telegram:4242", "text": "Ciao Luca"}
    assert reply.provider_ref == "out-77"


def test_a_provider_failure_writes_nothing(client, telegram, monkeypatch):
    _mock_client(monkeypatch, lambda request: httpx.Response(500, json={"error": "down"}))
    _generic_post(client, telegram, {"id": "tg-9", "from": "telegram:4242", "text": "Aiuto"})
    interaction = Interaction.objects.get()
    agent = AgentFactory(state=AgentState.AVAILABLE)
    interaction_connect(interaction=interaction, agent=agent, at=T0)
    with pytest.raises(sms.SmsSendFailed):
        messaging.chat_message_send(interaction=interaction, agent=agent, body="Ciao")
    assert InteractionMessage.objects.filter(sender="agent").count() == 0
    assert OutboundMessage.objects.count() == 0


def test_whatsapp_through_twilio_uses_the_whatsapp_prefix(monkeypatch):
    seen = _mock_client(monkeypatch, lambda request: httpx.Response(201, json={"sid": "SMwa1"}))
    channel = MessagingChannel.objects.create(
        code="wa", name="WhatsApp", kind="twilio", network="whatsapp", address=OUR_NUMBER,
        queue=QueueFactory(code="wa"), secret_env="CC_TEST_TWILIO_TOKEN", created_at=T0,
    )  # fmt: skip
    customer = CustomerFactory(phone=MOBILE)
    consent_change(
        actor=None,
        customer_public_id=str(customer.public_id),
        channel="whatsapp",
        purpose="service",
        granted=True,
        source="test",
    )
    sent = sms_social.message_send(channel=channel, to=f"whatsapp:{MOBILE}", body="Fattura pronta",
                                   purpose="service", customer_public_id=str(customer.public_id))  # fmt: skip
    (request,) = seen
    assert str(request.url) == "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
    form = dict(pair.split("=", 1) for pair in request.content.decode().split("&"))
    assert (form["To"], form["From"]) == ("whatsapp%3A%2B393331234567", "whatsapp%3A%2B390212345678")
    assert (sent.provider_ref, sent.to_address) == ("SMwa1", MOBILE)


# --- document keywords --------------------------------------------------------------------------------


def test_a_document_keyword_becomes_a_document_request_not_a_conversation(client, sms_channel):
    from fedele.contact_center.models import Document, DocumentRequest

    Document.objects.create(
        code="manual",
        title_it="Manuale",
        title_en="Manual",
        kind="file",
        sms_keyword="MANUALE",
        created_at=T0,
    )
    assert _twilio_post(client, sms_channel, _sms("manuale", "SM400")).status_code == 200
    request = DocumentRequest.objects.get()
    assert (request.destination, request.document.code) == (MOBILE, "manual")
    assert Interaction.objects.count() == 0
    assert MessagingReceipt.objects.get().kind == "document"
    assert _twilio_post(client, sms_channel, _sms("manuale", "SM400")).status_code == 200
    assert DocumentRequest.objects.count() == 1


# --- races (PostgreSQL) -------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_message_delivered_eight_times_at_once_is_stored_once(sms_channel):
    from fedele.shared.testing import in_threads

    message = sms_social.parse_twilio(_sms("Buongiorno", "SM-RACE"))
    results: list[sms_social.InboundResult] = []
    errors = in_threads(lambda index: results.append(sms_social.receive(sms_channel, message)), 8)
    assert errors == []
    assert sorted(result.duplicate for result in results) == [False] + [True] * 7
    assert (
        Interaction.objects.count(),
        InteractionMessage.objects.count(),
        MessagingReceipt.objects.count(),
    ) == (
        1,
        1,
        1,
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_stops_at_once_record_one_opt_out_and_confirm_once(sms_channel):
    from fedele.shared.testing import in_threads

    errors = in_threads(
        lambda index: sms_social.receive(
            sms_channel, sms_social.parse_twilio(_sms("STOP", f"SM-STOP-{index}"))
        ),
        8,
    )
    assert errors == []
    assert MessagingOptOut.objects.count() == 1
    assert MessagingReceipt.objects.filter(kind="opt_out").count() == 8
    assert len(sms.outbox) == 1
