"""The LMTP/SMTP receiver for real: aiosmtpd on 127.0.0.1, messages sent with smtplib."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.test import override_settings

from fedele.support.email.receiver import SupportController
from fedele.support.models import Attachment, InboundEmail, Mailbox, Ticket, TicketMessage
from fedele.support.tests.factories import MailboxFactory
from fedele.support.tests.mailserver import PDF, make_email, running_receiver

pytestmark = pytest.mark.django_db(transaction=True)

SUPPORT = "support@fedele.example"


@pytest.fixture(autouse=True)
def _media(tmp_path: Path) -> Iterator[None]:
    with override_settings(MEDIA_ROOT=tmp_path):
        yield


@pytest.fixture
def mailbox(settings: pytest.FixtureRequest) -> object:
    return MailboxFactory(address=SUPPORT, name="Assistenza", from_name="Assistenza Fedele")


@pytest.fixture
def lmtp(mailbox: object) -> Iterator[SupportController]:
    with running_receiver() as controller:
        yield controller


def lmtp_send(controller: SupportController, raw: bytes, *, to: list[str] | None = None) -> dict[str, object]:
    with smtplib.LMTP(controller.hostname, controller.port) as client:
        return client.sendmail("mario.rossi@example.it", to or [SUPPORT], raw)


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "support" / "attachments"
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_new_message_creates_a_ticket_with_stripped_body_and_attachment(lmtp: SupportController) -> None:
    before = set(stored_files())
    raw = make_email(
        subject="Il modem non si connette",
        body="Da ieri sera la luce DSL lampeggia.\n\nIl giorno lun 3 mar 2025 alle ore 10:00 "
        "Assistenza <support@fedele.example> ha scritto:\n> Vecchio testo citato\n",
        attachments=[("bolletta.pdf", PDF, "application/pdf")],
    )
    assert lmtp_send(lmtp, raw) == {}

    ticket = Ticket.objects.get()
    assert ticket.number.startswith("T-")
    assert ticket.requester_email == "mario.rossi@example.it"
    assert ticket.requester_name == "Mario Rossi"
    assert ticket.channel == "email"
    assert ticket.subject == "Il modem non si connette"
    assert ticket.mailbox is not None and ticket.mailbox.address == SUPPORT
    message = TicketMessage.objects.get()
    assert message.kind == "customer"
    assert message.body_text == "Da ieri sera la luce DSL lampeggia."
    assert message.email_message_id == "<first.1@example.it>"
    attachment = Attachment.objects.get()
    assert (attachment.filename, attachment.size, attachment.message_id) == (
        "bolletta.pdf",
        len(PDF),
        message.pk,
    )
    assert attachment.file.read() == PDF
    assert len(set(stored_files()) - before) == 1
    log = InboundEmail.objects.get()
    assert (log.outcome, log.ticket_id, log.received_via) == ("created", ticket.pk, "lmtp")
    assert mail.outbox == []


def test_reply_with_references_lands_on_the_same_ticket(lmtp: SupportController) -> None:
    lmtp_send(lmtp, make_email())
    ticket = Ticket.objects.get()
    reply = make_email(
        subject=f"Re: Il modem non si connette [{ticket.number}]",
        body="Ho riavviato, ancora niente.\n\nOn Mon, Mar 3, 2025 at 10:00 AM Support wrote:\n> old",
        message_id="<second.2@example.it>",
        in_reply_to="<first.1@example.it>",
        references="<first.1@example.it>",
    )
    lmtp_send(lmtp, reply)

    assert Ticket.objects.count() == 1
    ticket.refresh_from_db()
    assert ticket.message_count == 2
    assert list(TicketMessage.objects.values_list("body_text", flat=True)) == [
        "Da ieri sera la luce DSL lampeggia.",
        "Ho riavviato, ancora niente.",
    ]
    assert list(InboundEmail.objects.order_by("id").values_list("outcome", flat=True)) == [
        "created",
        "appended",
    ]


@pytest.mark.parametrize(
    "headers",
    [{"Auto-Submitted": "auto-replied"}, {"X-Autoreply": "yes"}, {"Precedence": "auto_reply"}],
    ids=["auto-submitted", "x-autoreply", "precedence"],
)
def test_out_of_office_creates_nothing_and_sends_nothing(
    lmtp: SupportController, headers: dict[str, str]
) -> None:
    raw = make_email(
        subject="Fuori sede: Il modem", body="Sono fuori ufficio fino a lunedì.", headers=headers
    )
    assert lmtp_send(lmtp, raw) == {}  # accepted (250) and dropped: refusing would make more robot mail

    assert Ticket.objects.count() == 0
    assert TicketMessage.objects.count() == 0
    assert mail.outbox == []
    assert list(InboundEmail.objects.values_list("outcome", flat=True)) == ["auto_reply"]


def test_bounce_with_null_sender_is_ignored(lmtp: SupportController) -> None:
    raw = make_email(sender="MAILER-DAEMON@mx.example.it", subject="Undelivered Mail Returned to Sender")
    with smtplib.LMTP(lmtp.hostname, lmtp.port) as client:
        assert client.sendmail("", [SUPPORT], raw) == {}
    assert Ticket.objects.count() == 0
    assert list(InboundEmail.objects.values_list("outcome", "detail")) == [
        ("bounce", "Ignored automatic message (null Return-Path).")
    ]


def test_thirty_megabyte_attachment_is_refused_by_the_server_with_552(lmtp: SupportController) -> None:
    before = set(stored_files())
    big = b"%PDF-1.4\n" + b"0" * (30 * 1024 * 1024)
    raw = make_email(attachments=[("scansione.pdf", big, "application/pdf")])
    assert lmtp.size_limit == 35 * 1024 * 1024

    with pytest.raises(smtplib.SMTPResponseException) as refused:
        lmtp_send(lmtp, raw)

    assert refused.value.smtp_code == 552
    assert b"5.3.4" in refused.value.smtp_error
    assert (Ticket.objects.count(), TicketMessage.objects.count(), Attachment.objects.count()) == (0, 0, 0)
    assert set(stored_files()) == before


def test_oversized_data_without_size_announcement_is_refused_after_data(mailbox: object) -> None:
    """A client that does not announce SIZE is stopped by the DATA limit, before any parsing."""
    with running_receiver(data_size_limit=1024 * 1024) as controller:
        raw = make_email(
            attachments=[("scansione.pdf", b"%PDF-1.4\n" + b"0" * (2 * 1024 * 1024), "application/pdf")]
        )
        with smtplib.LMTP(controller.hostname, controller.port) as client:
            client.ehlo_or_helo_if_needed()
            client.esmtp_features.pop("size", None)  # do not announce the size at MAIL FROM
            assert client.mail("mario.rossi@example.it")[0] == 250
            assert client.rcpt(SUPPORT)[0] == 250
            code, text = client.data(raw)
    assert code == 552
    assert text.startswith(b"5.3.4")
    assert (Ticket.objects.count(), InboundEmail.objects.count()) == (0, 0)


def test_attachment_over_the_mailbox_limit_is_refused_with_552(lmtp: SupportController) -> None:
    before = set(stored_files())
    # The server's own limit (35 MiB) lets this message through; the mailbox's does not.
    Mailbox.objects.filter(address=SUPPORT).update(max_attachment_bytes=1024 * 1024)
    raw = make_email(attachments=[("foto.pdf", b"%PDF-1.4\n" + b"1" * (2 * 1024 * 1024), "application/pdf")])

    with pytest.raises(smtplib.SMTPDataError) as refused:
        lmtp_send(lmtp, raw)

    assert refused.value.smtp_code == 552
    assert refused.value.smtp_error == b"5.3.4 Attachment foto.pdf is too large: 2.0 MB, at most 1.0 MB."
    assert (Ticket.objects.count(), TicketMessage.objects.count(), Attachment.objects.count()) == (0, 0, 0)
    assert set(stored_files()) == before
    added = len(b"Return-Path: <mario.rossi@example.it>\r\n")  # the receiver adds it, as delivery agents do
    assert list(InboundEmail.objects.values_list("outcome", "size")) == [("too_large", len(raw) + added)]
    assert mail.outbox == []  # the sending server bounces it; we do not write to the sender


def test_unknown_recipient_is_refused_with_550(lmtp: SupportController) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        lmtp_send(lmtp, make_email(to="nobody@fedele.example"), to=["nobody@fedele.example"])
    code, text = refused.value.recipients["nobody@fedele.example"]
    assert (code, text) == (550, b"5.1.1 No such support address here")
    assert (Ticket.objects.count(), InboundEmail.objects.count()) == (0, 0)


def test_plus_address_reaches_the_mailbox(lmtp: SupportController) -> None:
    lmtp_send(lmtp, make_email(to="support+fatture@fedele.example"), to=["Support+Fatture@fedele.example"])
    assert Ticket.objects.get().mailbox is not None


def test_same_message_id_delivered_twice_makes_one_message(lmtp: SupportController) -> None:
    raw = make_email()
    assert lmtp_send(lmtp, raw) == {}
    assert lmtp_send(lmtp, raw) == {}

    assert (Ticket.objects.count(), TicketMessage.objects.count()) == (1, 1)
    assert list(InboundEmail.objects.order_by("id").values_list("outcome", "message_id")) == [
        ("created", "<first.1@example.it>"),
        ("duplicate", ""),
    ]


def test_lmtp_answers_once_per_recipient(mailbox: object) -> None:
    MailboxFactory(address="fatture@fedele.example", max_attachment_bytes=1024)
    raw = make_email(
        to="support@fedele.example, fatture@fedele.example",
        attachments=[("bolletta.pdf", PDF + b"x" * 2048, "application/pdf")],
    )
    with running_receiver() as controller, smtplib.LMTP(controller.hostname, controller.port) as client:
        client.ehlo_or_helo_if_needed()
        client.mail("mario.rossi@example.it")
        client.rcpt(SUPPORT)
        client.rcpt("fatture@fedele.example")
        first = client.data(raw)
        second = client.getreply()
    assert first[0] == 250
    assert second[0] == 552
    assert Ticket.objects.count() == 1
    assert sorted(InboundEmail.objects.values_list("mailbox__address", "outcome")) == [
        ("fatture@fedele.example", "too_large"),
        (SUPPORT, "created"),
    ]


def test_smtp_mode_accepts_mail(mailbox: object) -> None:
    with (
        running_receiver(smtp=True) as controller,
        smtplib.SMTP(controller.hostname, controller.port) as client,
    ):
        assert client.sendmail("mario.rossi@example.it", [SUPPORT], make_email()) == {}
    assert InboundEmail.objects.get().received_via == "smtp"
    assert Ticket.objects.count() == 1


def test_storage_failure_half_way_writes_nothing_and_asks_to_retry(
    lmtp: SupportController, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.files.storage import FileSystemStorage

    def broken_save(*args: object, **kwargs: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(FileSystemStorage, "_save", broken_save)
    raw = make_email(attachments=[("bolletta.pdf", PDF, "application/pdf")])

    with pytest.raises(smtplib.SMTPDataError) as refused:
        lmtp_send(lmtp, raw)

    assert refused.value.smtp_code == 451
    assert (Ticket.objects.count(), TicketMessage.objects.count(), Attachment.objects.count()) == (0, 0, 0)
    assert InboundEmail.objects.count() == 0

    monkeypatch.undo()
    assert lmtp_send(lmtp, raw) == {}  # the sender's retry goes through
    assert (Ticket.objects.count(), Attachment.objects.count()) == (1, 1)
