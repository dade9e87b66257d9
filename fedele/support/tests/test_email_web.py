"""Mailbox pages and the inbound log page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.support.models import InboundEmail, Mailbox
from fedele.support.services.email_inbound import process_inbound
from fedele.support.tests.factories import MailboxFactory
from fedele.support.tests.mailserver import make_email

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(user_with_roles("admin"))
    return client


def test_create_edit_and_list_mailboxes(admin_client: Client) -> None:
    form = {
        "name": "Assistenza",
        "address": "support@fedele.example",
        "default_priority": "normal",
        "language": "it",
        "max_attachment_mb": "10",
        "active": "on",
        "imap_port": "993",
    }
    response = admin_client.post("/support/settings/mailboxes/new/", form)
    mailbox = Mailbox.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/support/settings/mailboxes/{mailbox.public_id}/"
    assert (mailbox.max_attachment_bytes, mailbox.active, mailbox.imap_ssl) == (10 * 1024 * 1024, True, False)

    invalid = admin_client.post(
        f"/support/settings/mailboxes/{mailbox.public_id}/", {**form, "imap_host": "imap.example.it"}
    )
    assert invalid.status_code == 422
    assert "Required to fetch mail by IMAP." in invalid.content.decode()
    mailbox.refresh_from_db()
    assert mailbox.imap_host == ""

    page = admin_client.get("/support/settings/mailboxes/")
    assert page.status_code == 200
    assert "support@fedele.example" in page.content.decode()
    test = admin_client.post(f"/support/settings/mailboxes/{mailbox.public_id}/test/", HTTP_HX_REQUEST="true")
    assert "This mailbox does not fetch mail by IMAP." in test.content.decode()


def test_inbound_log_page(admin_client: Client, django_assert_max_num_queries: Any) -> None:
    MailboxFactory(address="support@fedele.example")
    for n in range(3):
        process_inbound(
            make_email(message_id=f"<m{n}@x>", sender=f"c{n}@example.it"),
            recipients=["support@fedele.example"],
            via="lmtp",
        )
    with django_assert_max_num_queries(12):
        page = admin_client.get("/support/settings/mailboxes/log/?outcome=created")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index("c2@example.it") < html.index("c0@example.it")
    assert InboundEmail.objects.count() == 3


def test_agents_cannot_open_mailbox_pages(client: Client) -> None:
    client.force_login(user_with_roles("agent"))
    assert client.get("/support/settings/mailboxes/").status_code == 403
    assert client.get("/support/settings/mailboxes/log/").status_code == 403
