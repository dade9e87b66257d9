"""Outbound replies and notifications: headers, threading, idempotency, the retry sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import override_settings

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.shared.models import AuditLog
from fedele.support.attachments import IncomingFile
from fedele.support.models import Mailbox, Ticket, TicketMessage, TicketWatcher
from fedele.support.services import email_outbound
from fedele.support.services.email_inbound import process_inbound
from fedele.support.services.tickets import message_add, ticket_create
from fedele.support.tests.factories import MailboxFactory, ticket_kwargs
from fedele.support.tests.mailserver import PDF, make_email, reply_to

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
SUPPORT = "support@fedele.example"


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _media(tmp_path: Path) -> Any:
    with override_settings(MEDIA_ROOT=tmp_path, FEDELE_PUBLIC_URL="https://help.fedele.example"):
        yield tmp_path


@pytest.fixture
def mailbox() -> Mailbox:
    mailbox: Mailbox = MailboxFactory(address=SUPPORT, from_name="Assistenza Fedele")
    return mailbox


@pytest.fixture
def agent() -> Any:
    return actor_for(user_with_roles("agent", first_name="Anna", last_name="Bianchi"))


def _email_ticket() -> Ticket:
    result = process_inbound(
        make_email(subject="Il modem non si connette", cc="anna@example.it"), recipients=[SUPPORT], via="lmtp"
    )
    return Ticket.objects.get(public_id=result.ticket_public_id)


def test_reply_is_emailed_with_threading_headers(
    mailbox: Mailbox, agent: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ticket = _email_ticket()
    with django_capture_on_commit_callbacks(execute=True):
        reply = message_add(
            actor=agent,
            ticket=ticket,
            kind="reply",
            body="Provi a riavviare il modem.",
            attachments=[IncomingFile(filename="guida.pdf", content=PDF)],
        )

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    reply.refresh_from_db()
    expected_id = f"<ticket-{ticket.public_id}.{reply.public_id}@help.fedele.example>"
    assert sent.subject == f"Re: Il modem non si connette [{ticket.number}]"
    assert sent.from_email == f"Assistenza Fedele <{SUPPORT}>"
    assert sent.to == ["mario.rossi@example.it"]
    assert sent.cc == ["anna@example.it"]
    headers = sent.message()
    assert headers["Message-ID"] == expected_id
    assert headers["In-Reply-To"] == "<first.1@example.it>"
    assert headers["References"] == "<first.1@example.it>"
    assert headers["Auto-Submitted"] == "no"
    assert headers["X-Fedele-Ticket"] == ticket.number
    assert "Provi a riavviare il modem." in sent.body
    assert sent.alternatives[0][1] == "text/html"  # type: ignore[attr-defined]
    assert "<p>Provi a riavviare il modem.</p>" in str(sent.alternatives[0][0])  # type: ignore[attr-defined]
    assert [(name, content) for name, content, _type in sent.attachments] == [("guida.pdf", PDF)]  # type: ignore[misc]
    assert (reply.email_message_id, reply.sent_at) == (expected_id, NOW)
    assert (reply.email_in_reply_to, reply.email_to, reply.email_cc) == (
        "<first.1@example.it>",
        "mario.rossi@example.it",
        "anna@example.it",
    )
    assert AuditLog.objects.filter(action="support.reply_emailed").count() == 1

    email_outbound.deliver_reply(reply.pk)  # again: already sent
    assert len(mail.outbox) == 1
    assert AuditLog.objects.filter(action="support.reply_emailed").count() == 1


def test_the_customer_answer_comes_back_to_the_ticket_and_the_chain_grows(
    mailbox: Mailbox, agent: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ticket = _email_ticket()
    with django_capture_on_commit_callbacks(execute=True):
        message_add(actor=agent, ticket=ticket, kind="reply", body="Provi a riavviare.")
    answer = reply_to(mail.outbox[0], message_id="<second.2@example.it>", body="Fatto, niente.")
    result = process_inbound(answer, recipients=[SUPPORT], via="lmtp")
    assert (result.outcome, result.ticket_public_id) == ("appended", str(ticket.public_id))
    with django_capture_on_commit_callbacks(execute=True):
        message_add(actor=agent, ticket=ticket, kind="reply", body="Mando un tecnico.")
    second = mail.outbox[1].message()
    first_id = mail.outbox[0].message()["Message-ID"]
    assert second["In-Reply-To"] == "<second.2@example.it>"
    assert second["References"] == f"<first.1@example.it> {first_id} <second.2@example.it>"
    assert second["Subject"] == f"Re: Il modem non si connette [{ticket.number}]"
    assert Ticket.objects.count() == 1


def test_notes_and_chat_replies_are_not_emailed(
    mailbox: Mailbox, agent: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ticket = _email_ticket()
    with django_capture_on_commit_callbacks(execute=True):
        note = message_add(actor=agent, ticket=ticket, kind="note", body="Cliente VIP")
    email_outbound.deliver_reply(note.pk)
    chat = ticket_create(actor=None, **ticket_kwargs(channel="chat"))
    with django_capture_on_commit_callbacks(execute=True):
        chat_reply = message_add(actor=agent, ticket=chat, kind="reply", body="Ciao!")
    email_outbound.deliver_reply(chat_reply.pk)
    email_outbound.deliver_reply(999_999)
    assert mail.outbox == []


def test_without_a_mailbox_replies_come_from_the_default_address(
    agent: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ticket = ticket_create(actor=None, **ticket_kwargs(subject="Re: R: Fattura"))
    with (
        django_capture_on_commit_callbacks(execute=True),
        override_settings(DEFAULT_FROM_EMAIL="fedele <noreply@fedele.local>"),
    ):
        message_add(actor=agent, ticket=ticket, kind="reply", body="Ecco.")
    sent = mail.outbox[0]
    assert sent.from_email == "fedele <noreply@fedele.local>"
    assert sent.subject == f"Re: Fattura [{ticket.number}]"
    assert "In-Reply-To" not in sent.message()


def test_a_failed_send_is_retried_by_the_sweep(
    mailbox: Mailbox, agent: Any, django_capture_on_commit_callbacks: Any, _frozen: Any
) -> None:
    ticket = _email_ticket()
    broken = override_settings(EMAIL_BACKEND="fedele.support.tests.test_email_outbound.BrokenBackend")
    with broken, django_capture_on_commit_callbacks(execute=True):
        message_add(actor=agent, ticket=ticket, kind="reply", body="Ecco la soluzione.")  # send fails
    with broken, pytest.raises(ConnectionRefusedError):
        email_outbound.deliver_reply(TicketMessage.objects.get(kind="reply").pk)
    reply = TicketMessage.objects.get(kind="reply")
    assert reply.sent_at is None
    assert reply.email_message_id.startswith(f"<ticket-{ticket.public_id}.")
    assert email_outbound.deliver_pending() == 0  # not yet: younger than two minutes
    _frozen.shift(timedelta(minutes=3))
    assert email_outbound.deliver_pending() == 1
    reply.refresh_from_db()
    assert reply.sent_at is not None
    assert mail.outbox[0].message()["Message-ID"] == reply.email_message_id  # the same id, kept
    assert email_outbound.deliver_pending() == 0
    assert len(mail.outbox) == 1


class BrokenBackend:
    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def send_messages(self, messages: object) -> int:
        raise ConnectionRefusedError("smtp down")


def test_send_ticket_email_is_marked_automatic_and_threaded(mailbox: Mailbox) -> None:
    ticket = _email_ticket()
    TicketWatcher.objects.all().delete()
    message_id = email_outbound.send_ticket_email(
        ticket=ticket,
        to=["mario.rossi@example.it", ""],
        subject="Come siamo andati?",
        body_text="Vota da 1 a 5.",
    )
    sent = mail.outbox[0]
    assert message_id.startswith(f"<ticket-{ticket.public_id}.n-")
    assert sent.subject == f"Come siamo andati? [{ticket.number}]"
    headers = sent.message()
    assert headers["Message-ID"] == message_id
    assert headers["Auto-Submitted"] == "auto-generated"
    assert headers["In-Reply-To"] == "<first.1@example.it>"
    # A customer answering the survey e-mail lands on the ticket, not on a new one.
    answer = make_email(subject="Re: Come siamo andati?", in_reply_to=message_id, message_id="<vote@x>")
    assert process_inbound(answer, recipients=[SUPPORT], via="lmtp").ticket_public_id == str(ticket.public_id)
    assert email_outbound.send_ticket_email(ticket=ticket, to=[], subject="x", body_text="y")
    assert len(mail.outbox) == 1
