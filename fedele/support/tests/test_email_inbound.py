"""Parsing, threading, loop detection and process_inbound (the service every inbound path uses)."""

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
from fedele.customers.tests.factories import CustomerFactory
from fedele.support.email import parsing
from fedele.support.email.threading import (
    base_address,
    find_mailbox,
    make_message_id,
    subject_number,
    ticket_id_in_message_id,
)
from fedele.support.models import Attachment, InboundEmail, Mailbox, Ticket, TicketMessage, TicketWatcher
from fedele.support.services.email_inbound import process_inbound
from fedele.support.services.tickets import message_add, ticket_update
from fedele.support.tests.factories import MailboxFactory
from fedele.support.tests.mailserver import PDF, PNG, make_email

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
    mailbox: Mailbox = MailboxFactory(address=SUPPORT, from_name="Assistenza Fedele", language="it")
    return mailbox


def receive(raw: bytes, *, via: str = "lmtp", recipients: tuple[str, ...] = (SUPPORT,)) -> Any:
    return process_inbound(raw, recipients=list(recipients), via=via)


# --- parsing ---------------------------------------------------------------------------------------


def test_parse_decodes_headers_bodies_and_files() -> None:
    raw = make_email(
        sender="=?utf-8?q?Nicol=C3=B2_Ferr=C3=A0?= <Nicolo.Ferra@Example.IT>",
        to="Assistenza <support+fatture@fedele.example>",
        cc="anna@example.it",
        subject="=?iso-8859-1?q?Perch=E9_la_fattura=3F?=",
        body="Ecco la foto.\n\nIl giorno lun 2 mar 2026 alle ore 10:00 Assistenza ha scritto:\n> prima",
        html='<p>Ecco la foto.</p><img src="cid:foto1"><script>alert(1)</script>',
        attachments=[("fattura.pdf", PDF, "application/pdf")],
        references="<a@x.it>  <b@x.it>",
        in_reply_to="<b@x.it>",
    )
    parsed = parsing.parse(raw)
    assert parsed.sender_email == "nicolo.ferra@example.it"
    assert parsed.sender_name == "Nicolò Ferrà"
    assert parsed.subject == "Perché la fattura?"
    assert parsed.to == ("support+fatture@fedele.example",)
    assert parsed.cc == ("anna@example.it",)
    assert parsed.body_text == "Ecco la foto."
    assert parsed.full_text.startswith("Ecco la foto.\n\nIl giorno lun")
    assert parsed.body_html == '<p>Ecco la foto.</p><img src="cid:foto1">'
    assert parsed.references == ("<a@x.it>", "<b@x.it>")
    assert parsed.thread_ids == ("<b@x.it>", "<a@x.it>")
    assert [(f.filename, f.content, f.declared_type) for f in parsed.attachments] == [
        ("fattura.pdf", PDF, "application/pdf")
    ]
    assert parsed.automatic == ""


def test_parse_falls_back_on_wrong_or_unknown_charsets() -> None:
    latin = (
        b"From: a@example.it\r\nTo: support@fedele.example\r\nSubject: x\r\nMessage-ID: <c@x>\r\n"
        b"Content-Type: text/plain; charset=x-unknown\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"Perch\xe9 costa \x80 10?\r\n"
    )
    assert parsing.parse(latin).body_text == "Perché costa € 10?"  # windows-1252 after UTF-8 fails
    declared_wrong = latin.replace(b"x-unknown", b"utf-8")
    assert parsing.parse(declared_wrong).body_text == "Perché costa € 10?"
    no_charset = latin.replace(b"; charset=x-unknown", b"").replace(b"\x80 ", b"")
    assert parsing.parse(no_charset).body_text == "Perché costa 10?"


def test_parse_html_only_message_and_inline_image() -> None:
    raw = (
        b"From: a@example.it\r\nTo: support@fedele.example\r\nSubject: Foto\r\nMessage-ID: <h@x>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b'<p>Guardate <b>qui</b></p><img src="cid:img1">\r\n'
        b"--B\r\nContent-Type: image/png\r\nContent-ID: <img1>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + __import__("base64").b64encode(PNG)
        + b"\r\n--B--\r\n"
    )
    parsed = parsing.parse(raw)
    assert parsed.body_text == "Guardate qui"
    assert [(f.filename, f.content_id, f.content) for f in parsed.attachments] == [
        ("attachment-1.png", "img1", PNG)
    ]


