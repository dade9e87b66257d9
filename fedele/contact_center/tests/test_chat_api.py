"""The messaging API and the public chat endpoints over HTTP: widget and channel settings (with
their validation), consent-aware sending, an agent's transcript and reply (scoped), the pre-chat
form, uploads with the visitor's token, signed file links, the widget script and the frame's
frame-ancestors policy."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.contact_center.models import (
    AgentState,
    ChatSession,
    ChatWidget,
    Interaction,
    InteractionMessage,
    MessagingChannel,
    OutboundMessage,
)
from fedele.contact_center.services import chat
from fedele.contact_center.services.interactions import interaction_connect
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory
from fedele.customers.facade import consent_change
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import sms
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db
BASE = "/api/v1/contact-center"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.CONTACT_CENTER_ROUTE_ON_COMMIT = False
    sms.outbox.clear()


@pytest.fixture
def admin() -> dict[str, str]:
    return auth_header(user_with_roles("admin"))


@pytest.fixture
def queue() -> Any:
    return QueueFactory(code="web", channels=["chat", "sms", "social"])


def _widget_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": "Sito",
        "queue": "web",
        "allowed_origins": ["https://www.example.it"],
        "topics": [{"code": "info", "label_it": "Informazioni", "label_en": "Information"}],
        "max_message_chars": 300,
    }
    payload.update(overrides)
    return payload


def test_widget_crud_and_validation(client: Client, admin: dict[str, str], queue: Any) -> None:
    created = client.post(
        f"{BASE}/messaging/widgets", _widget_payload(), content_type="application/json", **admin
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["name"], body["queue"], body["allowed_origins"], body["max_message_chars"]) == (
        "Sito",
        "web",
        ["https://www.example.it"],
        300,
    )
    script = "http://127.0.0.1:8000/contact-center/chat/widget.js"
    assert body["embed_code"] == f'<script src="{script}" data-widget="{body["key"]}" async></script>'
    changed = client.put(
        f"{BASE}/messaging/widgets/{body['key']}",
        _widget_payload(name="Sito nuovo", active=False),
        content_type="application/json",
        **admin,
    )
    assert changed.status_code == 200
    assert (changed.json()["name"], changed.json()["active"]) == ("Sito nuovo", False)
    refused = client.post(
        f"{BASE}/messaging/widgets",
        _widget_payload(allowed_origins=["not an origin"], max_message_chars=0),
        content_type="application/json",
        **admin,
    )
    assert refused.status_code == 422
    assert set(refused.json()["error"]["fields"]) == {"allowed_origins", "max_message_chars"}
    assert ChatWidget.objects.count() == 1
    listed = client.get(f"{BASE}/messaging/widgets", **admin)
    assert [w["name"] for w in listed.json()] == ["Sito nuovo"]


def test_agents_may_not_configure(client: Client, queue: Any) -> None:
    agent = auth_header(user_with_roles("agent"))
    response = client.post(
        f"{BASE}/messaging/widgets", _widget_payload(), content_type="application/json", **agent
    )
    assert response.status_code == 403
    assert client.get(f"{BASE}/messaging/channels", **agent).status_code == 403
    assert ChatWidget.objects.count() == 0


def _channel_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "code": "sms-it",
        "name": "SMS",
        "kind": "twilio",
        "network": "sms",
        "address": "02 1234 5678",
        "queue": "web",
        "secret_env": "FEDELE_TWILIO_AUTH_TOKEN",
    }
    payload.update(overrides)
    return payload


def test_channel_crud_and_validation(client: Client, admin: dict[str, str], queue: Any) -> None:
    created = client.post(
        f"{BASE}/messaging/channels", _channel_payload(), content_type="application/json", **admin
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["address"], body["secret_configured"], body["webhook_url"]) == (
        "+390212345678",
        False,
        "http://127.0.0.1:8000/contact-center/webhooks/messaging/sms-it/",
    )
    assert (
        AuditLog.objects.filter(action="contact_center.messaging_channel_saved", object_id="sms-it").count()
        == 1
    )
    renamed = client.put(
        f"{BASE}/messaging/channels/sms-it",
        _channel_payload(code="other"),
        content_type="application/json",
        **admin,
    )
    assert renamed.status_code == 422 and "code" in renamed.json()["error"]["fields"]
    for overrides, field in (
        ({"code": "sms-it"}, "code"),  # taken
        ({"code": "X Y"}, "code"),
        ({"code": "wa", "network": "telegram"}, "network"),  # Twilio carries sms and whatsapp only
        ({"code": "wa", "address": "not a number"}, "address"),
        ({"code": "wa", "queue": "ghost"}, "queue"),
        ({"code": "wa", "secret_env": "lower-case"}, "secret_env"),
        ({"code": "wa", "kind": "generic", "network": "telegram", "outbound_url": "ftp://x"}, "outbound_url"),
    ):
        refused = client.post(
            f"{BASE}/messaging/channels",
            _channel_payload(**overrides),
            content_type="application/json",
            **admin,
        )
        assert refused.status_code == 422, overrides
        assert field in refused.json()["error"]["fields"], overrides
    QueueFactory(code="calls", channels=["voice"])
    refused = client.post(
        f"{BASE}/messaging/channels",
        _channel_payload(code="wa2", queue="calls"),
        content_type="application/json",
        **admin,
    )
    assert refused.json()["error"]["fields"]["queue"] == ["This queue does not take sms."]
    assert MessagingChannel.objects.count() == 1


def test_send_is_consent_aware_and_marketing_needs_the_campaign_permission(
    client: Client, admin: dict[str, str], queue: Any
) -> None:
    MessagingChannel.objects.create(
        code="sms-it", name="SMS", kind="twilio", network="sms", address="+390212345678", queue=queue,
        created_at=timezone.now(),
    )  # fmt: skip
    customer = CustomerFactory(phone="+393331234567")
    payload = {"channel": "sms-it", "to": "+393331234567", "body": "Promo", "purpose": "marketing",
               "customer_id": str(customer.public_id)}  # fmt: skip
    refused = client.post(f"{BASE}/messaging/send", payload, content_type="application/json", **admin)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "consent_missing")
    agent = auth_header(user_with_roles("agent"))
    consent_change(actor=None, customer_public_id=str(customer.public_id), channel="sms", purpose="marketing",
                   granted=True, source="test")  # fmt: skip
    assert (
        client.post(f"{BASE}/messaging/send", payload, content_type="application/json", **agent).status_code
        == 403
    )
    sent = client.post(
        f"{BASE}/messaging/send",
        payload,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k-1",
        **admin,
    )
    again = client.post(
        f"{BASE}/messaging/send",
        payload,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k-1",
        **admin,
    )
    assert sent.status_code == 201 and again.status_code == 201
    assert sent.json()["id"] == again.json()["id"]
    assert (OutboundMessage.objects.count(), len(sms.outbox)) == (1, 1)


def test_transcript_and_reply_are_scoped_to_the_agent(client: Client, queue: Any) -> None:
    agent_user = user_with_roles("agent")
    agent = AgentFactory(user=agent_user, state=AgentState.AVAILABLE, display_name="Anna")
    agent.queues.add(queue)
    widget = ChatWidget.objects.create(name="Sito", queue=queue, created_at=timezone.now())
    started = chat.chat_start(
        widget=widget, name="Mario", email="mario@example.it", consent=True, message="Ciao"
    )
    interaction = interaction_connect(interaction=started.session.interaction, agent=agent)
    url = f"{BASE}/interactions/{interaction.public_id}"
    other = auth_header(user_with_roles("agent"))
    assert client.get(f"{url}/transcript", **other).status_code == 404
    assert (
        client.post(f"{url}/messages", {"body": "x"}, content_type="application/json", **other).status_code
        == 404
    )
    mine = auth_header(agent_user)
    reply = client.post(f"{url}/messages", {"body": "Salve"}, content_type="application/json", **mine)
    assert reply.status_code == 201
    assert (reply.json()["sender"], reply.json()["author"], reply.json()["body"]) == (
        "agent",
        "Anna",
        "Salve",
    )
    transcript = client.get(f"{url}/transcript", **mine).json()
    assert [(m["sender"], m["body"]) for m in transcript] == [("customer", "Ciao"), ("agent", "Salve")]
    supervisor = auth_header(user_with_roles("supervisor"))
    assert len(client.get(f"{url}/transcript", **supervisor).json()) == 2
    empty = client.post(f"{url}/messages", {"body": "  "}, content_type="application/json", **mine)
    assert empty.status_code == 422
    assert InteractionMessage.objects.filter(interaction=interaction).count() == 2


# --- the public chat endpoints ---------------------------------------------------------------------


@pytest.fixture
def widget(queue: Any) -> ChatWidget:
    agent = AgentFactory(state=AgentState.AVAILABLE)
    agent.queues.add(queue)
    return ChatWidget.objects.create(
        name="Sito", queue=queue, allowed_origins=["https://www.example.it"], max_upload_bytes=1024,
        allowed_upload_types=["image/png"], created_at=timezone.now(),
    )  # fmt: skip


def test_the_widget_script_and_the_frame_policy(client: Client, widget: ChatWidget) -> None:
    script = client.get("/contact-center/chat/widget.js")
    assert script.status_code == 200
    assert script["Content-Type"] == "application/javascript; charset=utf-8"
    assert b"attachShadow" in script.content
    frame = client.get(f"/contact-center/chat/{widget.public_key}/frame/?lang=it")
    assert frame.status_code == 200
    assert frame["Content-Security-Policy"] == "frame-ancestors 'self' https://www.example.it"
    assert "X-Frame-Options" not in frame
    assert "<label>Nome" in frame.content.decode() or "Your name" in frame.content.decode()
    assert client.get("/contact-center/chat/w_nope/frame/").status_code == 404


def test_start_over_http_needs_an_allowed_origin(client: Client, widget: ChatWidget) -> None:
    form = {"name": "Mario", "email": "mario@example.it", "consent": True, "message": "Ciao"}
    url = f"/contact-center/chat/{widget.public_key}/start/"
    refused = client.post(url, form, content_type="application/json", HTTP_ORIGIN="https://evil.example.com")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "chat_origin_refused")
    assert ChatSession.objects.count() == 0
    bad = client.post(
        url, {**form, "consent": False}, content_type="application/json", HTTP_ORIGIN="http://testserver"
    )
    assert bad.status_code == 422 and "consent" in bad.json()["error"]["fields"]
    started = client.post(url, form, content_type="application/json", HTTP_ORIGIN="http://testserver")
    assert started.status_code == 201
    body = started.json()
    assert body["offline"] is False
    session = ChatSession.objects.get()
    assert body["session"] == str(session.public_id)
    assert chat.session_for_token(widget, body["token"]) == session


def test_upload_over_http_with_the_token_and_a_signed_link(client: Client, widget: ChatWidget) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    started = chat.chat_start(widget=widget, name="Mario", email="mario@example.it", consent=True)
    url = f"/contact-center/chat/{widget.public_key}/upload/"
    origin = {"HTTP_ORIGIN": "http://testserver"}
    no_token = client.post(url, {"file": SimpleUploadedFile("a.png", PNG)}, **origin)
    assert no_token.status_code == 401
    too_big = client.post(
        url,
        {"file": SimpleUploadedFile("a.png", PNG + b"\x00" * 1024)},
        HTTP_X_CHAT_TOKEN=started.token,
        **origin,
    )
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "chat_file_too_large")
    wrong_type = client.post(
        url,
        {"file": SimpleUploadedFile("a.png", b"%PDF-1.4\n...")},
        HTTP_X_CHAT_TOKEN=started.token,
        **origin,
    )
    assert wrong_type.status_code == 422
    assert InteractionMessage.objects.exclude(attachments=[]).count() == 0
    sent = client.post(
        url, {"file": SimpleUploadedFile("a.png", PNG)}, HTTP_X_CHAT_TOKEN=started.token, **origin
    )
    assert sent.status_code == 201
    link = sent.json()["message"]["attachments"][0]["url"]
    download = client.get(link)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PNG
    assert download["Content-Type"] == "image/png"
    assert download["X-Content-Type-Options"] == "nosniff"
    unsigned = client.get(link.split("?", 1)[0])
    assert unsigned.status_code == 403
    tampered = client.get(link.replace("/0/?", "/1/?"))
    assert tampered.status_code == 403
    assert Interaction.objects.count() == 1


def test_a_file_without_a_link_is_for_the_agent_holding_the_chat_and_supervisors(
    client: Client, widget: ChatWidget
) -> None:
    agent_user = user_with_roles("agent")
    agent = AgentFactory(user=agent_user, state=AgentState.AVAILABLE)
    started = chat.chat_start(widget=widget, name="Mario", email="mario@example.it", consent=True)
    interaction_connect(interaction=started.session.interaction, agent=agent)
    session = ChatSession.objects.select_related("widget", "interaction").get()
    message = chat.chat_visitor_upload(session=session, filename="a.png", content=PNG)
    url = f"/contact-center/chat/files/{message.public_id}/0/"
    client.force_login(user_with_roles("agent"))  # another agent
    assert client.get(url).status_code == 403
    client.force_login(agent_user)
    assert client.get(url).status_code == 200
    client.force_login(user_with_roles("supervisor"))
    assert client.get(url).status_code == 200
