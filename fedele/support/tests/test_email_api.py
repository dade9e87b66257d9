"""Mailbox API, inbound log, and raw inbound mail over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client, override_settings

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.shared.models import AuditLog
from fedele.support.models import InboundEmail, Mailbox, Ticket
from fedele.support.tests.factories import MailboxFactory
from fedele.support.tests.mailserver import make_email

pytestmark = pytest.mark.django_db
BASE = "/api/v1/support/email"


@pytest.fixture(autouse=True)
def _media(tmp_path: Path) -> Any:
    with override_settings(MEDIA_ROOT=tmp_path):
        yield


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return auth_header(user_with_roles("admin"))


def test_mailbox_crud(client: Client, admin_headers: dict[str, str]) -> None:
    created = client.post(
        f"{BASE}/mailboxes",
        {
            "name": "Fatture",
            "address": "Fatture@Fedele.Example",
            "language": "en",
            "default_priority": "high",
        },
        content_type="application/json",
        **admin_headers,
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["address"], body["language"], body["default_priority"], body["imap_folder"]) == (
        "fatture@fedele.example",
        "en",
        "high",
        "INBOX",
    )
    mailbox_id = body["id"]

    duplicate = client.post(
        f"{BASE}/mailboxes",
        {"name": "Altro", "address": "fatture@fedele.example"},
        content_type="application/json",
        **admin_headers,
    )
    assert duplicate.status_code == 422
    assert duplicate.json()["error"]["fields"] == {"address": ["Another mailbox already uses this address."]}

    bad_imap = client.patch(
        f"{BASE}/mailboxes/{mailbox_id}",
        {"imap_host": "imap.example.it", "imap_password_env": "bad name"},
        content_type="application/json",
        **admin_headers,
    )
    assert bad_imap.status_code == 422
    assert set(bad_imap.json()["error"]["fields"]) == {"imap_username", "imap_password_env"}
    assert Mailbox.objects.get().imap_host == ""

    changed = client.patch(
        f"{BASE}/mailboxes/{mailbox_id}",
        {"from_name": "Ufficio fatture", "max_attachment_bytes": 2048},
        content_type="application/json",
        **admin_headers,
    )
    assert changed.status_code == 200
    assert (changed.json()["from_name"], changed.json()["max_attachment_bytes"]) == ("Ufficio fatture", 2048)
    listed = client.get(f"{BASE}/mailboxes", **admin_headers)
    assert [m["address"] for m in listed.json()] == ["fatture@fedele.example"]
    test = client.post(f"{BASE}/mailboxes/{mailbox_id}/test", **admin_headers)
    assert test.json() == {"ok": False, "detail": "This mailbox does not fetch mail by IMAP."}
    assert client.delete(f"{BASE}/mailboxes/{mailbox_id}", **admin_headers).status_code == 204
    assert Mailbox.objects.count() == 0
    assert list(
        AuditLog.objects.filter(object_type="support.mailbox").order_by("id").values_list("action", flat=True)
    ) == [
        "support.mailbox_created",
        "support.mailbox_updated",
        "support.mailbox_deleted",
    ]


def test_agents_cannot_manage_mailboxes(client: Client) -> None:
    mailbox = MailboxFactory()
    headers = auth_header(user_with_roles("agent"))
    assert client.get(f"{BASE}/mailboxes", **headers).status_code == 403
    assert client.get(f"{BASE}/mailboxes/{mailbox.public_id}", **headers).status_code == 403
    assert client.get(f"{BASE}/inbound", **headers).status_code == 403
    response = client.post(
        f"{BASE}/inbound", make_email(to=mailbox.address), content_type="message/rfc822", **headers
    )
    assert response.status_code == 403
    assert Ticket.objects.count() == 0


def test_raw_inbound_post_and_log(
    client: Client, admin_headers: dict[str, str], django_assert_max_num_queries: Any
) -> None:
    mailbox = MailboxFactory(address="support@fedele.example")
    raw = make_email()
    first = client.post(f"{BASE}/inbound", raw, content_type="message/rfc822", **admin_headers)
    assert first.status_code == 200
    ticket = Ticket.objects.get()
    assert first.json() == {
        "outcome": "created",
        "ticket": str(ticket.public_id),
        "detail": f"Created {ticket.number}.",
        "reply_code": 250,
    }
    again = client.post(f"{BASE}/inbound", raw, content_type="message/rfc822", **admin_headers)
    assert again.json()["outcome"] == "duplicate"
    assert Ticket.objects.count() == 1

    read_only = auth_header(user_with_roles("admin"), scopes=("read",))
    assert client.post(f"{BASE}/inbound", raw, content_type="message/rfc822", **read_only).status_code == 403
    wrong_type = client.post(f"{BASE}/inbound", {"a": 1}, content_type="application/json", **admin_headers)
    assert wrong_type.status_code == 422
    with override_settings(FEDELE_SUPPORT_MAX_EMAIL_BYTES=100):
        too_big = client.post(f"{BASE}/inbound", raw, content_type="message/rfc822", **admin_headers)
    assert too_big.status_code == 413
    assert InboundEmail.objects.count() == 2

    for n in range(5):
        client.post(
            f"{BASE}/inbound",
            make_email(message_id=f"<n{n}@x>", sender=f"c{n}@example.it"),
            content_type="message/rfc822",
            **admin_headers,
        )
    with django_assert_max_num_queries(8):
        log = client.get(f"{BASE}/inbound?limit=3", **admin_headers)
    assert log.status_code == 200
    page = log.json()
    assert [item["sender"] for item in page["items"]] == ["c4@example.it", "c3@example.it", "c2@example.it"]
    assert page["next_cursor"]
    created = client.get(
        f"{BASE}/inbound?outcome=duplicate&mailbox={mailbox.public_id}", **admin_headers
    ).json()
    assert [(i["outcome"], i["ticket_number"]) for i in created["items"]] == [("duplicate", ticket.number)]