def test_parse_never_raises_on_garbage() -> None:
    parsed = parsing.parse(b"\x00\xff garbage without headers")
    assert parsed.sender_email == ""
    assert parsed.message_id.startswith("<sha256.")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Auto-Submitted": "auto-replied"}, "auto_reply"),
        ({"Auto-Submitted": "auto-generated"}, "auto_reply"),
        ({"Auto-Submitted": "no"}, ""),
        ({"Precedence": "bulk"}, "auto_reply"),
        ({"Precedence": "junk"}, "auto_reply"),
        ({"Precedence": "list"}, "auto_reply"),
        ({"X-Auto-Response-Suppress": "All"}, "auto_reply"),
        ({"X-Autoreply": "yes"}, "auto_reply"),
        ({"X-Autorespond": "yes"}, "auto_reply"),
        ({"Return-Path": "<>"}, "bounce"),
        ({}, ""),
    ],
)
def test_automatic_mail_is_recognised(headers: dict[str, str], expected: str) -> None:
    assert parsing.parse(make_email(headers=headers)).automatic == expected


def test_mailer_daemon_and_delivery_reports_are_bounces() -> None:
    assert parsing.parse(make_email(sender="MAILER-DAEMON@mx.example.it")).automatic == "bounce"
    report = (
        b"From: postmaster@mx.example.it\r\nTo: support@fedele.example\r\nSubject: Delivery failure\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=R\r\n\r\n"
        b"--R\r\nContent-Type: text/plain\r\n\r\nNot delivered\r\n"
        b"--R\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n--R--\r\n"
    )
    assert parsing.parse(report).automatic == "bounce"


def test_message_ids_and_subject_numbers() -> None:
    message_id = make_message_id(
        "7f0c2b55-1f9e-4a57-9d2a-0c1d2e3f4a5b", "11111111-2222-3333-4444-555555555555"
    )
    assert message_id == (
        "<ticket-7f0c2b55-1f9e-4a57-9d2a-0c1d2e3f4a5b.11111111-2222-3333-4444-555555555555@help.fedele.example>"
    )
    assert ticket_id_in_message_id(message_id) == "7f0c2b55-1f9e-4a57-9d2a-0c1d2e3f4a5b"
    assert ticket_id_in_message_id("<random@example.it>") is None
    assert subject_number("Re: Modem [T-000123]") == "T-000123"
    assert subject_number("Re: Modem [ #t-000123 ]") == "T-000123"
    assert subject_number("Re: Modem T-000123") is None
    assert parsing.clean_subject("R: RE: Fwd: Modem guasto") == "Modem guasto"
    assert base_address("Support+Fatture@Fedele.Example") == "support@fedele.example"


def test_mailbox_routing_is_case_insensitive_with_plus_addressing(mailbox: Mailbox) -> None:
    assert find_mailbox(["SUPPORT+x@fedele.example"]) == mailbox
    assert find_mailbox(["other@fedele.example", "Support@Fedele.Example"]) == mailbox
    assert find_mailbox(["other@fedele.example"]) is None
    Mailbox.objects.filter(pk=mailbox.pk).update(active=False)
    assert find_mailbox([SUPPORT]) is None


# --- process_inbound -------------------------------------------------------------------------------


def test_new_message_uses_the_mailbox_routing(mailbox: Mailbox) -> None:
    from fedele.accounts.models import Team

    team = Team.objects.create(name="Fatturazione")
    Mailbox.objects.filter(pk=mailbox.pk).update(
        team=team, default_priority="high", language="en", ticket_type_id=_type_id("incident")
    )
    result = receive(make_email(subject="R: Bolletta doppia", cc="anna@example.it, support@fedele.example"))

    ticket = Ticket.objects.get()
    assert (result.outcome, result.ticket_public_id, result.reply_code) == (
        "created",
        str(ticket.public_id),
        250,
    )
    assert result.smtp_reply() == f"250 2.0.0 Created {ticket.number}."
    assert (ticket.subject, ticket.priority, ticket.language, ticket.team_id) == (
        "Bolletta doppia",
        "high",
        "en",
        team.pk,
    )
    assert ticket.ticket_type is not None and ticket.ticket_type.code == "incident"
    assert list(TicketWatcher.objects.values_list("kind", "email")) == [("cc", "anna@example.it")]
    message = TicketMessage.objects.get()
    assert (message.email_to, message.email_cc) == (SUPPORT, "anna@example.it, support@fedele.example")


