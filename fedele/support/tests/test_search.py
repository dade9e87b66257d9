"""Ticket selectors: scoping, filters, orderings, view counts, full-text search (SQLite FTS5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.facade import link_portal_user
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared.errors import NotFound, ValidationFailed
from fedele.support.models import SavedView, Ticket, TicketWatcher
from fedele.support.selectors import search
from fedele.support.selectors.tickets import (
    attachment_get,
    messages_for,
    ticket_get,
    ticket_list,
    ticket_search,
    view_counts,
)
from fedele.support.services.tickets import message_add, ticket_create, ticket_update
from fedele.support.tests.factories import TicketFactory, ticket_kwargs

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _team(name: str, *members: Any) -> Any:
    team_model = Ticket._meta.get_field("team").related_model
    team = team_model.objects.create(name=name)  # type: ignore[attr-defined]
    team.members.add(*members)
    return team


def _portal_user_of(customer: Any, email: str) -> Any:
    user = user_with_roles("portal_customer", email=email)
    link_portal_user(
        customer_public_id=str(customer.public_id),
        user_id=user.pk,
        email=email,
        first_name="Luca",
        last_name="Verdi",
        language="it",
    )
    return get_user_model().objects.get(pk=user.pk)


def test_number_and_email_parsing() -> None:
    assert search.ticket_number_for("T-000123") == "T-000123"
    assert search.ticket_number_for("t123") == "T-000123"
    assert search.ticket_number_for(" 42 ") == "T-000042"
    assert search.ticket_number_for("modem 42") is None
    assert search.is_email("a@b.it") and not search.is_email("a b@c.it")
    assert search.fts5_query('modem "OR" NEAR(x') == '"modem" "or" "near" "x"'


def test_full_text_ranks_by_relevance_then_recency() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite FTS5 ranking; the PostgreSQL index is tested in test_tickets_postgres.py")
    agent = actor_for(user_with_roles("agent"))
    weak = ticket_create(actor=None, **ticket_kwargs(subject="Fattura di marzo", body="Il modem è arrivato."))
    strong = ticket_create(
        actor=None, **ticket_kwargs(subject="Modem guasto", body="Il modem non si accende, modem rotto.")
    )
    newer_weak = ticket_create(actor=None, **ticket_kwargs(subject="Bolletta", body="Parlo del modem."))
    ticket_create(actor=None, **ticket_kwargs(subject="Altro", body="Niente a che vedere."))
    found = ticket_search(actor=agent, query="modem", limit=10)
    assert found[0].number == strong.number
    assert {t.number for t in found} == {weak.number, strong.number, newer_weak.number}
    # Accents folded, case ignored, all words required.
    assert [t.number for t in ticket_search(actor=agent, query="MODEM accende", limit=10)] == [strong.number]
    assert [t.number for t in ticket_search(actor=agent, query="arrivato", limit=10)] == [weak.number]
    assert ticket_search(actor=agent, query="   ", limit=10) == []
    assert ticket_search(actor=agent, query="***", limit=10) == []
    # A reply's text becomes searchable at once (trigger on search_text).
    message_add(actor=agent, ticket=weak, kind="reply", body="Sostituiamo il router")
    assert [t.number for t in ticket_search(actor=agent, query="router", limit=10)] == [weak.number]
    # Subject change rebuilds the text.
    ticket_update(actor=agent, ticket=newer_weak, changes={"subject": "Ricarica telefonica"})
    assert [t.number for t in ticket_search(actor=agent, query="ricarica", limit=10)] == [newer_weak.number]
    assert ticket_search(actor=agent, query="bolletta", limit=10) == []


def test_number_and_email_lookup_come_first() -> None:
    agent = actor_for(user_with_roles("agent"))
    first = ticket_create(actor=None, **ticket_kwargs(requester_email="anna@example.it"))
    ticket_create(actor=None, **ticket_kwargs())
    assert [t.pk for t in ticket_search(actor=agent, query="T-000001")] == [first.pk]
    assert [t.pk for t in ticket_search(actor=agent, query="1")] == [first.pk]
    assert [t.pk for t in ticket_search(actor=agent, query="Anna@Example.it")] == [first.pk]
    assert [t.number for t in ticket_list(actor=agent, filters={"q": "t2"})] == ["T-000002"]


def test_scoping_for_agents_of_other_teams_and_followers() -> None:
    dispatcher = user_with_roles("dispatcher")  # may work tickets, not see them all
    colleague = user_with_roles("dispatcher")
    mine = _team("Fibra", dispatcher)
    other = _team("Fatture", colleague)
    own = TicketFactory(team=mine)
    foreign = TicketFactory(team=other)
    assigned = TicketFactory(team=other, assignee=dispatcher)
    followed = TicketFactory(team=other)
    TicketWatcher.objects.create(ticket=followed, kind="follower", user=dispatcher, created_at=NOW)
    actor = actor_for(dispatcher)
    visible = {t.pk for t in ticket_list(actor=actor, filters={})}
    assert visible == {own.pk, assigned.pk, followed.pk}
    with pytest.raises(NotFound):
        ticket_get(actor=actor, public_id=str(foreign.public_id))
    assert ticket_get(actor=actor, public_id=str(own.public_id)).pk == own.pk
    with pytest.raises(NotFound):
        ticket_get(actor=actor, public_id="not-a-uuid")
    supervisor = actor_for(user_with_roles("supervisor"))
    assert ticket_list(actor=supervisor, filters={}).count() == 4
    portal_customer = actor_for(user_with_roles("portal_customer"))
    assert ticket_list(actor=portal_customer, filters={}).count() == 0


def test_portal_customer_sees_own_and_customer_tickets_without_notes() -> None:
    customer = CustomerFactory(email="azienda@example.it")
    user = _portal_user_of(customer, "luca@example.it")
    actor = actor_for(user)
    agent = actor_for(user_with_roles("agent"))
    by_colleague = ticket_create(actor=None, **ticket_kwargs(requester_email="azienda@example.it"))
    own = ticket_create(actor=actor, **ticket_kwargs(requester_email=""))
    stranger = ticket_create(actor=None, **ticket_kwargs(requester_email="altro@example.it"))
    assert own.customer_id == customer.pk
    assert {t.pk for t in ticket_list(actor=actor, filters={})} == {by_colleague.pk, own.pk}
    with pytest.raises(NotFound):
        ticket_get(actor=actor, public_id=str(stranger.public_id))
    message_add(actor=agent, ticket=own, kind="note", body="interno")
    message_add(actor=agent, ticket=own, kind="reply", body="pubblico")
    assert [m.kind for m in messages_for(actor=actor, ticket=own)] == ["customer", "reply"]
    assert [m.kind for m in messages_for(actor=agent, ticket=own)] == ["customer", "note", "reply"]


def test_filters_and_orderings() -> None:
    agent_user = user_with_roles("agent")
    agent = actor_for(agent_user)
    team = _team("Fibra", agent_user)
    low = TicketFactory(priority="low", channel="email")
    urgent = TicketFactory(
        priority="urgent", team=team, assignee=agent_user, resolution_due_at=NOW + timedelta(minutes=30)
    )
    high = TicketFactory(priority="high", sla_breached=True, resolution_due_at=NOW - timedelta(hours=1))
    urgent.tags.create(name="vip")

    def numbers(filters: dict[str, str] | None = None, o: str = "-id") -> list[int]:
        return [t.pk for t in ticket_list(actor=agent, filters=filters or {}, ordering=o)]

    assert numbers() == [high.pk, urgent.pk, low.pk]
    assert numbers(o="id") == [low.pk, urgent.pk, high.pk]
    assert numbers(o="-priority") == [urgent.pk, high.pk, low.pk]
    assert numbers(o="priority") == [low.pk, high.pk, urgent.pk]
    assert numbers(o="due") == [high.pk, urgent.pk, low.pk]
    assert numbers(filters={"assignee": "me"}) == [urgent.pk]
    assert numbers(filters={"assignee": "none"}) == [high.pk, low.pk]
    assert numbers(filters={"team": str(team.public_id)}) == [urgent.pk]
    assert numbers(filters={"team": "none"}) == [high.pk, low.pk]
    assert numbers(filters={"tag": "vip"}) == [urgent.pk]
    assert numbers(filters={"priority": "low,high"}) == [high.pk, low.pk]
    assert numbers(filters={"channel": "email"}) == [low.pk]
    assert numbers(filters={"sla": "breached"}) == [high.pk]
    assert numbers(filters={"sla": "due_soon"}) == [urgent.pk]
    assert numbers(filters={"status_kind": "new", "priority": ""}) == [high.pk, urgent.pk, low.pk]
    assert numbers(filters={"created_from": "2026-03-10", "created_to": "2026-03-10"}) == [
        high.pk,
        urgent.pk,
        low.pk,
    ]
    assert numbers(filters={"created_from": "2026-03-11"}) == []
    for bad in (
        {"sla": "late"},
        {"assignee": "bob"},
        {"colour": "red"},
        {"status_kind": "archived"},
        {"created_from": "ieri"},
    ):
        with pytest.raises(ValidationFailed) as error:
            numbers(filters=bad)
        assert error.value.code == "invalid_filter"
    with pytest.raises(ValidationFailed):
        numbers(o="colour")


def test_list_has_no_n_plus_one(django_assert_max_num_queries: Any) -> None:
    agent = actor_for(user_with_roles("agent"))
    customer = CustomerFactory()
    for _ in range(15):
        TicketFactory(customer=customer)
    with django_assert_max_num_queries(1):
        rows = list(ticket_list(actor=agent, filters={}))
        labels = [(t.status.code, t.customer.public_id if t.customer else None, t.assignee) for t in rows]
    assert len(labels) == 15


def test_view_counts_one_query_per_view(django_assert_max_num_queries: Any) -> None:
    agent = actor_for(user_with_roles("agent"))
    TicketFactory(priority="urgent")
    TicketFactory(priority="low")
    views = [
        SavedView.objects.create(name="Urgenti", filters={"priority": "urgent"}, shared=True, created_at=NOW),
        SavedView.objects.create(name="Tutti", filters={}, owner_id=agent.user_id, created_at=NOW),
        SavedView.objects.create(name="Rotta", filters={"sla": "whatever"}, shared=True, created_at=NOW),
    ]
    with django_assert_max_num_queries(2):
        counts = view_counts(actor=agent, views=views)
    assert counts == {str(views[0].public_id): 1, str(views[1].public_id): 2, str(views[2].public_id): 0}


def test_attachment_get_is_scoped(tmp_path: Any, settings: Any) -> None:
    from fedele.support.attachments import IncomingFile
    from fedele.support.models import Attachment

    settings.MEDIA_ROOT = tmp_path
    portal = actor_for(user_with_roles("portal_customer", email="c@example.it"))
    other = actor_for(user_with_roles("portal_customer", email="d@example.it"))
    agent = actor_for(user_with_roles("agent"))
    ticket = ticket_create(
        actor=portal, **ticket_kwargs(requester_email="", attachments=[IncomingFile("a.txt", b"a")])
    )
    message_add(actor=agent, ticket=ticket, kind="note", body="x", attachments=[IncomingFile("n.txt", b"n")])
    public, internal = list(Attachment.objects.order_by("id"))
    assert attachment_get(actor=portal, public_id=str(public.public_id)).pk == public.pk
    assert attachment_get(actor=agent, public_id=str(internal.public_id)).pk == internal.pk
    with pytest.raises(NotFound):
        attachment_get(actor=portal, public_id=str(internal.public_id))
    with pytest.raises(NotFound):
        attachment_get(actor=other, public_id=str(public.public_id))
