"""IMAP polling against a real, private Dovecot (skipped when Dovecot is not installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import override_settings
from imapclient import IMAPClient

from fedele.support.email.imap import check_connection, poll_all, poll_mailbox
from fedele.support.models import InboundEmail, Mailbox, Ticket, TicketMessage
from fedele.support.tests.factories import MailboxFactory
from fedele.support.tests.mailserver import PDF, DovecotServer, dovecot, make_email

pytestmark = pytest.mark.django_db
SUPPORT = "support@fedele.example"
PASSWORD_ENV = "FEDELE_TEST_IMAP_PASSWORD"

__all__ = ["dovecot"]


@pytest.fixture(autouse=True)
def _media(tmp_path: Path) -> Any:
    with override_settings(MEDIA_ROOT=tmp_path / "media"):
        yield


@pytest.fixture
def imap_mailbox(dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> Mailbox:
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    mailbox: Mailbox = MailboxFactory(
        address=SUPPORT,
        language="en",
        imap_host=dovecot.host,
        imap_port=dovecot.port,
        imap_ssl=False,
        imap_username=dovecot.username,
        imap_password_env=PASSWORD_ENV,
    )
    return mailbox


def seen_flags(server: DovecotServer) -> dict[int, bool]:
    client = IMAPClient(server.host, port=server.port, ssl=False)
    client.login(server.username, server.password)
    try:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(client.search(["ALL"]))
        return {int(uid): b"\\Seen" in value for uid, value in flags.items()}
    finally:
        client.logout()


def test_poll_imports_new_mail_once_and_marks_it_seen(dovecot: DovecotServer, imap_mailbox: Mailbox) -> None:
    dovecot.deliver(make_email(message_id="<a@example.it>", subject="Primo"), name="1.eml")
    dovecot.deliver(
        make_email(message_id="<b@example.it>", subject="Secondo", sender="luca@example.it"), name="2.eml"
    )

    result = poll_mailbox(imap_mailbox)

    assert (result.fetched, result.outcomes, result.error) == (2, {"created": 2}, "")
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["Primo", "Secondo"]
    assert set(InboundEmail.objects.values_list("received_via", flat=True)) == {"imap"}
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.imap_last_uid == 2
    assert imap_mailbox.imap_uidvalidity is not None
    assert imap_mailbox.imap_last_error == ""
    assert imap_mailbox.imap_last_polled_at is not None
    assert seen_flags(dovecot) == {1: True, 2: True}

    again = poll_mailbox(imap_mailbox)
    assert (again.fetched, again.error) == (0, "")
    assert Ticket.objects.count() == 2

    dovecot.deliver(make_email(message_id="<c@example.it>", in_reply_to="<a@example.it>"), name="3.eml")
    third = poll_all()
    assert third == {SUPPORT: 1}
    assert (Ticket.objects.count(), TicketMessage.objects.count()) == (2, 3)


def test_a_changed_uidvalidity_reads_the_folder_again_without_duplicates(
    dovecot: DovecotServer, imap_mailbox: Mailbox
) -> None:
    dovecot.deliver(make_email(message_id="<a@example.it>"), name="1.eml")
    poll_mailbox(imap_mailbox)
    imap_mailbox.refresh_from_db()
    real_validity = imap_mailbox.imap_uidvalidity
    Mailbox.objects.filter(pk=imap_mailbox.pk).update(imap_uidvalidity=12345, imap_last_uid=99)
    imap_mailbox.refresh_from_db()

    result = poll_mailbox(imap_mailbox)

    assert result.uidvalidity_reset is True
    assert (result.fetched, result.outcomes) == (1, {"duplicate": 1})
    assert (Ticket.objects.count(), TicketMessage.objects.count()) == (1, 1)
    imap_mailbox.refresh_from_db()
    assert (imap_mailbox.imap_uidvalidity, imap_mailbox.imap_last_uid) == (real_validity, 1)


def test_oversized_mail_gets_a_refusal_notice_and_no_ticket(
    dovecot: DovecotServer, imap_mailbox: Mailbox, django_capture_on_commit_callbacks: Any
) -> None:
    Mailbox.objects.filter(pk=imap_mailbox.pk).update(max_attachment_bytes=1024)
    imap_mailbox.refresh_from_db()
    dovecot.deliver(
        make_email(subject="Scansione", attachments=[("scan.pdf", PDF + b"0" * 4096, "application/pdf")]),
        name="1.eml",
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = poll_mailbox(imap_mailbox)

    assert result.outcomes == {"too_large": 1}
    assert Ticket.objects.count() == 0
    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    assert notice.to == ["mario.rossi@example.it"]
    assert notice.subject == "Message not delivered: Scansione"
    assert notice.extra_headers["Auto-Submitted"] == "auto-replied"
    assert notice.extra_headers["In-Reply-To"] == "<first.1@example.it>"
    assert "The attachment scan.pdf is 0.0 MB; this address accepts attachments up to 0.0 MB." in notice.body
    assert seen_flags(dovecot) == {1: True}


def test_auto_replies_are_ignored(
    dovecot: DovecotServer, imap_mailbox: Mailbox, django_capture_on_commit_callbacks: Any
) -> None:
    dovecot.deliver(
        make_email(headers={"Auto-Submitted": "auto-replied"}, subject="Out of office"), name="1.eml"
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = poll_mailbox(imap_mailbox)
    assert result.outcomes == {"auto_reply": 1}
    assert (Ticket.objects.count(), len(mail.outbox)) == (0, 0)


def test_login_errors_are_kept_on_the_mailbox(
    dovecot: DovecotServer, imap_mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert check_connection(imap_mailbox) == (True, "0 messages in INBOX")
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    result = poll_mailbox(imap_mailbox)
    assert result.fetched == 0
    assert result.error.startswith("LoginError")
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.imap_last_error.startswith("LoginError")
    ok, reason = check_connection(imap_mailbox)
    assert not ok and reason.startswith("LoginError")

    monkeypatch.delenv(PASSWORD_ENV)
    assert poll_mailbox(imap_mailbox).error == (
        f"ImapNotConfigured: The environment variable {PASSWORD_ENV} holds no password."
    )