def _type_id(code: str) -> int:
    from fedele.support.models import TicketType

    return int(TicketType.objects.get(code=code).pk)


def test_reply_to_header_names_the_requester(mailbox: Mailbox) -> None:
    receive(
        make_email(sender="Modulo web <noreply@sito.example>", headers={"Reply-To": "Luca <luca@example.it>"})
    )
    assert Ticket.objects.get().requester_email == "luca@example.it"


def test_unknown_recipient_is_rejected_and_logged() -> None:
    result = receive(make_email(to="nobody@fedele.example"), recipients=("nobody@fedele.example",))
    assert (result.outcome, result.reply_code, result.ticket_public_id) == ("rejected", 550, None)
    assert result.smtp_reply() == "550 5.1.1 Mailbox unknown: no such support address."
    assert Ticket.objects.count() == 0
    assert list(InboundEmail.objects.values_list("mailbox", "outcome")) == [(None, "rejected")]


def test_subject_number_continues_the_ticket_only_for_the_requester_and_known_people(
    mailbox: Mailbox,
) -> None:
    receive(make_email())
    ticket = Ticket.objects.get()
    subject = f"Ancora io [{ticket.number}]"

    stranger = receive(make_email(sender="intruso@example.org", subject=subject, message_id="<s1@x>"))
    assert stranger.outcome == "created"  # a number typed by someone else does not reach the ticket

    requester = receive(make_email(subject=subject, message_id="<s2@x>"))
    assert (requester.outcome, requester.ticket_public_id) == ("appended", str(ticket.public_id))

    TicketWatcher.objects.create(ticket=ticket, kind="cc", email="anna@example.it", created_at=NOW)
    colleague = receive(make_email(sender="anna@example.it", subject=subject, message_id="<s3@x>"))
    assert colleague.ticket_public_id == str(ticket.public_id)

    customer = CustomerFactory(email="mario.rossi@example.it")
    from fedele.customers.models import Contact

    Contact.objects.create(
        customer=customer, email="luisa@example.it", first_name="Luisa", created_at=NOW, updated_at=NOW
    )
    Ticket.objects.filter(pk=ticket.pk).update(customer=customer)
    contact = receive(make_email(sender="luisa@example.it", subject=subject, message_id="<s4@x>"))
    assert contact.ticket_public_id == str(ticket.public_id)

    ticket.refresh_from_db()
    assert ticket.message_count == 4
    assert Ticket.objects.count() == 2


def test_reply_to_our_email_threads_by_our_message_id(
    mailbox: Mailbox, django_capture_on_commit_callbacks: Any
) -> None:
    receive(make_email())
    ticket = Ticket.objects.get()
    agent = actor_for(user_with_roles("agent", first_name="Anna", last_name="Bianchi"))
    with django_capture_on_commit_callbacks(execute=True):
        message_add(actor=agent, ticket=ticket, kind="reply", body="Provi a riavviare il modem.")
    sent = mail.outbox[0].message()
    # The customer's program dropped References and changed the subject: our Message-ID is enough.
    result = receive(
        make_email(subject="modem", in_reply_to=sent["Message-ID"], message_id="<r1@example.it>")
    )
    assert (result.outcome, result.ticket_public_id) == ("appended", str(ticket.public_id))
    # An id we generated for a message that is not stored (a notification) still names the ticket.
    other = make_message_id(ticket.public_id, "n-abc")
    result = receive(make_email(subject="x", references=other, message_id="<r2@example.it>"))
    assert result.ticket_public_id == str(ticket.public_id)


