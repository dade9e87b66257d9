"""The support facade: ticket summaries for other modules, contact-center ticket creation, notes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared.errors import NotFound, ValidationFailed
from fedele.shared.search import SearchHit
from fedele.support import facade
from fedele.support.models import Ticket, TicketMessage
from fedele.support.services.tickets import ticket_create, ticket_update
from fedele.support.setup.tickets import search_tickets
from fedele.support.tests.factories import ticket_kwargs

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def test_summaries_for_a_customer(_frozen: Any) -> None:
    customer = CustomerFactory()
    agent = actor_for(user_with_roles("agent", first_name="Anna", last_name="Bianchi"))
    first = ticket_create(actor=None, **ticket_kwargs(customer_public_id=str(customer.public_id)))
    _frozen.shift(timedelta(minutes=5))
    second = ticket_create(actor=None, **ticket_kwargs(customer_public_id=str(customer.public_id)))
    ticket_create(actor=None, **ticket_kwargs())
    _frozen.shift(timedelta(minutes=5))
    ticket_update(actor=agent, ticket=first, changes={"status": "solved", "assignee": str(agent.public_id)})
    summary = facade.ticket_summary(str(first.public_id))
    assert summary is not None
    assert (summary.number, summary.status, summary.status_kind, summary.assignee_name) == (
        "T-000001",
        "solved",
        "solved",
        "Anna Bianchi",
    )
    assert summary.customer_public_id == customer.public_id
    assert summary.url.endswith(f"{first.public_id}/")
    assert [s.number for s in facade.open_tickets_for_customer(str(customer.public_id))] == [second.number]
    assert [s.number for s in facade.recent_tickets_for_customer(str(customer.public_id))] == [
        "T-000001",
        "T-000002",
    ]
    assert facade.recent_tickets_for_customer(str(customer.public_id), limit=1)[0].number == "T-000001"
    assert facade.ticket_summary("nope") is None
    assert facade.open_tickets_for_customer("nope") == []


def test_create_ticket_is_idempotent_on_external_reference() -> None:
    customer = CustomerFactory()
    summary = facade.create_ticket(
        subject="Chiamata",
        body="Il cliente segnala un guasto.",
        channel="phone",
        customer_public_id=str(customer.public_id),
        priority="high",
        external_reference="call-42",
    )
    again = facade.create_ticket(subject="Chiamata", body="x", channel="phone", external_reference="call-42")
    assert (summary.public_id, summary.priority, summary.channel) == (again.public_id, "high", "phone")
    assert Ticket.objects.count() == 1
    with pytest.raises(ValidationFailed):
        facade.create_ticket(subject="", body="x", channel="phone")


def test_add_note() -> None:
    ticket = ticket_create(actor=None, **ticket_kwargs())
    facade.add_note(str(ticket.public_id), "Richiamato il cliente.", "Centralino")
    note = TicketMessage.objects.get(ticket=ticket, kind="note")
    assert (note.body_text, note.author_name, note.channel) == (
        "Richiamato il cliente.",
        "Centralino",
        "internal",
    )
    with pytest.raises(NotFound):
        facade.add_note("00000000-0000-0000-0000-000000000001", "x", "y")


def test_global_search_source(rf: Any) -> None:
    ticket_create(actor=None, **ticket_kwargs(subject="Modem rotto"))
    request = rf.get("/search")
    request.user = user_with_roles("agent")
    assert search_tickets(request, "modem", 5) == [
        SearchHit(
            source="tickets",
            title="T-000001 · Modem rotto",
            subtitle="new · Mario Rossi",
            url=search_tickets(request, "T-000001", 1)[0].url,
        )
    ]
    request.user = user_with_roles("portal_customer")
    assert search_tickets(request, "modem", 5) == []


def test_suggest_articles_hides_internal_ones_from_customers() -> None:
    from fedele.support.facade import suggest_articles
    from fedele.support.tests.kb_helpers import published, supervisor

    editor = supervisor()
    public = published(editor, title="Riavviare il modem", body="<p>Spegnere il modem e riaccenderlo.</p>")
    internal = published(
        editor,
        title="Procedura interna riavvio modem",
        body="<p>Verificare la linea prima di riavviare il modem.</p>",
        visibility="internal",
    )

    for_agents = suggest_articles("riavviare il modem", language="it", for_agents=True)
    for_customers = suggest_articles("riavviare il modem", language="it", for_agents=False)

    assert {hit.public_id for hit in for_agents} == {public.public_id, internal.public_id}
    assert [hit.public_id for hit in for_customers] == [public.public_id]
    assert for_customers[0].url == f"/help/kb/it/{public.slug}/"
    assert for_customers[0].internal is False
    assert suggest_articles("", language="it") == []
