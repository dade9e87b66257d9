"""Ticket services: create, messages, updates, status rules, history, events, follow-ups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import override_settings

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent
from fedele.support.attachments import IncomingFile
from fedele.support.models import Attachment, Ticket, TicketEvent, TicketMessage, TicketType
from fedele.support.services.tickets import message_add, ticket_create, ticket_update
from fedele.support.tests.factories import CategoryFactory, ticket_kwargs

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _media(tmp_path: Path) -> Any:
    with override_settings(MEDIA_ROOT=tmp_path):
        yield tmp_path


def _agent(role: str = "agent") -> Any:
    return actor_for(user_with_roles(role, first_name="Anna", last_name="Bianchi"))


def _events(ticket: Ticket) -> list[tuple[str, str, str, str]]:
    return list(
        TicketEvent.objects.filter(ticket=ticket)
        .order_by("id")
        .values_list("kind", "field", "old_value", "new_value")
    )


def _outbox(event_type: str) -> int:
    return OutboxEvent.objects.filter(event_type=event_type).count()


def test_create_numbers_tickets_and_writes_history_audit_and_events() -> None:
    first = ticket_create(actor=None, **ticket_kwargs())
    second = ticket_create(actor=None, **ticket_kwargs(subject="Fattura errata"))
    assert (first.number, second.number) == ("T-000001", "T-000002")
    assert (first.status.code, first.status_kind, first.priority, first.language) == (
        "new",
        "new",
        "normal",
        "it",
    )
    assert first.ticket_type is not None and first.ticket_type.code == "question"
    assert first.message_count == 1
    assert first.last_customer_message_at == NOW
    message = TicketMessage.objects.get(ticket=first)
    assert (message.kind, message.body_text, message.author_email, message.author_name) == (
        "customer",
        "Da ieri sera la luce DSL lampeggia.",
        "mario.rossi@example.it",
        "Mario Rossi",
    )
    assert message.body_html == "<p>Da ieri sera la luce DSL lampeggia.</p>"
    assert first.search_text == (
        "t-000001 il modem non si connette mario rossi mario.rossi@example.it "
        "da ieri sera la luce dsl lampeggia."
    )
    assert _events(first) == [("created", "", "", "")]
    assert AuditLog.objects.filter(action="support.ticket_created").count() == 2
    assert _outbox("support.ticket_created") == 2
    payload = OutboxEvent.objects.filter(event_type="support.ticket_created").order_by("id").first()
    assert payload is not None
    assert payload.payload["number"] == "T-000001"
    assert payload.payload["customer_id"] is None
    # No customer: no timeline entry.
    assert _outbox("customers.TimelineAppendRequested") == 0


def test_create_finds_customer_by_requester_email_and_appends_timeline() -> None:
    customer = CustomerFactory(email="cliente@example.it", language="en")
    ticket = ticket_create(actor=None, **ticket_kwargs(requester_email="Cliente@Example.it"))
    assert ticket.customer_id == customer.pk
    assert ticket.requester_email == "cliente@example.it"
    assert ticket.language == "en"
    timeline = OutboxEvent.objects.get(event_type="customers.TimelineAppendRequested")
    assert timeline.payload["customer_public_id"] == str(customer.public_id)
    assert timeline.payload["kind"] == "ticket_created"
    assert timeline.payload["title"] == "Ticket T-000001 opened"
    assert timeline.payload["link"].endswith(f"{ticket.public_id}/")


def test_type_default_priority_and_explicit_fields() -> None:
    category = CategoryFactory(code="connectivity")
    ticket = ticket_create(
        actor=_agent(),
        **ticket_kwargs(ticket_type="incident", category="connectivity", tags=["VIP", "fibra ottica", "vip"]),
    )
    assert ticket.priority == "high"
    assert ticket.category_id == category.pk
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["fibra-ottica", "vip"]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"ticket_type": "nope"}, "unknown_ticket_type"),
        ({"category": "nope"}, "unknown_category"),
        ({"team_public_id": "00000000-0000-0000-0000-000000000001"}, "unknown_team"),
        ({"assignee_public_id": "not-a-uuid"}, "unknown_assignee"),
        ({"subject": "   "}, "subject_required"),
        ({"priority": "critical"}, "unknown_priority"),
        ({"channel": "fax"}, "unknown_channel"),
        ({"customer_public_id": "00000000-0000-0000-0000-000000000001"}, "unknown_customer"),
    ],
)
def test_create_refuses_bad_input_and_writes_nothing(overrides: dict[str, Any], code: str) -> None:
    with pytest.raises(ValidationFailed) as error:
        ticket_create(actor=None, **ticket_kwargs(**overrides))
    assert error.value.code == code
    assert Ticket.objects.count() == 0
    assert TicketMessage.objects.count() == 0
    assert OutboxEvent.objects.count() == 0
    assert AuditLog.objects.filter(action__startswith="support.").count() == 0


def test_create_is_idempotent_on_external_id() -> None:
    first = ticket_create(actor=None, **ticket_kwargs(external_source="api", external_id="abc-1"))
    again = ticket_create(actor=None, **ticket_kwargs(external_source="api", external_id="abc-1"))
    assert first.pk == again.pk
    assert Ticket.objects.count() == 1
    assert _outbox("support.ticket_created") == 1


def test_custom_fields_are_validated_against_the_type() -> None:
    TicketType.objects.filter(code="incident").update(
        custom_fields=[
            {"key": "serial", "type": "text", "required": True},
            {"key": "count", "type": "number"},
            {"key": "since", "type": "date"},
            {"key": "router", "type": "choice", "choices": ["fritz", "tim"]},
            {"key": "urgent", "type": "boolean"},
        ]
    )
    with pytest.raises(ValidationFailed) as error:
        ticket_create(
            actor=None,
            **ticket_kwargs(
                ticket_type="incident",
                custom_fields={"count": "x", "since": "2026-02-30", "router": "zyxel", "other": 1},
            ),
        )
    assert error.value.code == "invalid_custom_fields"
    assert error.value.fields == {
        "custom_fields.count": ["Must be a number."],
        "custom_fields.since": ["Must be a date (YYYY-MM-DD)."],
        "custom_fields.router": ["Must be one of: fritz, tim."],
        "custom_fields.other": ["Unknown field for this ticket type."],
        "custom_fields.serial": ["Required."],
    }
    assert Ticket.objects.count() == 0
    ticket = ticket_create(
        actor=None,
        **ticket_kwargs(
            ticket_type="incident",
            custom_fields={
                "serial": " SN1 ",
                "count": "2",
                "since": "2024-02-29",
                "router": "tim",
                "urgent": "yes",
            },
        ),
    )
    assert ticket.custom_fields == {
        "serial": "SN1",
        "count": 2,
        "since": "2024-02-29",
        "router": "tim",
        "urgent": True,
    }
    # E-mail has no form: required fields cannot be asked for.
    by_mail = ticket_create(actor=None, **ticket_kwargs(ticket_type="incident", channel="email"))
    assert by_mail.custom_fields == {}


def test_agent_reply_opens_assigns_and_sets_first_response(_frozen: Any) -> None:
    agent = _agent()
    ticket = ticket_create(actor=None, **ticket_kwargs())
    _frozen.shift(timedelta(minutes=30))
    reply = message_add(actor=agent, ticket=str(ticket.public_id), kind="reply", body="Proviamo a riavviare.")
    ticket.refresh_from_db()
    assert (reply.kind, reply.channel, reply.author_user_id) == ("reply", "email", agent.user_id)
    assert ticket.status.code == "open"
    assert ticket.assignee_id == agent.user_id
    assert ticket.first_responded_at == NOW + timedelta(minutes=30)
    assert ticket.last_agent_message_at == NOW + timedelta(minutes=30)
    assert ticket.message_count == 2
    assert "proviamo a riavviare." in ticket.search_text
    assert _events(ticket)[1:] == [
        ("replied", "", "", ""),
        ("assigned", "assignee", "", "Anna Bianchi"),
        ("status_changed", "status", "new", "open"),
    ]
    # A second reply keeps the first response time.
    _frozen.shift(timedelta(minutes=30))
    message_add(actor=agent, ticket=ticket, kind="reply", body="Novità?")
    ticket.refresh_from_db()
    assert ticket.first_responded_at == NOW + timedelta(minutes=30)
    assert ticket.message_count == 3


def test_reply_with_new_status_and_note_stays_internal() -> None:
    agent = _agent()
    ticket = ticket_create(actor=None, **ticket_kwargs())
    note = message_add(actor=agent, ticket=ticket, kind="note", body="Controllare la centrale.")
    ticket.refresh_from_db()
    assert (note.channel, ticket.status.code, ticket.first_responded_at, ticket.assignee_id) == (
        "internal",
        "new",
        None,
        None,
    )
    message_add(
        actor=agent, ticket=ticket, kind="reply", body="Attendiamo i dati.", new_status="pending_customer"
    )
    ticket.refresh_from_db()
    assert (ticket.status.code, ticket.status_kind) == ("pending_customer", "pending")


def test_customer_message_reopens_solved_and_pending() -> None:
    agent = _agent()
    ticket = ticket_create(actor=None, **ticket_kwargs())
    ticket_update(actor=agent, ticket=ticket, changes={"status": "solved"})
    ticket.refresh_from_db()
    assert ticket.solved_at == NOW
    assert _outbox("support.ticket_solved") == 1
    message_add(actor=None, ticket=ticket, kind="customer", body="Non funziona ancora.")
    ticket.refresh_from_db()
    assert (ticket.status.code, ticket.reopened_count, ticket.solved_at) == ("open", 1, None)
    ticket_update(actor=agent, ticket=ticket, changes={"status": "pending_customer"})
    message_add(actor=None, ticket=ticket, kind="customer", body="Ecco i dati.")
    ticket.refresh_from_db()
    assert (ticket.status.code, ticket.reopened_count) == ("open", 1)


def test_solved_publishes_event_and_timeline_with_exact_payload() -> None:
    customer = CustomerFactory(email="cliente@example.it")
    agent = _agent()
    ticket = ticket_create(actor=None, **ticket_kwargs(requester_email="cliente@example.it"))
    ticket_update(actor=agent, ticket=ticket, changes={"assignee": str(agent.public_id), "status": "solved"})
    solved = OutboxEvent.objects.get(event_type="support.ticket_solved")
    assert solved.payload == {
        "ticket_id": str(ticket.public_id),
        "number": "T-000001",
        "customer_id": str(customer.public_id),
        "assignee_id": str(agent.public_id),
        "team_id": None,
        "category": "",
        "solved_at": NOW.isoformat(),
    }
    titles = sorted(
        e.payload["title"] for e in OutboxEvent.objects.filter(event_type="customers.TimelineAppendRequested")
    )
    assert titles == ["Ticket T-000001 opened", "Ticket T-000001 solved"]


def test_closed_is_final_and_customer_message_opens_follow_up() -> None:
    agent = _agent()
    ticket = ticket_create(actor=None, **ticket_kwargs(priority="high"))
    ticket_update(actor=agent, ticket=ticket, changes={"status": "closed"})
    ticket.refresh_from_db()
    assert (ticket.closed_at, ticket.solved_at) == (NOW, NOW)
    with pytest.raises(ValidationFailed) as error:
        ticket_update(actor=agent, ticket=ticket, changes={"status": "open"})
    assert error.value.code == "ticket_closed"
    with pytest.raises(ValidationFailed) as error:
        message_add(actor=agent, ticket=ticket, kind="reply", body="Ciao")
    assert error.value.code == "ticket_closed"
    assert TicketMessage.objects.filter(ticket=ticket).count() == 1
    message = message_add(actor=None, ticket=ticket, kind="customer", body="Di nuovo guasto.")
    follow_up = message.ticket
    assert follow_up.pk != ticket.pk
    assert (follow_up.number, follow_up.parent_id, follow_up.subject, follow_up.priority) == (
        "T-000002",
        ticket.pk,
        ticket.subject,
        "high",
    )
    assert follow_up.requester_email == "mario.rossi@example.it"
    assert message.body_text == "Di nuovo guasto."
    assert [e[0] for e in _events(ticket)][-1] == "follow_up"
    assert [e[0] for e in _events(follow_up)] == ["created", "follow_up_of"]


def test_message_validation_changes_nothing() -> None:
    agent = _agent()
    ticket = ticket_create(actor=None, **ticket_kwargs())
    before = (TicketMessage.objects.count(), TicketEvent.objects.count(), OutboxEvent.objects.count())
    for kwargs, code in [
        ({"kind": "reply", "body": "  "}, "body_required"),
        ({"kind": "shout", "body": "x"}, "unknown_message_kind"),
        ({"kind": "reply", "body": "x", "new_status": "nope"}, "unknown_status"),
    ]:
        with pytest.raises(ValidationFailed) as error:
            message_add(actor=agent, ticket=ticket, **kwargs)
        assert error.value.code == code
    with pytest.raises(NotFound):
        message_add(actor=agent, ticket="00000000-0000-0000-0000-000000000009", kind="reply", body="x")
    assert (TicketMessage.objects.count(), TicketEvent.objects.count(), OutboxEvent.objects.count()) == before
    ticket.refresh_from_db()
    assert ticket.message_count == 1


def test_html_is_sanitised_and_text_derived() -> None:
    ticket = ticket_create(
        actor=None,
        **ticket_kwargs(body="", body_html='<p onclick="x()">Ciao <script>alert(1)</script><b>mondo</b></p>'),
    )
    message = TicketMessage.objects.get(ticket=ticket)
    assert message.body_html == "<p>Ciao <b>mondo</b></p>"
    assert message.body_text == "Ciao mondo"


def test_portal_customer_rules() -> None:
    portal = user_with_roles("portal_customer", email="cliente@example.it")
    other = user_with_roles("portal_customer", email="altro@example.it")
    portal_actor, other_actor = actor_for(portal), actor_for(other)
    ticket = ticket_create(actor=portal_actor, **ticket_kwargs(requester_email=""))
    assert (ticket.requester_user_id, ticket.requester_email) == (portal.pk, "cliente@example.it")
    with pytest.raises(PermissionDenied):
        message_add(actor=portal_actor, ticket=ticket, kind="note", body="x")
    with pytest.raises(NotFound):
        message_add(actor=other_actor, ticket=ticket, kind="customer", body="x")
    with pytest.raises(PermissionDenied):
        ticket_update(actor=portal_actor, ticket=ticket, changes={"priority": "urgent"})
    with pytest.raises(PermissionDenied):
        ticket_create(
            actor=portal_actor, **ticket_kwargs(team_public_id="00000000-0000-0000-0000-000000000001")
        )
    message = message_add(actor=portal_actor, ticket=ticket, kind="customer", body="Altre info")
    assert (message.author_user_id, message.author_email) == (portal.pk, "cliente@example.it")
    assert TicketMessage.objects.filter(ticket=ticket).count() == 2


def test_agent_without_work_permission_is_refused() -> None:
    technician = actor_for(user_with_roles("technician"))
    with pytest.raises(PermissionDenied):
        ticket_create(actor=technician, **ticket_kwargs())
    assert Ticket.objects.count() == 0


def test_update_writes_one_history_row_per_field_and_one_audit_row() -> None:
    agent = _agent()
    CategoryFactory(code="billing")
    ticket = ticket_create(actor=None, **ticket_kwargs(tags=["a"]))
    audits = AuditLog.objects.count()
    ticket_update(
        actor=agent,
        ticket=ticket,
        changes={
            "subject": "Modem guasto",
            "priority": "urgent",
            "category": "billing",
            "add_tags": ["b"],
            "remove_tags": ["a"],
            "language": "en",
        },
    )
    ticket.refresh_from_db()
    assert (ticket.subject, ticket.priority, ticket.language) == ("Modem guasto", "urgent", "en")
    assert ticket.search_text.startswith("t-000001 modem guasto")
    assert sorted(_events(ticket)[1:]) == sorted(
        [
            ("field_changed", "subject", "Il modem non si connette", "Modem guasto"),
            ("field_changed", "priority", "normal", "urgent"),
            ("field_changed", "category", "", "billing"),
            ("tagged", "tags", "a", "b"),
            ("field_changed", "language", "it", "en"),
        ]
    )
    assert AuditLog.objects.count() == audits + 1
    # No change: nothing written.
    ticket_update(actor=agent, ticket=ticket, changes={"priority": "urgent"})
    assert AuditLog.objects.count() == audits + 1
    with pytest.raises(ValidationFailed) as error:
        ticket_update(actor=agent, ticket=ticket, changes={"priority": "low", "colour": "red"})
    assert error.value.code == "unknown_field"
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"


def test_attachments_are_stored_and_refused_ones_leave_nothing(_media: Path) -> None:
    ticket = ticket_create(
        actor=None,
        **ticket_kwargs(attachments=[IncomingFile("../../foto.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)]),
    )
    attachment = Attachment.objects.get(ticket=ticket)
    assert (attachment.filename, attachment.content_type, attachment.size) == ("foto.png", "image/png", 72)
    assert attachment.file.name.startswith("support/attachments/2026/03/")
    files_before = sorted(p for p in _media.rglob("*") if p.is_file())
    with pytest.raises(ValidationFailed) as error:
        message_add(
            actor=None,
            ticket=ticket,
            kind="customer",
            body="ecco",
            attachments=[
                IncomingFile("ok.txt", b"ciao"),
                IncomingFile("fattura.pdf", b"MZ\x90\x00" + b"\x00" * 60),
            ],
        )
    assert error.value.code == "attachment_type_refused"
    assert Attachment.objects.count() == 1
    assert TicketMessage.objects.filter(ticket=ticket).count() == 1
    assert sorted(p for p in _media.rglob("*") if p.is_file()) == files_before


def test_realtime_pushes_after_commit(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        ticket_create(actor=None, **ticket_kwargs())
    # outbox dispatch (x1 event, no customer so no timeline) + two pushes
    assert len(callbacks) == 3