def test_message_to_a_merged_ticket_goes_to_the_surviving_one(mailbox: Mailbox) -> None:
    receive(make_email())
    receive(make_email(subject="Altro", message_id="<other@x>", sender="luca@example.it"))
    merged, surviving = Ticket.objects.order_by("id")
    Ticket.objects.filter(pk=merged.pk).update(merged_into=surviving)
    result = receive(make_email(in_reply_to="<first.1@example.it>", message_id="<late@x>"))
    assert (result.outcome, result.ticket_public_id) == ("appended", str(surviving.public_id))


def test_reply_on_a_closed_ticket_opens_a_follow_up(mailbox: Mailbox) -> None:
    receive(make_email())
    ticket = Ticket.objects.get()
    admin = actor_for(user_with_roles("admin"))
    ticket_update(actor=admin, ticket=ticket, changes={"status": "closed"})
    result = receive(make_email(in_reply_to="<first.1@example.it>", message_id="<after@x>", body="Di nuovo!"))
    follow_up = Ticket.objects.exclude(pk=ticket.pk).get()
    assert (result.outcome, result.ticket_public_id) == ("created", str(follow_up.public_id))
    assert follow_up.parent_id == ticket.pk
    assert InboundEmail.objects.get(message_id="<after@x>").detail == f"Follow-up {follow_up.number}."


def test_redelivery_is_a_duplicate_and_creates_nothing(mailbox: Mailbox) -> None:
    raw = make_email()
    first = receive(raw)
    second = receive(raw, via="imap")
    assert second.outcome == "duplicate"
    assert second.ticket_public_id == first.ticket_public_id
    assert second.reply_code == 250
    assert (Ticket.objects.count(), TicketMessage.objects.count()) == (1, 1)
    # Another mailbox receiving the same message is a separate delivery.
    MailboxFactory(address="vendite@fedele.example")
    third = receive(raw, recipients=("vendite@fedele.example",))
    assert third.outcome == "created"


def test_our_own_mail_coming_back_is_a_loop(mailbox: Mailbox) -> None:
    looped = receive(make_email(headers={"X-Fedele-Ticket": "T-000001"}))
    ours = receive(make_email(message_id=make_message_id("7f0c2b55-1f9e-4a57-9d2a-0c1d2e3f4a5b", "x")))
    from_us = receive(make_email(sender=f"Assistenza <{SUPPORT}>", message_id="<self@x>"))
    assert [r.outcome for r in (looped, ours, from_us)] == ["loop", "loop", "loop"]
    assert all(r.reply_code == 250 for r in (looped, ours, from_us))
    assert Ticket.objects.count() == 0
    assert mail.outbox == []


def test_more_than_ten_messages_in_ten_minutes_from_one_sender_is_a_loop(
    mailbox: Mailbox, _frozen: Any
) -> None:
    outcomes = [receive(make_email(message_id=f"<m{n}@x>", subject=f"Msg {n}")).outcome for n in range(11)]
    assert outcomes == ["created"] * 10 + ["loop"]
    assert InboundEmail.objects.get(message_id="<m10@x>").detail == (
        "More than 10 messages from mario.rossi@example.it in 10 minutes."
    )
    _frozen.shift(timedelta(minutes=10, seconds=1))
    assert receive(make_email(message_id="<later@x>")).outcome == "created"
    assert Ticket.objects.count() == 11


