"""Tickets API under /api/v1/support/: list, create (idempotent), get, patch, messages, ops, views."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client, override_settings

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared.models import OutboxEvent
from fedele.support.models import Attachment, Ticket, TicketMessage
from fedele.support.services.tickets import message_add, ticket_create
from fedele.support.tests.factories import TicketFactory, ticket_kwargs

pytestmark = pytest.mark.django_db
BASE = "/api/v1/support"
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _media(tmp_path: Path) -> Any:
    with override_settings(MEDIA_ROOT=tmp_path):
        yield tmp_path


def _send(client: Client, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    call = getattr(client, method)
    return call(f"{BASE}{path}", data=json.dumps(body), content_type="application/json", **headers)


def test_create_get_and_idempotent_replay(client: Client) -> None:
    agent = auth_header(user_with_roles("agent"))
    customer = CustomerFactory()
    body = {"subject": "Modem", "body": "Non va", "customer_id": str(customer.public_id), "tags": ["vip"]}
    headers = {**agent, "HTTP_IDEMPOTENCY_KEY": "k-1"}
    first = _send(client, "post", "/tickets", body, headers)
    assert first.status_code == 201, first.content
    data = first.json()
    assert (data["number"], data["status"], data["channel"], data["tags"]) == (
        "T-000001",
        "new",
        "api",
        ["vip"],
    )
    assert data["customer_id"] == str(customer.public_id)
    assert [m["kind"] for m in data["messages"]] == ["customer"]
    again = _send(client, "post", "/tickets", body, headers)
    assert (again.status_code, again.json()["id"], again["Idempotent-Replayed"]) == (201, data["id"], "true")
    assert Ticket.objects.count() == 1
    reused = _send(client, "post", "/tickets", {**body, "subject": "Altro"}, headers)
    assert reused.status_code == 409
    bad = _send(client, "post", "/tickets", {"subject": "x", "ticket_type": "nope"}, agent)
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "unknown_ticket_type")
    unknown = _send(client, "post", "/tickets", {"subject": "x", "colour": "red"}, agent)
    assert unknown.status_code == 422
    got = client.get(f"{BASE}/tickets/{data['id']}", **agent)
    assert got.json()["subject"] == "Modem"
    assert Ticket.objects.count() == 1


def test_list_filters_paginates_without_n_plus_one(
    client: Client, django_assert_max_num_queries: Any
) -> None:
    agent = auth_header(user_with_roles("agent"))
    for priority in ["low", "urgent", "high"] * 4:
        TicketFactory(priority=priority, customer=CustomerFactory())
    with django_assert_max_num_queries(7):  # auth, permissions, page, tags: not per row
        response = client.get(f"{BASE}/tickets?limit=5&ordering=-priority", **agent)
    page = response.json()
    assert [t["priority"] for t in page["items"]] == ["urgent"] * 4 + ["high"]
    assert page["next_cursor"]
    rest = client.get(
        f"{BASE}/tickets?limit=50&ordering=-priority&cursor={page['next_cursor']}", **agent
    ).json()
    assert [t["priority"] for t in rest["items"]] == ["high"] * 3 + ["low"] * 4
    assert rest["next_cursor"] is None
    low = client.get(f"{BASE}/tickets?priority=low", **agent).json()["items"]
    assert len(low) == 4
    bad = client.get(f"{BASE}/tickets?assignee=bob", **agent)
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_filter")
    due = client.get(f"{BASE}/tickets?ordering=due&limit=3", **agent).json()
    assert len(due["items"]) == 3
    due_rest = client.get(f"{BASE}/tickets?ordering=due&limit=50&cursor={due['next_cursor']}", **agent).json()
    assert len(due_rest["items"]) == 9


def test_patch_messages_and_scopes(client: Client) -> None:
    agent = auth_header(user_with_roles("agent"))
    read_only = auth_header(user_with_roles("agent"), scopes=("read",))
    ticket = ticket_create(actor=None, **ticket_kwargs())
    path = f"/tickets/{ticket.public_id}"
    patched = _send(client, "patch", path, {"priority": "urgent", "add_tags": ["vip"]}, agent)
    assert patched.status_code == 200, patched.content
    assert (patched.json()["priority"], patched.json()["tags"]) == ("urgent", ["vip"])
    denied = _send(client, "patch", path, {"priority": "low"}, read_only)
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "insufficient_scope")
    reply = _send(
        client,
        "post",
        f"{path}/messages",
        {"kind": "reply", "body": "Ciao", "status": "pending_customer"},
        agent,
    )
    assert reply.status_code == 201, reply.content
    assert (reply.json()["kind"], reply.json()["channel"]) == ("reply", "email")
    assert Ticket.objects.get(pk=ticket.pk).status.code == "pending_customer"
    empty = _send(client, "post", f"{path}/messages", {"kind": "note", "body": ""}, agent)
    assert (empty.status_code, empty.json()["error"]["code"]) == (422, "body_required")


def test_multipart_message_with_attachment_and_refusal(client: Client) -> None:
    agent = auth_header(user_with_roles("agent"))
    ticket = ticket_create(actor=None, **ticket_kwargs())
    from django.core.files.uploadedfile import SimpleUploadedFile

    ok = client.post(
        f"{BASE}/tickets/{ticket.public_id}/messages/upload",
        data={
            "kind": "note",
            "body": "Foto",
            "files": [SimpleUploadedFile("f.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 8)],
        },
        **agent,
    )
    assert ok.status_code == 201, ok.content
    assert [(a["filename"], a["content_type"], a["size"]) for a in ok.json()["attachments"]] == [
        ("f.png", "image/png", 16)
    ]
    refused = client.post(
        f"{BASE}/tickets/{ticket.public_id}/messages/upload",
        data={"kind": "note", "body": "x", "files": [SimpleUploadedFile("a.pdf", b"MZ" + b"\x00" * 30)]},
        **agent,
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "attachment_type_refused")
    assert (Attachment.objects.count(), TicketMessage.objects.filter(ticket=ticket).count()) == (1, 2)


def test_portal_customer_api_sees_only_own_tickets_and_no_notes(client: Client) -> None:
    portal_user = user_with_roles("portal_customer", email="c@example.it")
    portal = auth_header(portal_user)
    stranger = ticket_create(actor=None, **ticket_kwargs(requester_email="x@example.it"))
    created = _send(client, "post", "/tickets", {"subject": "Aiuto", "body": "Non funziona"}, portal)
    assert created.status_code == 201, created.content
    own_id = created.json()["id"]
    assert created.json()["channel"] == "portal"
    from fedele.accounts.facade import actor_for

    message_add(actor=actor_for(user_with_roles("agent")), ticket=own_id, kind="note", body="segreto")
    detail = client.get(f"{BASE}/tickets/{own_id}", **portal).json()
    assert [m["kind"] for m in detail["messages"]] == ["customer"]
    assert client.get(f"{BASE}/tickets/{stranger.public_id}", **portal).status_code == 404
    assert [t["id"] for t in client.get(f"{BASE}/tickets", **portal).json()["items"]] == [own_id]
    note = _send(client, "post", f"/tickets/{own_id}/messages", {"kind": "note", "body": "x"}, portal)
    assert note.status_code == 403
    wrote = _send(
        client, "post", f"/tickets/{own_id}/messages", {"kind": "customer", "body": "altro"}, portal
    )
    assert wrote.status_code == 201
    assert _send(client, "patch", f"/tickets/{own_id}", {"priority": "urgent"}, portal).status_code == 403
    other = _send(
        client, "post", f"/tickets/{stranger.public_id}/messages", {"kind": "customer", "body": "x"}, portal
    )
    assert other.status_code == 404


def test_search_merge_bulk_and_views(client: Client) -> None:
    agent = auth_header(user_with_roles("agent"))
    admin = auth_header(user_with_roles("admin"))
    one = ticket_create(actor=None, **ticket_kwargs(subject="Modem rotto"))
    two = ticket_create(actor=None, **ticket_kwargs(subject="Fattura"))
    found = client.get(f"{BASE}/tickets/search?q=modem", **agent).json()["items"]
    assert [t["number"] for t in found] == ["T-000001"]
    assert client.get(f"{BASE}/tickets/search?q=", **agent).status_code == 422
    bulk = _send(
        client,
        "post",
        "/tickets-bulk",
        {"ticket_ids": [str(one.public_id), str(two.public_id)], "changes": {"priority": "high"}},
        agent,
    )
    assert bulk.json() == {"updated": 2}
    merged = _send(
        client, "post", f"/tickets/{two.public_id}/merge", {"target_id": str(one.public_id)}, agent
    )
    assert merged.status_code == 200, merged.content
    assert merged.json()["number"] == "T-000001"
    view = _send(client, "post", "/ticket-views", {"name": "Alte", "filters": {"priority": "high"}}, agent)
    assert view.status_code == 201, view.content
    shared = _send(client, "post", "/ticket-views", {"name": "Tutti", "shared": True}, agent)
    assert shared.status_code == 403
    _send(client, "post", "/ticket-views", {"name": "Tutti", "shared": True}, admin)
    views = client.get(f"{BASE}/ticket-views", **agent).json()
    assert [(v["name"], v["count"], v["mine"]) for v in views] == [("Alte", 2, True), ("Tutti", 2, False)]
    deleted = client.delete(f"{BASE}/ticket-views/{view.json()['id']}", **agent)
    assert deleted.status_code == 204
    assert OutboxEvent.objects.filter(event_type="support.ticket_created").count() == 2
