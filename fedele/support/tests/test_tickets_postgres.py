"""PostgreSQL: full-text search with the GIN index, concurrent messages, assignment capacity."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.shared.testing import in_threads
from fedele.support.models import AgentProfile, TeamSettings, Ticket, TicketMessage
from fedele.support.selectors.tickets import ticket_list, ticket_search
from fedele.support.services.assignment import assign_automatically
from fedele.support.services.tickets import message_add, ticket_create
from fedele.support.tests.factories import TicketFactory, ticket_kwargs

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Transactional tests flush the tables the seed migration filled: seed them again."""
    from importlib import import_module

    from django.apps import apps

    import_module("fedele.support.migrations.0002_defaults").seed(apps, None)


def test_search_uses_tsquery_and_ranks() -> None:
    assert connection.vendor == "postgresql"
    agent = actor_for(user_with_roles("agent"))
    weak = ticket_create(actor=None, **ticket_kwargs(subject="Fattura", body="Il modem è arrivato."))
    strong = ticket_create(
        actor=None, **ticket_kwargs(subject="Modem guasto", body="modem rotto, modem spento")
    )
    ticket_create(actor=None, **ticket_kwargs(subject="Altro", body="niente"))
    assert [t.pk for t in ticket_search(actor=agent, query="modem")] == [strong.pk, weak.pk]
    assert [t.pk for t in ticket_search(actor=agent, query="modem -rotto")] == [weak.pk]
    assert [t.pk for t in ticket_search(actor=agent, query='"modem guasto"')] == [strong.pk]
    assert [t.pk for t in ticket_list(actor=agent, filters={"q": "arrivato"})] == [weak.pk]
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'support_ticket_search_gin'")
        row = cursor.fetchone()
    assert row is not None and "search_vector" in row[0]
    # The planner can use the index for the match (forced off sequential scans to prove it).
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM support_ticket WHERE "
            "search_vector @@ websearch_to_tsquery('simple'::regconfig, 'modem')"
        )
        plan = " ".join(r[0] for r in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    assert "support_ticket_search_gin" in plan


def test_concurrent_messages_keep_message_count_exact() -> None:
    ticket = ticket_create(actor=None, **ticket_kwargs())
    agent = actor_for(user_with_roles("agent"))

    def work(index: int) -> None:
        message_add(
            actor=agent if index % 2 else None,
            ticket=str(ticket.public_id),
            kind="reply" if index % 2 else "customer",
            body=f"messaggio {index}",
            send_email=False,
        )

    assert in_threads(work, 8) == []
    ticket.refresh_from_db()
    assert ticket.message_count == 9
    assert TicketMessage.objects.filter(ticket=ticket).count() == 9


def test_concurrent_assignment_never_exceeds_capacity() -> None:
    a, b = user_with_roles("agent"), user_with_roles("agent")
    team = Ticket._meta.get_field("team").related_model.objects.create(name="Fibra")  # type: ignore[attr-defined]
    team.members.add(a, b)
    TeamSettings.objects.create(team=team, assignment="load")
    AgentProfile.objects.create(user=a, capacity=3)
    AgentProfile.objects.create(user=b, capacity=3)
    tickets = [TicketFactory(team=team) for _ in range(10)]
    results: dict[int, Any] = {}

    def work(index: int) -> None:
        from django.db import transaction

        with transaction.atomic():
            row = Ticket.objects.select_for_update().get(pk=tickets[index].pk)
            results[index] = assign_automatically(row)

    assert in_threads(work, 10) == []
    assigned = [value for value in results.values() if value is not None]
    assert len(assigned) == 6
    assert sorted(assigned.count(user.pk) for user in (a, b)) == [3, 3]
    assert Ticket.objects.filter(assignee__isnull=False).count() == 6