def test_message_over_the_total_limit_is_refused_and_only_logged(mailbox: Mailbox, tmp_path: Path) -> None:
    raw = make_email(attachments=[("scan.pdf", PDF + b"0" * 5000, "application/pdf")])
    with override_settings(FEDELE_SUPPORT_MAX_EMAIL_BYTES=4096):
        result = receive(raw)
    assert (result.outcome, result.reply_code) == ("too_large", 552)
    assert result.smtp_reply().startswith("552 5.3.4 Message too large: 0.0 MB, at most 0.0 MB.")
    assert (Ticket.objects.count(), TicketMessage.objects.count(), Attachment.objects.count()) == (0, 0, 0)
    assert list(InboundEmail.objects.values_list("outcome", "size")) == [("too_large", len(raw))]
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_imap_message_with_a_large_attachment_gets_a_refusal_notice(
    mailbox: Mailbox, django_capture_on_commit_callbacks: Any
) -> None:
    # English: the Italian catalogue is compiled at integration (see /tmp/i18n/email.json).
    Mailbox.objects.filter(pk=mailbox.pk).update(max_attachment_bytes=1024 * 1024, language="en")
    raw = make_email(
        subject="Foto", attachments=[("foto.pdf", PDF + b"1" * (2 * 1024 * 1024), "application/pdf")]
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = receive(raw, via="imap")
    assert (result.outcome, result.reply_code) == ("too_large", 552)
    assert Ticket.objects.count() == 0
    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    assert notice.to == ["mario.rossi@example.it"]
    assert notice.subject == "Message not delivered: Foto"
    assert notice.extra_headers["Auto-Submitted"] == "auto-replied"
    assert notice.extra_headers["In-Reply-To"] == "<first.1@example.it>"
    assert notice.from_email == f"Assistenza Fedele <{SUPPORT}>"
    assert "The attachment foto.pdf is 2.0 MB; this address accepts attachments up to 1.0 MB." in notice.body


def test_refusal_notices_are_not_sent_to_robots_or_too_often(
    mailbox: Mailbox, django_capture_on_commit_callbacks: Any
) -> None:
    Mailbox.objects.filter(pk=mailbox.pk).update(max_attachment_bytes=10)
    big = [("a.pdf", PDF, "application/pdf")]
    for n in range(6):
        with django_capture_on_commit_callbacks(execute=True):
            receive(make_email(message_id=f"<big{n}@x>", attachments=big), via="imap")
    with django_capture_on_commit_callbacks(execute=True):
        receive(
            make_email(sender="MAILER-DAEMON@mx.example.it", message_id="<d@x>", attachments=big), via="imap"
        )
    assert len(mail.outbox) == 3  # at most 3 per sender per hour; none to the mailer daemon


def test_a_refused_message_sent_again_after_the_limit_was_raised_is_accepted(mailbox: Mailbox) -> None:
    Mailbox.objects.filter(pk=mailbox.pk).update(max_attachment_bytes=10)
    raw = make_email(attachments=[("a.pdf", PDF, "application/pdf")])
    assert receive(raw).outcome == "too_large"
    Mailbox.objects.filter(pk=mailbox.pk).update(max_attachment_bytes=1024)
    assert receive(raw).outcome == "created"
    assert list(InboundEmail.objects.values_list("outcome", flat=True)) == ["created"]


def test_programs_are_left_out_and_named_in_the_message(mailbox: Mailbox) -> None:
    Mailbox.objects.filter(pk=mailbox.pk).update(language="en")
    raw = make_email(
        body="Vi mando i file.",
        attachments=[
            ("setup.exe", b"MZ\x90\x00" + b"\x00" * 100, "application/octet-stream"),
            ("f.pdf", PDF, "application/pdf"),
        ],
    )
    result = receive(raw)
    assert result.outcome == "created"
    message = TicketMessage.objects.get()
    assert (
        message.body_text == "Vi mando i file.\n\n[Attachments removed (file type not accepted): setup.exe]"
    )
    assert list(Attachment.objects.values_list("filename", flat=True)) == ["f.pdf"]
    assert InboundEmail.objects.get().detail.endswith("Removed attachments: setup.exe.")


def test_failure_half_way_writes_nothing(mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.files.storage import FileSystemStorage

    def broken(*args: object, **kwargs: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(FileSystemStorage, "_save", broken)
    result = receive(make_email(attachments=[("f.pdf", PDF, "application/pdf")]))
    assert (result.outcome, result.reply_code, result.ticket_public_id) == ("failed", 451, None)
    assert (Ticket.objects.count(), TicketMessage.objects.count(), Attachment.objects.count()) == (0, 0, 0)
    assert InboundEmail.objects.count() == 0
    assert TicketWatcher.objects.count() == 0


def test_empty_message_still_becomes_a_visible_message(mailbox: Mailbox) -> None:
    Mailbox.objects.filter(pk=mailbox.pk).update(language="en")
    receive(make_email(body="", subject=""))
    ticket = Ticket.objects.get()
    assert ticket.subject == "(no subject)"
    assert TicketMessage.objects.get().body_text == "-"
