"""Web chat: the pre-chat form (live chat or offline ticket), tokens, visitor messages and their size
limit, uploads sniffed by type, agent replies through chat_message_send, typing, the end of the chat
with its transcript by e-mail, widget settings."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core import mail
from django.core.files.storage import default_storage

from fedele.contact_center.models import (
    AgentState,
    ChatSession,
    ChatSessionState,
    ChatWidget,
    Interaction,
    InteractionMessage,
    InteractionState,
    Outcome,
)
from fedele.contact_center.selectors.messaging import (
    file_signature_valid,
    origin_allowed,
    origin_of,
    transcript,
)
from fedele.contact_center.services import chat, messaging
from fedele.contact_center.services.interactions import interaction_connect
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory, SkillFactory
from fedele.shared.errors import (
    Conflict,
    NotAuthenticated,
    PayloadTooLarge,
    PermissionDenied,
    ValidationFailed,
)
from fedele.shared.models import AuditLog
from fedele.support.facade import ticket_summary
from fedele.support.tests.factories import default_calendar

pytestmark = pytest.mark.django_db

T0 = datetime.fromisoformat("2026-03-29T01:30:00+01:00")  # the night Italy moves to summer time
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


@pytest.fixture(autouse=True)
def _no_router(settings: Any) -> None:
    # Offers are the routing area's business; here the chat is connected by hand.
    settings.CONTACT_CENTER_ROUTE_ON_COMMIT = False


@pytest.fixture
def widget() -> ChatWidget:
    queue = QueueFactory(code="web")
    QueueFactory(code="billing")
    SkillFactory(code="billing")
    return ChatWidget.objects.create(
        name="Sito",
        queue=queue,
        allowed_origins=["https://www.example.it"],
        topics=[
            {"code": "invoices", "label_it": "Fatture", "label_en": "Invoices", "queue_code": "billing",
             "skills": {"billing": 2}},
            {"code": "other", "label_it": "Altro", "label_en": "Other", "queue_code": "", "skills": {}},
        ],
        max_message_chars=50,
        max_upload_bytes=1024,
        created_at=T0,
    )  # fmt: skip


def _agent_in(queue_code: str, state: str = AgentState.AVAILABLE) -> Any:
    agent = AgentFactory(state=state, display_name="Anna Rossi")
    agent.queues.add(QueueFactory(code=queue_code))
    return agent


def _tickets() -> int:
    return AuditLog.objects.filter(action="support.ticket_created").count()


def _start(widget: ChatWidget, **overrides: Any) -> chat.ChatStart:
    values: dict[str, Any] = {
        "name": "  Mario   Bianchi ",
        "email": "Mario@Example.it",
        "consent": True,
        "topic": "invoices",
        "message": "Ciao, la fattura?",
        "language": "it",
        "origin": "https://www.example.it",
        "at": T0,
    }
    values.update(overrides)
    return chat.chat_start(widget=widget, **values)


class GroupProbe:
    """Joins a channel-layer group and collects what is sent to it."""

    def __init__(self, group: str) -> None:
        self.layer = get_channel_layer()
        self.group = group
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(group, self.channel)

    def drain(self) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []

        async def collect() -> None:
            import asyncio

            while True:
                try:
                    received.append(await asyncio.wait_for(self.layer.receive(self.channel), 0.05))
                except TimeoutError:
                    return

        async_to_sync(collect)()
        return received


# --- opening hours and the pre-chat form --------------------------------------------------------------


def test_start_with_an_agent_signed_in_opens_a_queued_chat_for_the_topics_queue_and_skills(widget):
    _agent_in("billing")
    started = _start(widget)
    assert started.offline is False and started.ticket_number == ""
    session = started.session
    assert session is not None
    assert (session.visitor_name, session.visitor_email, session.topic, session.consent, session.state) == (
        "Mario Bianchi",
        "mario@example.it",
        "invoices",
        True,
        ChatSessionState.ACTIVE,
    )
    interaction = Interaction.objects.get(pk=session.interaction_id)
    assert (interaction.channel, interaction.direction, interaction.state, interaction.queue.code) == (
        "chat",
        "inbound",
        InteractionState.QUEUED,
        "billing",
    )
    assert interaction.from_address == "mario@example.it"
    assert interaction.subject == "Fatture"
    assert interaction.required_skills == {"billing": 2}
    assert [(m.sender, m.body) for m in interaction.messages.all()] == [("customer", "Ciao, la fattura?")]
    assert chat.session_for_token(widget, started.token) == session
    assert (
        AuditLog.objects.filter(
            action="contact_center.chat_started", object_id=str(session.public_id)
        ).count()
        == 1
    )


def test_without_an_agent_the_form_opens_one_ticket_however_often_it_is_sent(widget):
    _agent_in("billing", state=AgentState.OFFLINE)
    assert chat.chat_is_open(widget, topic_code="invoices", at=T0) is False
    first = _start(widget, client_reference="form-1")
    again = _start(widget, client_reference="form-1")
    assert (first.offline, first.session, first.token) == (True, None, "")
    assert first.ticket_number == again.ticket_number != ""
    (created,) = AuditLog.objects.filter(action="support.ticket_created")
    ticket = ticket_summary(created.object_id)
    assert (ticket.number, ticket.channel, ticket.subject, ticket.requester_email) == (
        first.ticket_number,
        "chat",
        "Chat message from Mario Bianchi (Fatture)",
        "mario@example.it",
    )
    assert ChatSession.objects.count() == 0 and Interaction.objects.count() == 0


def test_offline_needs_a_message_and_an_email(widget):
    with pytest.raises(ValidationFailed) as refused:
        _start(widget, message="", email="")
    assert set(refused.value.fields) == {"message", "email"}
    assert _tickets() == 0


def test_an_inactive_widget_is_closed_and_the_agent_state_decides_otherwise(widget):
    _agent_in("web", state=AgentState.BREAK)
    assert chat.chat_is_open(widget, topic_code="other", at=T0) is True  # on break but signed in
    widget.offline_when_no_agent = False
    assert chat.chat_is_open(widget, topic_code="invoices", at=T0) is True  # nobody in billing: open anyway
    widget.active = False
    assert chat.chat_is_open(widget, topic_code="other", at=T0) is False


def test_business_hours_follow_the_calendar_across_the_dst_change(widget):
    _agent_in("billing")
    widget.calendar_code = default_calendar().name  # Monday to Friday 9-18, Europe/Rome, Italian holidays
    utc = datetime.fromisoformat
    # Friday 27 March 2026 (UTC+1): 07:30 UTC is 08:30 in Rome, 08:30 UTC is 09:30.
    assert chat.chat_is_open(widget, topic_code="invoices", at=utc("2026-03-27T07:30:00+00:00")) is False
    assert chat.chat_is_open(widget, topic_code="invoices", at=utc("2026-03-27T08:30:00+00:00")) is True
    assert chat.chat_is_open(widget, topic_code="invoices", at=T0) is False  # Sunday night
    # Monday 30 March 2026 (UTC+2 after the change): 06:30 UTC is 08:30, 07:30 UTC is 09:30.
    assert chat.chat_is_open(widget, topic_code="invoices", at=utc("2026-03-30T06:30:00+00:00")) is False
    assert chat.chat_is_open(widget, topic_code="invoices", at=utc("2026-03-30T07:30:00+00:00")) is True
    # Easter Monday 6 April 2026 is a public holiday.
    assert chat.chat_is_open(widget, topic_code="invoices", at=utc("2026-04-06T09:00:00+00:00")) is False
    widget.calendar_code = "no-such-calendar"
    assert chat.chat_is_open(widget, topic_code="invoices", at=utc("2026-03-30T07:30:00+00:00")) is False


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"name": " "}, {"name"}),
        ({"name": "x" * 121}, {"name"}),
        ({"email": "not-an-address"}, {"email"}),
        ({"consent": False}, {"consent"}),
        ({"topic": "unknown"}, {"topic"}),
        ({"message": "x" * 51}, {"message"}),
        ({"name": "", "consent": False, "topic": ""}, {"name", "consent", "topic"}),
    ],
)
def test_a_bad_form_is_refused_and_nothing_is_written(widget, overrides, fields):
    _agent_in("billing")
    _agent_in("web")
    with pytest.raises(ValidationFailed) as refused:
        _start(widget, **overrides)
    assert set(refused.value.fields) == fields
    assert (ChatSession.objects.count(), Interaction.objects.count(), _tickets()) == (0, 0, 0)


def test_tokens_are_bound_to_the_session_nonce_and_the_widget(widget):
    _agent_in("billing")
    started = _start(widget)
    other = ChatWidget.objects.create(name="Altro", queue=widget.queue, created_at=T0)
    with pytest.raises(NotAuthenticated):
        chat.session_for_token(other, started.token)
    with pytest.raises(NotAuthenticated):
        chat.session_for_token(widget, started.token[:-2] + "xx")
    with pytest.raises(NotAuthenticated):
        chat.session_for_token(widget, "")
    ChatSession.objects.filter(pk=started.session.pk).update(token_nonce="rotated")
    with pytest.raises(NotAuthenticated):
        chat.session_for_token(widget, started.token)


def test_origins(widget):
    assert origin_of("https://WWW.Example.it:443/path?q=1") == "https://www.example.it"
    assert origin_of("http://localhost:8000/") == "http://localhost:8000"
    assert origin_of("javascript:alert(1)") == ""
    assert origin_allowed(widget, "https://www.example.it") is True
    assert origin_allowed(widget, "https://evil.example.com") is False
    assert origin_allowed(widget, "http://testserver") is True  # fedele's own host (the frame)
    assert origin_allowed(widget, "http://127.0.0.1:8765") is True  # any port, as the host validator
    assert origin_allowed(widget, "https://www.example.it:8443") is False  # a widget origin is exact
    assert origin_allowed(widget, "http://www.example.it") is False
    assert origin_allowed(widget, "") is False


# --- the conversation -----------------------------------------------------------------------------


@pytest.fixture
def live(widget):
    agent = _agent_in("billing")
    started = _start(widget, message="")
    interaction = interaction_connect(interaction=started.session.interaction, agent=agent, at=T0)
    session = ChatSession.objects.select_related("widget", "interaction").get(pk=started.session.pk)
    return session, interaction, agent


def test_visitor_messages_reach_the_agent_group_and_a_resend_is_stored_once(
    live, django_capture_on_commit_callbacks
):
    session, interaction, agent = live
    probe = GroupProbe(messaging.agent_group(agent.pk))
    visitor = GroupProbe(messaging.visitor_group(session.public_id))
    with django_capture_on_commit_callbacks(execute=True):
        first = chat.chat_visitor_message(session=session, body="  Buongiorno  ", client_id="c1", at=T0)
    again = chat.chat_visitor_message(session=session, body="Buongiorno", client_id="c1", at=T0)
    assert first == again
    assert InteractionMessage.objects.filter(interaction=interaction).count() == 1
    assert first.body == "Buongiorno"
    pushed = probe.drain()
    assert [p["type"] for p in pushed] == ["cc.chat.message"]
    data = pushed[0]["data"]
    assert data["interaction"] == str(interaction.public_id)
    assert (data["message"]["sender"], data["message"]["body"], data["message"]["author"]) == (
        "customer",
        "Buongiorno",
        "Mario Bianchi",
    )
    assert data["message"]["client_id"] == "c1"
    assert [p["type"] for p in visitor.drain()] == ["cc.visitor.message"]


@pytest.mark.parametrize("body", ["", "   ", "x" * 51])
def test_an_empty_or_over_size_visitor_message_is_refused_and_nothing_is_stored(live, body):
    session, interaction, _agent = live
    with pytest.raises(ValidationFailed) as refused:
        chat.chat_visitor_message(session=session, body=body)
    assert refused.value.code in ("chat_message_empty", "chat_message_too_long")
    assert InteractionMessage.objects.filter(interaction=interaction).count() == 0


def test_a_message_of_exactly_the_limit_is_accepted(live):
    session, _interaction, _agent = live
    assert chat.chat_visitor_message(session=session, body="é" * 50).body == "é" * 50


def test_the_agent_replies_and_the_visitor_hears_it(live, django_capture_on_commit_callbacks):
    session, interaction, agent = live
    visitor = GroupProbe(messaging.visitor_group(session.public_id))
    desk = GroupProbe(messaging.agent_group(agent.pk))
    with django_capture_on_commit_callbacks(execute=True):
        reply = messaging.chat_message_send(interaction=interaction, agent=agent, body="<b>Salve</b>", at=T0)
    assert (reply.sender, reply.agent_id, reply.body) == ("agent", agent.pk, "<b>Salve</b>")
    pushed = visitor.drain()
    assert [p["type"] for p in pushed] == ["cc.visitor.message", "cc.visitor.typing"]
    assert pushed[0]["data"]["message"]["body"] == "<b>Salve</b>"  # text: the widget renders it as text
    assert pushed[0]["data"]["message"]["author"] == "Anna Rossi"
    assert pushed[1]["data"] == {"typing": False}
    assert [p["type"] for p in desk.drain()] == ["cc.chat.message"]


def test_chat_message_send_refuses_another_agent_an_over_size_body_and_an_ended_chat(live):
    session, interaction, agent = live
    intruder = _agent_in("billing")
    with pytest.raises(PermissionDenied):
        messaging.chat_message_send(interaction=interaction, agent=intruder, body="hi")
    with pytest.raises(ValidationFailed):
        messaging.chat_message_send(interaction=interaction, agent=agent, body="x" * 51)
    assert InteractionMessage.objects.filter(interaction=interaction).count() == 0
    chat.chat_end(session=session, at=T0)
    interaction.refresh_from_db()
    with pytest.raises((Conflict, PermissionDenied)):
        messaging.chat_message_send(interaction=interaction, agent=agent, body="still there?")
    assert InteractionMessage.objects.filter(interaction=interaction).count() == 0


def test_typing_goes_both_ways_without_being_stored(live):
    session, interaction, agent = live
    desk = GroupProbe(messaging.agent_group(agent.pk))
    visitor = GroupProbe(messaging.visitor_group(session.public_id))
    chat.chat_visitor_typing(session=session, typing=True)
    messaging.chat_agent_typing(interaction=interaction, agent=agent, typing=True)
    assert [(p["type"], p["data"]["typing"]) for p in desk.drain()] == [("cc.chat.typing", True)]
    assert [(p["type"], p["data"]["typing"]) for p in visitor.drain()] == [("cc.visitor.typing", True)]
    assert InteractionMessage.objects.count() == 0


def test_upload_is_sniffed_stored_and_linked_with_a_signed_url(live):
    session, interaction, _agent = live
    message = chat.chat_visitor_upload(session=session, filename="../../scontrino.png", content=PNG, at=T0)
    (item,) = message.attachments
    assert (item["name"], item["content_type"], item["size"]) == ("scontrino.png", "image/png", len(PNG))
    assert default_storage.open(item["path"]).read() == PNG
    (entry,) = transcript(interaction)
    url = entry["attachments"][0]["url"]
    signature = url.split("?s=", 1)[1]
    assert file_signature_valid(str(message.public_id), 0, signature) is True
    assert file_signature_valid(str(message.public_id), 1, signature) is False
    default_storage.delete(item["path"])


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", ValidationFailed),
        (b"x" * 1025, PayloadTooLarge),
        (b"MZ\x90\x00" + b"\x00" * 100, ValidationFailed),  # an executable named like a picture
        (b"%PDF-1.4\n" + b"\x00" * 10, ValidationFailed),  # PDF, not allowed by this widget
    ],
)
def test_a_refused_upload_stores_nothing(live, content, error):
    session, interaction, _agent = live
    session.widget.allowed_upload_types = ["image/png", "text/plain"]
    with pytest.raises(error):
        chat.chat_visitor_upload(session=session, filename="photo.png", content=content)
    assert InteractionMessage.objects.filter(interaction=interaction).count() == 0
    _dirs, files = (
        default_storage.listdir(f"{chat.UPLOAD_DIRECTORY}/{session.public_id}")
        if default_storage.exists(f"{chat.UPLOAD_DIRECTORY}/{session.public_id}")
        else ([], [])
    )
    assert files == []


def test_plain_text_is_recognised_without_magic(live):
    session, _interaction, _agent = live
    message = chat.chat_visitor_upload(session=session, filename="note.txt", content="perché\n".encode())
    assert message.attachments[0]["content_type"] == "text/plain"
    default_storage.delete(message.attachments[0]["path"])


def test_the_visitor_ends_the_chat_and_gets_the_transcript(live, django_capture_on_commit_callbacks):
    session, interaction, agent = live
    chat.chat_visitor_message(session=session, body="Grazie", at=T0)
    messaging.chat_message_send(interaction=interaction, agent=agent, body="Prego!", at=T0)
    desk = GroupProbe(messaging.agent_group(agent.pk))
    with django_capture_on_commit_callbacks(execute=True):
        ended = chat.chat_end(session=session, transcript_to="Mario@Example.it", at=T0)
    assert (ended.state, ended.transcript_sent_to) == (ChatSessionState.ENDED, "mario@example.it")
    interaction.refresh_from_db()
    assert (interaction.state, interaction.outcome) == (InteractionState.WRAP_UP, Outcome.HANDLED)
    assert "cc.chat.ended" in [p["type"] for p in desk.drain()]
    (email,) = mail.outbox
    assert email.to == ["mario@example.it"]
    assert interaction.number in email.subject
    assert "Grazie" in email.body and "Prego!" in email.body and "Anna Rossi" in email.body
    # Ending again changes nothing and sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        chat.chat_end(session=session, transcript_to="mario@example.it", at=T0)
    assert len(mail.outbox) == 1
    with pytest.raises(Conflict):
        chat.chat_visitor_message(session=ChatSession.objects.get(pk=session.pk), body="hello?")


def test_a_chat_left_before_any_agent_is_abandoned(widget):
    _agent_in("billing")
    started = _start(widget)
    chat.chat_end(session=started.session, at=T0)
    interaction = Interaction.objects.get(pk=started.session.interaction_id)
    assert (interaction.state, interaction.outcome) == (InteractionState.ENDED, Outcome.ABANDONED)


def test_the_transcript_goes_only_to_the_pre_chat_address(live, django_capture_on_commit_callbacks):
    """Any other address would make the widget a relay for mail whose content the visitor writes."""
    session, _interaction, _agent = live
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationFailed) as refused:
        chat.chat_end(session=session, transcript_to="someone.else@example.com", at=T0)
    assert refused.value.code == "chat_transcript_address_not_prechat"
    session.refresh_from_db()
    assert (session.state, session.ended_at) == (ChatSessionState.ACTIVE, None)
    assert session.transcript_sent_to == ""
    assert mail.outbox == []


def test_without_a_pre_chat_address_no_transcript_is_sent(widget, django_capture_on_commit_callbacks):
    widget.require_email = False
    widget.save(update_fields=["require_email"])
    _agent_in("billing")
    started = _start(widget, email="")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationFailed):
        chat.chat_end(session=started.session, transcript_to="mario@example.it", at=T0)
    with django_capture_on_commit_callbacks(execute=True):
        ended = chat.chat_end(session=started.session, at=T0)
    assert (ended.state, ended.transcript_sent_to) == (ChatSessionState.ENDED, "")
    assert mail.outbox == []


def test_a_bad_transcript_address_is_refused_and_the_chat_goes_on(live):
    session, _interaction, _agent = live
    with pytest.raises(ValidationFailed):
        chat.chat_end(session=session, transcript_to="nope")
    session.refresh_from_db()
    assert session.state == ChatSessionState.ACTIVE


# --- widget settings --------------------------------------------------------------------------------


def _form(**overrides: Any) -> dict[str, Any]:
    values = {
        "name": "Negozio",
        "queue": "web",
        "allowed_origins": "https://shop.example.it\nhttp://localhost:3000",
        "topics": json.dumps(
            [{"code": "invoices", "label_it": "Fatture", "queue_code": "billing", "skills": {"billing": 3}}]
        ),
        "primary_colour": "#AA0000",
        "max_message_chars": "500",
        "max_upload_bytes": "2048",
        "allowed_upload_types": "image/png, application/pdf",
        "require_email": "on",
        "active": "on",
    }
    values.update(overrides)
    return values


def test_widget_save_creates_and_normalises(widget):
    saved = chat.widget_save(widget=None, values=_form())
    assert saved.allowed_origins == ["http://localhost:3000", "https://shop.example.it"]
    assert saved.topics == [
        {
            "code": "invoices",
            "label_it": "Fatture",
            "label_en": "invoices",
            "queue_code": "billing",
            "skills": {"billing": 3},
        }
    ]
    assert (saved.primary_colour, saved.max_message_chars, saved.max_upload_bytes) == ("#aa0000", 500, 2048)
    assert saved.allowed_upload_types == ["image/png", "application/pdf"]
    assert (saved.require_email, saved.offline_when_no_agent, saved.active) == (True, False, True)
    assert saved.public_key.startswith("w_") and len(saved.public_key) > 20


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"queue": "nope"}, "queue"),
        ({"allowed_origins": "https://shop.example.it/path"}, "allowed_origins"),
        ({"allowed_origins": "shop.example.it"}, "allowed_origins"),
        ({"topics": "[{"}, "topics"),
        ({"topics": '[{"code": "a", "skills": {"billing": 6}}]'}, "topics"),
        ({"topics": '[{"code": "a", "queue_code": "ghost"}]'}, "topics"),
        ({"topics": '[{"code": "a"}, {"code": "a"}]'}, "topics"),
        ({"primary_colour": "red"}, "primary_colour"),
        ({"max_message_chars": "0"}, "max_message_chars"),
        ({"max_message_chars": "-5"}, "max_message_chars"),
        ({"max_message_chars": "99999999999"}, "max_message_chars"),
        ({"max_upload_bytes": "abc"}, "max_upload_bytes"),
        ({"allowed_upload_types": "png"}, "allowed_upload_types"),
    ],
)
def test_widget_save_refuses_bad_settings_and_writes_nothing(widget, overrides, field):
    before = ChatWidget.objects.count()
    with pytest.raises(ValidationFailed) as refused:
        chat.widget_save(widget=None, values=_form(**overrides))
    assert field in refused.value.fields
    assert ChatWidget.objects.count() == before


def test_the_agent_ending_the_chat_ends_the_visitors_session(live, django_capture_on_commit_callbacks):
    from fedele.contact_center.services.interactions import interaction_end

    session, interaction, _agent = live
    visitor = GroupProbe(messaging.visitor_group(session.public_id))
    with django_capture_on_commit_callbacks(execute=True):
        interaction_end(interaction=interaction, outcome=Outcome.HANDLED, at=T0)
    session.refresh_from_db()
    assert session.state == ChatSessionState.ENDED
    assert "cc.visitor.ended" in [p["type"] for p in visitor.drain()]
    with pytest.raises(Conflict):
        chat.chat_visitor_message(session=session, body="ciao?")


# --- settings pages -----------------------------------------------------------------------------------


def test_the_settings_pages(client, widget):
    from fedele.accounts.tests.factories import user_with_roles

    client.force_login(user_with_roles("agent"))
    assert client.get("/contact-center/settings/messaging/").status_code == 403
    client.force_login(user_with_roles("admin"))
    page = client.get("/contact-center/settings/messaging/")
    assert page.status_code == 200
    assert f'data-widget="{widget.public_key}"' in page.content.decode()
    form = {
        "name": "Negozio",
        "queue": "web",
        "allowed_origins": "https://shop.example.it",
        "topics": "",
        "primary_colour": "#112233",
        "max_message_chars": "400",
        "max_upload_bytes": "4096",
        "allowed_upload_types": "image/png",
        "active": "on",
    }
    refused = client.post(
        "/contact-center/settings/messaging/widgets/new/", {**form, "primary_colour": "blue"}
    )
    assert refused.status_code == 422
    assert ChatWidget.objects.count() == 1
    created = client.post("/contact-center/settings/messaging/widgets/new/", form)
    saved = ChatWidget.objects.get(name="Negozio")
    assert created.status_code == 302
    assert created["Location"] == f"/contact-center/settings/messaging/widgets/{saved.public_key}/"
    edit = client.get(created["Location"])
    assert edit.status_code == 200 and "https://shop.example.it" in edit.content.decode()
    assert (saved.max_message_chars, saved.require_email, saved.active) == (400, False, True)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_message_resent_from_six_tabs_at_once_is_stored_once(widget):
    from fedele.shared.testing import in_threads

    _agent_in("billing")
    started = _start(widget, message="")
    ids: list[str] = []

    def send(index: int) -> None:
        session = ChatSession.objects.select_related("widget", "interaction").get(pk=started.session.pk)
        ids.append(str(chat.chat_visitor_message(session=session, body="Ciao", client_id="same").public_id))

    assert in_threads(send, 6) == []
    assert len(set(ids)) == 1 and len(ids) == 6
    assert InteractionMessage.objects.filter(interaction_id=started.session.interaction_id).count() == 1
