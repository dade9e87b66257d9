"""The ticket create endpoint's fast path (ADR 0002) through the real ASGI application on PostgreSQL.

Every answer must be the one Django's ninja view gives (same status, same bytes but the new ticket's
own ids and number, same headers but the request id), errors included; requests it does not serve go
to Django; concurrent requests are created in groups with gapless, unique numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import time_machine
from django.core.asgi import get_asgi_application
from django.test import override_settings

from fedele.accounts.tests.factories import token_for, user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import fastpath
from fedele.shared.models import AuditLog, OutboxEvent
from fedele.support.api import fast_tickets
from fedele.support.models import SlaClock, Ticket, TicketMessage

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PATH = "/api/v1/support/tickets"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Rome
# As config/asgi.py builds it for HTTP (importing config here would import every module).
application = fastpath.router(get_asgi_application())


@pytest.fixture
def setup() -> Iterator[dict[str, Any]]:
    customer = CustomerFactory(email="cliente@example.it")
    agent = token_for(user_with_roles("agent"))
    analyst = token_for(user_with_roles("analyst"))
    reader = token_for(user_with_roles("agent"), scopes=("read",))
    portal = token_for(user_with_roles("portal_customer", email="portale@example.it"))
    with time_machine.travel(T0, tick=False):
        yield {"customer": customer, "agent": agent, "analyst": analyst, "reader": reader, "portal": portal}
    fast_tickets._GROUPS.stop()  # the workers close their connections (the test database is dropped)


def _send(
    requests: list[tuple[dict[str, Any], dict[str, str]]], *, fast: bool = True
) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return list(
                await asyncio.gather(
                    *(client.post(PATH, json=body, headers=headers) for body, headers in requests)
                )
            )

    with override_settings(FEDELE_FAST_PATHS=fast):
        return asyncio.run(go())


def _get(path: str, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


def _one(body: dict[str, Any], headers: dict[str, str], *, fast: bool = True) -> httpx.Response:
    return _send([(body, headers)], fast=fast)[0]


def _headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in {"x-request-id", "date", "server"}}


def _body(index: int, **extra: Any) -> dict[str, Any]:
    return {
        "subject": f"Nuovo problema n. {index}",
        "body": "Buongiorno, da ieri ho un problema. Potete aiutarmi?",
        "channel": "api",
        "requester_email": "cliente@example.it",
        "requester_name": "Cliente Noto",
        "priority": "normal",
        **extra,
    }


def _neutral(response: httpx.Response) -> bytes:
    """The answer's bytes with the new ticket's own ids and number replaced (two creates of the same
    body differ only there)."""
    data = response.json()
    content = response.content
    replacements = [(data["id"], "TICKET-ID"), (data["number"], "T-NUMBER")]
    replacements += [(message["id"], "MESSAGE-ID") for message in data["messages"]]
    for value, neutral in replacements:
        content = content.replace(value.encode(), neutral.encode())
    return content


def test_a_create_is_answered_as_django_answers_it_byte_for_byte(setup: dict[str, Any]) -> None:
    auth = {"Authorization": f"Bearer {setup['agent']}", "Accept-Language": "it"}
    groups_before = fast_tickets._GROUPS.groups
    body = _body(1, tags=["Modem", "vip"], language="en")
    fast = _one(body, auth)
    assert fast_tickets._GROUPS.groups == groups_before + 1  # served by the fast path
    slow = _one(body, auth, fast=False)
    assert fast_tickets._GROUPS.groups == groups_before + 1  # Django served the second
    assert (fast.status_code, slow.status_code) == (201, 201)
    assert (fast.json()["number"], slow.json()["number"]) == ("T-000001", "T-000002")
    assert _neutral(fast) == _neutral(slow)
    assert _headers(fast) == _headers(slow)
    data = fast.json()
    assert data["customer_id"] == str(setup["customer"].public_id)
    assert (data["tags"], data["language"], data["status"]) == (["modem", "vip"], "en", "new")
    assert (data["first_response_due_at"], data["resolution_due_at"]) == (
        "2026-11-23T13:00:00Z",
        "2026-11-30T09:00:00Z",
    )
    # What the fast path answered is what the ticket reads back.
    assert _get(f"{PATH}/{data['id']}", auth).json() == data
    stored = Ticket.objects.get(number="T-000001")
    assert str(stored.public_id) == data["id"]
    assert (
        TicketMessage.objects.filter(ticket=stored).count(),
        SlaClock.objects.filter(ticket=stored).count(),
    ) == (
        1,
        2,
    )
    assert AuditLog.objects.filter(action="support.ticket_created", object_id=data["id"]).count() == 1
    assert OutboxEvent.objects.filter(aggregate_id=data["id"]).count() == 2  # created, timeline


def test_a_replay_by_external_id_is_byte_for_byte_djangos(setup: dict[str, Any]) -> None:
    auth = {"Authorization": f"Bearer {setup['agent']}"}
    created = _one(_body(2, external_id="crm-42"), auth)
    fast_replay = _one(_body(2, external_id="crm-42", subject="altro"), auth)
    slow_replay = _one(_body(2, external_id="crm-42", subject="altro"), auth, fast=False)
    assert (created.status_code, fast_replay.status_code, slow_replay.status_code) == (201, 201, 201)
    assert fast_replay.content == slow_replay.content
    assert _headers(fast_replay) == _headers(slow_replay)
    assert fast_replay.json()["id"] == created.json()["id"]
    assert Ticket.objects.count() == 1


def test_errors_are_djangos_byte_for_byte(setup: dict[str, Any]) -> None:
    auth = {"Authorization": f"Bearer {setup['agent']}", "Accept-Language": "en"}
    cases = [
        (_body(3), {"Authorization": "Bearer fdl_nope"}),  # bad token: declined in the group, Django
        (_body(4), {"Authorization": f"Bearer {setup['analyst']}"}),  # no permission to work tickets: 403
        (_body(5), {"Authorization": f"Bearer {setup['reader']}"}),  # no write scope: 403
        ({"body": "senza oggetto"}, auth),  # the schema refuses: ninja's 422
        (_body(6, customer_id="00000000-0000-0000-0000-000000000007"), auth),  # unknown customer: 422
        (_body(7, ticket_type="nessuno"), auth),  # unknown type: 422
        (_body(8, category="nessuna"), {**auth, "Accept-Language": "it"}),  # unknown category, in Italian
        (_body(9, requester_email="senza-chiocciola"), auth),  # bad e-mail: 422
        (_body(10, subject="   "), auth),  # a blank subject: the schema's 422
    ]
    groups_before = fast_tickets._GROUPS.groups
    for body, headers in cases:
        fast, slow = _one(body, headers), _one(body, headers, fast=False)
        assert (fast.status_code, fast.content) == (slow.status_code, slow.content), body
        assert _headers(fast) == _headers(slow), body
    # The two schema errors never reach a group; the others were grouped, then declined or refused.
    assert fast_tickets._GROUPS.groups == groups_before + 7
    codes = [(r.status_code, r.json()["error"]["code"]) for r in (_one(b, h) for b, h in cases)]
    assert codes == [
        (403, "permission_denied"),  # as Django refuses an unknown bearer token (session auth, no CSRF)
        (403, "permission_denied"),
        (403, "insufficient_scope"),
        (422, "validation_error"),
        (422, "unknown_customer"),
        (422, "unknown_ticket_type"),
        (422, "unknown_category"),
        (422, "invalid_email"),
        (422, "validation_error"),
    ]
    assert (Ticket.objects.count(), AuditLog.objects.filter(action="support.ticket_created").count()) == (
        0,
        0,
    )


def test_requests_it_does_not_serve_go_to_django(setup: dict[str, Any]) -> None:
    auth = {"Authorization": f"Bearer {setup['agent']}"}
    groups_before = fast_tickets._GROUPS.groups
    with_key = _one(_body(11), {**auth, "Idempotency-Key": "k-1"})
    portal = _one(_body(12), {"Authorization": f"Bearer {setup['portal']}"})
    assert (with_key.status_code, portal.status_code) == (201, 201)
    assert portal.json()["channel"] == "portal"  # Django's rule for a portal customer's ticket
    assert fast_tickets._GROUPS.groups == groups_before + 1  # the portal call was grouped, then declined
    assert sorted(Ticket.objects.values_list("number", flat=True)) == ["T-000001", "T-000002"]


def test_concurrent_creates_are_grouped_with_gapless_unique_numbers(setup: dict[str, Any]) -> None:
    auth = {"Authorization": f"Bearer {setup['agent']}"}
    requests = [(_body(100 + n, requester_email=f"nuovo{n}@example.it"), auth) for n in range(40)]
    requests += [(_body(200, external_id="dup"), auth), (_body(201, external_id="dup"), auth)]
    items_before, groups_before = fast_tickets._GROUPS.items, fast_tickets._GROUPS.groups
    answers = _send(requests)
    assert {answer.status_code for answer in answers} == {201}
    numbers = [answer.json()["number"] for answer in answers]
    assert sorted(set(numbers)) == [f"T-{value:06d}" for value in range(1, 42)]
    assert answers[-1].json()["id"] == answers[-2].json()["id"]  # the repeated external id: one ticket
    assert fast_tickets._GROUPS.items - items_before == 42
    assert fast_tickets._GROUPS.groups - groups_before < 42  # at least one group held several requests
    assert Ticket.objects.count() == 41
    assert AuditLog.objects.filter(action="support.ticket_created").count() == 41
    assert OutboxEvent.objects.filter(event_type="support.ticket_created").count() == 41


def test_an_answer_that_cannot_be_built_is_a_500_naming_the_ticket_never_a_second_create(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declining to Django after the commit would create the ticket again (no external id to dedupe
    on): the caller gets a 500 with the created ticket's id and number instead."""

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("cannot render")

    monkeypatch.setattr(fast_tickets, "_answer", broken)
    response = _one(_body(1), {"Authorization": f"Bearer {setup['agent']}"})
    stored = Ticket.objects.get()
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "The ticket was created but its answer could not be built; read it back by its id.",
            "fields": {"id": str(stored.public_id), "number": "T-000001"},
        }
    }
    assert Ticket.objects.count() == 1
