"""Macros: reply in the ticket's language with variables, actions, usage count, scoping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.shared.errors import NotFound, PermissionDenied
from fedele.support.models import Macro, SlaClock, Ticket, TicketEvent, TicketMessage
from fedele.support.services.automations import macro_apply
from fedele.support.services.tickets import ticket_create
from fedele.support.tests.factories import ticket_kwargs

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def macro(**values: object) -> Macro:
    defaults: dict[str, object] = {"name": "Chiedi seriale", "created_at": T0}
    defaults.update(values)
    return Macro.objects.create(**defaults)


def test_macro_reply_with_variables_and_actions() -> None:
    agent_user = user_with_roles("agent", first_name="Paolo", last_name="Verdi")
    agent = actor_for(agent_user)
    chosen = macro(
        reply_it="Gentile {{ customer.first_name }}, per {{ ticket.number }} ci serve il seriale. "
        "{{ agent.name }}",
        reply_en="Dear {{ customer.first_name }}, we need the serial for {{ ticket.number }}. "
        "{{ agent.name }}",
        actions=[{"type": "set_status", "value": "pending_customer"}, {"type": "add_tag", "value": "serial"}],
    )
    with time_machine.travel(T0, tick=False):
        ticket = ticket_create(actor=None, **ticket_kwargs(requester_name="Mario Rossi"))
        english = ticket_create(actor=None, **ticket_kwargs(requester_name="John Smith", language="en"))
        message = macro_apply(actor=agent, ticket=ticket, macro_public_id=str(chosen.public_id))
        macro_apply(actor=agent, ticket=str(english.public_id), macro_public_id=str(chosen.public_id))
    assert message is not None
    assert message.kind == "reply"
    assert message.body_text == f"Gentile Mario, per {ticket.number} ci serve il seriale. Paolo Verdi"
    reply_en = TicketMessage.objects.get(ticket=english, kind="reply")
    assert reply_en.body_text == f"Dear John, we need the serial for {english.number}. Paolo Verdi"
    ticket.refresh_from_db()
    assert ticket.status.code == "pending_customer"
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["serial"]
    assert SlaClock.objects.get(ticket=ticket, metric="first_response").status == "fulfilled"
    chosen.refresh_from_db()
    assert chosen.usage_count == 2
    assert TicketEvent.objects.filter(ticket=ticket, kind="macro", new_value="Chiedi seriale").count() == 1


def test_internal_macro_adds_a_note_and_actions_only_macro_adds_nothing() -> None:
    agent = actor_for(user_with_roles("agent"))
    note_macro = macro(name="Nota", reply_it="Verificato da {{ agent.name }}", reply_is_internal=True)
    actions_only = macro(name="Urgente", actions=[{"type": "set_priority", "value": "urgent"}])
    with time_machine.travel(T0, tick=False):
        ticket = ticket_create(actor=None, **ticket_kwargs())
        note = macro_apply(actor=agent, ticket=ticket, macro_public_id=str(note_macro.public_id))
        nothing = macro_apply(actor=agent, ticket=ticket, macro_public_id=str(actions_only.public_id))
    assert note is not None and note.kind == "note"
    assert nothing is None
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"
    assert SlaClock.objects.get(ticket=ticket, metric="first_response").status == "running"


def test_unknown_inactive_or_other_team_macro_is_not_found_and_changes_nothing() -> None:
    team_model = Ticket._meta.get_field("team").related_model
    other_team = team_model.objects.create(name="Altro")  # type: ignore[union-attr]
    agent = actor_for(user_with_roles("agent"))
    inactive = macro(name="Vecchia", reply_it="x", active=False)
    foreign = macro(name="Altrui", reply_it="x", team=other_team)
    with time_machine.travel(T0, tick=False):
        ticket = ticket_create(actor=None, **ticket_kwargs())
    messages_before = TicketMessage.objects.count()
    for public_id in (str(inactive.public_id), str(foreign.public_id), "not-a-uuid"):
        with pytest.raises(NotFound):
            macro_apply(actor=agent, ticket=ticket, macro_public_id=public_id)
    assert TicketMessage.objects.count() == messages_before
    inactive.refresh_from_db()
    assert inactive.usage_count == 0


def test_portal_customer_cannot_apply_macros() -> None:
    customer = actor_for(user_with_roles("portal_customer"))
    chosen = macro(reply_it="x")
    with time_machine.travel(T0, tick=False):
        ticket = ticket_create(actor=None, **ticket_kwargs())
    with pytest.raises(PermissionDenied):
        macro_apply(actor=customer, ticket=ticket, macro_public_id=str(chosen.public_id))
