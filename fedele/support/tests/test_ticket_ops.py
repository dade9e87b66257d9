"""Merge, split, links, parent, watchers, bulk updates, saved views; automatic assignment."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog
from fedele.support.models import (
    AgentAbsence,
    AgentProfile,
    SavedView,
    TeamSettings,
    Ticket,
    TicketEvent,
    TicketLink,
    TicketMessage,
    TicketWatcher,
)
from fedele.support.services import saved_views, ticket_ops
from fedele.support.services.assignment import assign_automatically
from fedele.support.services.tickets import message_add, ticket_create, ticket_update
from fedele.support.tests.factories import ticket_kwargs

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _team(name: str, *members: Any, mode: str = "manual") -> Any:
    team = Ticket._meta.get_field("team").related_model.objects.create(name=name)  # type: ignore[attr-defined]
    team.members.add(*members)
    TeamSettings.objects.create(team=team, assignment=mode)
    return team


def _agent() -> Any:
    return actor_for(user_with_roles("agent"))


def test_merge_moves_conversation_and_closes_source() -> None:
    agent = _agent()
    source = ticket_create(actor=None, **ticket_kwargs(subject="Primo", requester_email="a@example.it"))
    target = ticket_create(actor=None, **ticket_kwargs(subject="Secondo", requester_email="b@example.it"))
    message_add(actor=agent, ticket=source, kind="reply", body="risposta")
    ticket_ops.follower_add(actor=agent, ticket=source, user_public_id=str(agent.public_id))
    result = ticket_ops.ticket_merge(actor=agent, source=source, target=str(target.public_id))
    source.refresh_from_db()
    target.refresh_from_db()
    assert result.pk == target.pk
    assert (source.status.code, source.merged_into_id, source.closed_at) == ("closed", target.pk, NOW)
    assert [m.kind for m in TicketMessage.objects.filter(ticket=source)] == ["system"]
    assert [m.kind for m in TicketMessage.objects.filter(ticket=target)] == [
        "customer",
        "customer",
        "reply",
        "system",
    ]
    assert (source.message_count, target.message_count) == (1, 4)
    assert "risposta" in target.search_text
    assert set(TicketWatcher.objects.filter(ticket=target).values_list("kind", "email")) == {
        ("follower", ""),
        ("cc", "a@example.it"),
    }
    assert TicketEvent.objects.filter(kind="merged").count() == 2
    # A customer writing to the merged ticket lands on the target.
    message = message_add(actor=None, ticket=source, kind="customer", body="ancora io")
    assert message.ticket_id == target.pk


def test_merge_refusals_change_nothing() -> None:
    agent = _agent()
    one = ticket_create(actor=None, **ticket_kwargs(customer_public_id=str(CustomerFactory().public_id)))
    two = ticket_create(actor=None, **ticket_kwargs(customer_public_id=str(CustomerFactory().public_id)))
    three = ticket_create(actor=None, **ticket_kwargs())
    ticket_update(actor=agent, ticket=three, changes={"status": "closed"})
    for source, target, code in [
        (one, one, "merge_into_itself"),
        (one, two, "merge_customer_mismatch"),
        (one, three, "merge_target_closed"),
        (three, one, "merge_source_closed"),
    ]:
        with pytest.raises(ValidationFailed) as error:
            ticket_ops.ticket_merge(actor=agent, source=source, target=target)
        assert error.value.code == code
    assert TicketMessage.objects.filter(ticket=one).count() == 1
    ticket_ops.ticket_merge(actor=agent, source=one, target=two, force=True)
    assert Ticket.objects.get(pk=one.pk).merged_into_id == two.pk


def test_split_moves_messages_to_a_child() -> None:
    agent = _agent()
    ticket = ticket_create(actor=None, **ticket_kwargs(priority="high"))
    second = message_add(actor=None, ticket=ticket, kind="customer", body="Anche la fattura è sbagliata")
    child = ticket_ops.ticket_split(
        actor=agent, ticket=ticket, message_public_ids=[str(second.public_id)], subject="Fattura sbagliata"
    )
    ticket.refresh_from_db()
    assert (child.number, child.parent_id, child.priority, child.subject) == (
        "T-000002",
        ticket.pk,
        "high",
        "Fattura sbagliata",
    )
    assert [m.body_text for m in TicketMessage.objects.filter(ticket=child)] == [
        "Anche la fattura è sbagliata",
        "Split from T-000001.",
    ]
    assert [m.kind for m in TicketMessage.objects.filter(ticket=ticket)] == ["customer", "system"]
    assert (ticket.message_count, Ticket.objects.get(pk=child.pk).message_count) == (2, 2)
    first = TicketMessage.objects.filter(ticket=ticket, kind="customer").get()
    with pytest.raises(ValidationFailed) as error:
        ticket_ops.ticket_split(
            actor=agent, ticket=ticket, message_public_ids=[str(first.public_id)], subject="x"
        )
    assert error.value.code == "split_everything"
    with pytest.raises(ValidationFailed) as error:
        ticket_ops.ticket_split(
            actor=agent, ticket=ticket, message_public_ids=[str(second.public_id)], subject="x"
        )
    assert error.value.code == "unknown_message"


def test_links_parent_and_watchers() -> None:
    agent = _agent()
    one = ticket_create(actor=None, **ticket_kwargs())
    two = ticket_create(actor=None, **ticket_kwargs())
    link = ticket_ops.ticket_link(actor=agent, source=one, target=two, kind="duplicate")
    assert (link.kind, TicketLink.objects.count()) == ("duplicate", 1)
    assert ticket_ops.ticket_link(actor=agent, source=one, target=two, kind="duplicate").pk == link.pk
    assert ticket_ops.ticket_unlink(actor=agent, source=two, target=one) is True
    assert ticket_ops.ticket_unlink(actor=agent, source=two, target=one) is False
    ticket_ops.ticket_set_parent(actor=agent, ticket=two, parent=one)
    with pytest.raises(ValidationFailed) as error:
        ticket_ops.ticket_set_parent(actor=agent, ticket=one, parent=two)
    assert error.value.code == "parent_cycle"
    assert ticket_ops.cc_add(actor=agent, ticket=one, email="Capo@Example.it") is True
    assert ticket_ops.cc_add(actor=agent, ticket=one, email="capo@example.it") is False
    with pytest.raises(ValidationFailed):
        ticket_ops.cc_add(actor=agent, ticket=one, email="non-valida")
    customer_user = user_with_roles("portal_customer")
    with pytest.raises(ValidationFailed):
        ticket_ops.follower_add(actor=agent, ticket=one, user_public_id=str(customer_user.public_id))
    assert ticket_ops.cc_remove(actor=agent, ticket=one, email="capo@example.it") is True
    assert TicketWatcher.objects.count() == 0


def test_bulk_update_is_all_or_nothing() -> None:
    agent = _agent()
    tickets = [ticket_create(actor=None, **ticket_kwargs()) for _ in range(3)]
    ids = [str(t.public_id) for t in tickets]
    assert (
        ticket_ops.tickets_bulk_update(
            actor=agent, public_ids=ids, changes={"priority": "high", "add_tags": ["x"]}
        )
        == 3
    )
    assert list(Ticket.objects.order_by("id").values_list("priority", flat=True)) == ["high"] * 3
    ticket_update(actor=agent, ticket=tickets[2], changes={"status": "closed"})
    audits = AuditLog.objects.count()
    with pytest.raises(ValidationFailed) as error:
        ticket_ops.tickets_bulk_update(actor=agent, public_ids=ids, changes={"priority": "low"})
    assert error.value.code == "ticket_closed"
    assert list(Ticket.objects.order_by("id").values_list("priority", flat=True)) == ["high"] * 3
    assert AuditLog.objects.count() == audits
    with pytest.raises(NotFound):
        ticket_ops.tickets_bulk_update(
            actor=agent,
            public_ids=[*ids[:2], "00000000-0000-0000-0000-000000000001"],
            changes={"priority": "low"},
        )
    with pytest.raises(ValidationFailed) as error:
        ticket_ops.tickets_bulk_update(actor=agent, public_ids=[f"{n:032x}" for n in range(501)], changes={})
    assert error.value.code == "too_many_tickets"
    assert ticket_ops.tickets_bulk_update(actor=agent, public_ids=ids[:2], changes={"priority": "high"}) == 0


def test_saved_views_personal_and_shared() -> None:
    agent = _agent()
    admin = actor_for(user_with_roles("admin"))
    view = saved_views.saved_view_create(
        actor=agent, name=" Mie  urgenti ", filters={"priority": "urgent", "assignee": "me"}
    )
    assert (view.name, view.owner_id, view.shared) == ("Mie urgenti", agent.user_id, False)
    with pytest.raises(PermissionDenied):
        saved_views.saved_view_create(actor=agent, name="Tutti", shared=True)
    with pytest.raises(ValidationFailed) as error:
        saved_views.saved_view_create(actor=agent, name="x", filters={"sla": "late"})
    assert error.value.code == "invalid_filter"
    shared = saved_views.saved_view_create(
        actor=admin, name="Violazioni", filters={"sla": "breached"}, shared=True
    )
    with pytest.raises(PermissionDenied):
        saved_views.saved_view_update(actor=agent, view=shared, changes={"name": "x"})
    with pytest.raises(NotFound):
        saved_views.saved_view_delete(actor=admin, view=view)
    updated = saved_views.saved_view_update(
        actor=agent, view=str(view.public_id), changes={"ordering": "-priority"}
    )
    assert updated.ordering == "-priority"
    saved_views.saved_view_delete(actor=agent, view=view)
    assert list(SavedView.objects.values_list("name", flat=True)) == ["Violazioni"]


def test_round_robin_assignment_skips_unavailable_absent_and_full_agents() -> None:
    users = [user_with_roles("agent") for _ in range(4)]
    a, b, c, d = users
    team = _team("Fibra", *users, mode="round_robin")
    AgentProfile.objects.create(user=b, available=False)
    AgentAbsence.objects.create(user=c, starts_on=date(2026, 3, 9), ends_on=date(2026, 3, 10))
    AgentProfile.objects.create(user=d, capacity=1)
    picks = [
        ticket_create(actor=None, **ticket_kwargs(team_public_id=str(team.public_id))).assignee_id
        for _ in range(4)
    ]
    assert picks == [a.pk, d.pk, a.pk, a.pk]
    assert TeamSettings.objects.get(team=team).round_robin_cursor == a.pk
    events = TicketEvent.objects.filter(kind="assigned", data__automatic=True).count()
    assert events == 4


def test_load_assignment_prefers_fewest_open_then_least_recent() -> None:
    a, b = user_with_roles("agent"), user_with_roles("agent")
    team = _team("Fatture", a, b, mode="load")
    first = ticket_create(actor=None, **ticket_kwargs(team_public_id=str(team.public_id)))
    second = ticket_create(actor=None, **ticket_kwargs(team_public_id=str(team.public_id)))
    assert {first.assignee_id, second.assignee_id} == {a.pk, b.pk}
    assert first.assignee_id == a.pk  # tie, never assigned: lowest id
    ticket_update(actor=actor_for(a), ticket=first, changes={"status": "solved"})
    third = ticket_create(actor=None, **ticket_kwargs(team_public_id=str(team.public_id)))
    assert third.assignee_id == a.pk


def test_manual_team_and_no_eligible_agent_leave_ticket_unassigned() -> None:
    a = user_with_roles("agent")
    manual = _team("Manuale", a)
    ticket = ticket_create(actor=None, **ticket_kwargs(team_public_id=str(manual.public_id)))
    assert ticket.assignee_id is None
    full = _team("Piena", a, mode="load")
    AgentProfile.objects.create(user=a, capacity=0)
    ticket = ticket_create(actor=None, **ticket_kwargs(team_public_id=str(full.public_id)))
    assert (ticket.assignee_id, assign_automatically(ticket)) == (None, None)
