"""Triggers (conditions, actions, loop guard), time rules (once per reference), render_template."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.test import override_settings

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import customer_attributes
from fedele.shared.errors import ValidationFailed
from fedele.support.models import Ticket, TicketEvent, TicketMessage, TimeRule, TimeRuleFiring, Trigger
from fedele.support.services import automations
from fedele.support.services.automations import render_template, time_rules_run
from fedele.support.services.sla import sla_run_due
from fedele.support.services.tickets import message_add, ticket_create, ticket_update
from fedele.support.tests.factories import TicketFactory, ticket_kwargs

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TEAM_MODEL: Any = Ticket._meta.get_field("team").related_model


def trigger(
    event: str, conditions: list[dict[str, Any]], actions: list[dict[str, Any]], **extra: Any
) -> Trigger:
    return Trigger.objects.create(
        name=extra.pop("name", f"{event} trigger"),
        event=event,
        conditions=conditions,
        actions=actions,
        created_at=T0,
        **extra,
    )


def tags(ticket: Ticket) -> list[str]:
    return sorted(ticket.tags.values_list("name", flat=True))


def test_created_trigger_with_conditions_sets_priority_tag_and_note() -> None:
    vip = trigger(
        "created",
        [
            {"field": "subject", "operator": "contains", "value": "fattura"},
            {"field": "channel", "operator": "in", "value": ["email", "portal"]},
        ],
        [
            {"type": "set_priority", "value": "high"},
            {"type": "add_tag", "value": "billing"},
            {"type": "add_note", "value": "Ticket {{ ticket.number }} smistato"},
        ],
        name="Fatture",
    )
    with time_machine.travel(T0, tick=False):
        matching = ticket_create(actor=None, **ticket_kwargs(subject="Fattura sbagliata"))
        other = ticket_create(actor=None, **ticket_kwargs(subject="Modem rotto"))
    matching.refresh_from_db()
    assert matching.priority == "high"
    assert tags(matching) == ["billing"]
    note = TicketMessage.objects.get(ticket=matching, kind="note")
    assert note.body_text == f"Ticket {matching.number} smistato"
    event = TicketEvent.objects.get(ticket=matching, kind="automation")
    assert event.new_value == "Fatture"
    assert event.data["actions"] == ["set_priority", "add_tag", "add_note"]
    other.refresh_from_db()
    assert other.priority == "normal"
    assert not TicketEvent.objects.filter(ticket=other, kind="automation").exists()
    vip.refresh_from_db()
    assert vip.run_count == 1
    # The SLA follows the trigger's priority change (high: 120 minutes first response).
    assert matching.first_response_due_at == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 10:00 Rome + 2 h


def test_triggers_do_not_fire_each_other_loop_guard() -> None:
    trigger("updated", [], [{"type": "add_tag", "value": "touched"}], name="A")
    trigger("status_changed", [], [{"type": "set_priority", "value": "urgent"}], name="B")
    agent = actor_for(user_with_roles("agent"))
    with time_machine.travel(T0, tick=False):
        ticket = ticket_create(actor=None, **ticket_kwargs())
        ticket_update(actor=agent, ticket=ticket, changes={"subject": "Nuovo oggetto"})
    ticket.refresh_from_db()
    assert tags(ticket) == ["touched"]
    assert ticket.priority == "normal"  # the tag change by A did not fire "updated"/"status_changed"
    assert Trigger.objects.get(name="A").run_count == 1
    assert Trigger.objects.get(name="B").run_count == 0


def test_trigger_order_each_sees_previous_changes() -> None:
    trigger("created", [], [{"type": "set_priority", "value": "urgent"}], name="first", position=1)
    trigger(
        "created",
        [{"field": "priority", "operator": "is", "value": "urgent"}],
        [{"type": "add_tag", "value": "escalated"}],
        name="second",
        position=2,
    )
    with time_machine.travel(T0, tick=False):
        ticket = ticket_create(actor=None, **ticket_kwargs())
    assert tags(ticket) == ["escalated"]


def test_condition_operators() -> None:
    team = TEAM_MODEL.objects.create(name="Rete")
    customer = CustomerFactory(segment="business")
    ticket = TicketFactory(subject="Linea assente", priority="high", team=team, customer=customer)
    ticket.tags.create(name="vip")
    customer_attributes.register("loyalty_tier", lambda _public_id: "gold")
    try:
        holds = automations.condition_holds
        assert holds(ticket, {"field": "priority", "operator": "is", "value": "HIGH"})
        assert not holds(ticket, {"field": "priority", "operator": "is_not", "value": "high"})
        assert holds(ticket, {"field": "priority", "operator": "in", "value": "urgent, high"})
        assert holds(ticket, {"field": "priority", "operator": "not_in", "value": ["low"]})
        assert holds(ticket, {"field": "subject", "operator": "not_contains", "value": "modem"})
        assert holds(ticket, {"field": "tag", "operator": "is", "value": "vip"})
        assert holds(ticket, {"field": "tag", "operator": "is_not", "value": "spam"})
        assert not holds(ticket, {"field": "tag", "operator": "not_in", "value": ["vip", "x"]})
        assert holds(ticket, {"field": "team", "operator": "is", "value": str(team.public_id)})
        assert holds(ticket, {"field": "assignee", "operator": "is_not_set"})
        assert holds(ticket, {"field": "customer_segment", "operator": "is", "value": "business"})
        assert holds(ticket, {"field": "loyalty_tier", "operator": "is", "value": "gold"})
        assert holds(ticket, {"field": "status_kind", "operator": "is", "value": "new"})
        assert holds(ticket, {"field": "category", "operator": "is_not_set"})
        assert not holds(ticket, {"field": "priority", "operator": "bogus", "value": "high"})
        with pytest.raises(ValidationFailed):
            holds(ticket, {"field": "nonsense", "operator": "is", "value": "x"})
    finally:
        customer_attributes.unregister("loyalty_tier")


def test_customer_and_agent_reply_events_and_set_status() -> None:
    trigger(
        "customer_replied",
        [{"field": "body", "operator": "contains", "value": "urgente"}],
        [{"type": "set_priority", "value": "urgent"}, {"type": "remove_tag", "value": "calm"}],
    )
    trigger("agent_replied", [], [{"type": "set_field", "field": "contacted", "value": True}])
    agent = actor_for(user_with_roles("agent"))
    with time_machine.travel(T0, tick=False):
        ticket = ticket_create(actor=None, **ticket_kwargs(tags=["calm"]))
        message_add(actor=agent, ticket=ticket, kind="reply", body="Ciao")
        message_add(actor=None, ticket=ticket, kind="customer", body="È urgente!")
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"
    assert tags(ticket) == []


def test_failing_action_does_not_block_the_change() -> None:
    trigger(
        "created",
        [],
        [{"type": "assign_team", "value": "00000000-0000-0000-0000-000000000000"}],
        name="broken",
    )
    with time_machine.travel(T0, tick=False):
        ticket = ticket_create(actor=None, **ticket_kwargs())
    event = TicketEvent.objects.get(ticket=ticket, kind="automation")
    assert event.new_value == "broken"
    assert "error" in event.data
    assert Trigger.objects.get(name="broken").run_count == 0


def test_sla_breached_trigger_runs_from_the_scheduler() -> None:
    trigger("sla_breached", [], [{"type": "add_tag", "value": "late"}])
    with time_machine.travel(T0, tick=False):
        ticket = ticket_create(actor=None, **ticket_kwargs(priority="urgent"))
    sla_run_due(T0 + timedelta(hours=2))
    assert tags(ticket) == ["late"]


@override_settings(FEDELE_PUBLIC_URL="https://assistenza.example.it")
def test_webhook_action_posts_after_commit_signed() -> None:
    trigger("created", [], [{"type": "webhook", "url": "https://hooks.example.it/fedele"}])
    response = mock.Mock(status_code=204)
    with (
        mock.patch("httpx.post", return_value=response) as post,
        time_machine.travel(T0, tick=False),
    ):
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            ticket = ticket_create(actor=None, **ticket_kwargs())
    assert post.call_count == 1
    url = post.call_args.args[0]
    assert url == "https://hooks.example.it/fedele"
    headers = post.call_args.kwargs["headers"]
    assert headers["Fedele-Signature"].startswith("t=")
    import json

    body = json.loads(post.call_args.kwargs["content"])
    assert body["ticket"]["number"] == ticket.number
    assert body["event"] == "support.automation"


def test_webhook_to_a_private_address_is_refused_at_configuration() -> None:
    with override_settings(FEDELE_WEBHOOK_ALLOW_PRIVATE_TARGETS=False), pytest.raises(ValidationFailed):
        automations.validate_actions([{"type": "webhook", "url": "http://127.0.0.1:8000/x"}])
    with pytest.raises(ValidationFailed):
        automations.validate_actions([{"type": "teleport"}])
    with pytest.raises(ValidationFailed):
        automations.validate_actions([{"type": "set_priority", "value": "extreme"}])


def test_render_template_replaces_known_variables_only() -> None:
    customer = CustomerFactory(kind="person", first_name="Giulia", last_name="Bianchi")
    ticket = TicketFactory(number="T-000777", subject="Router", customer=customer)
    agent = user_with_roles("agent", first_name="Paolo", last_name="Verdi")
    with override_settings(FEDELE_PUBLIC_URL="https://a.example.it"):
        text = render_template(
            "Ciao {{ customer.first_name }} ({{customer.name}}), {{ ticket.number }} «{{ ticket.subject }}» "
            "{{ agent.name }} {{ ticket.url }} {{ ticket.secret }} {% load x %}",
            ticket=ticket,
            agent=agent,
        )
    assert text.startswith(
        f"Ciao Giulia ({customer.display_name}), T-000777 «Router» Paolo Verdi https://a.example.it/"
    )
    assert str(ticket.public_id) in text
    assert text.endswith("{{ ticket.secret }} {% load x %}")


def test_time_rule_fires_once_per_reference_time() -> None:
    rule = TimeRule.objects.create(
        name="Chiudi i risolti",
        status_kind="solved",
        since_field="solved_at",
        hours=72,
        actions=[{"type": "set_status", "value": "closed"}],
        created_at=T0,
    )
    agent = actor_for(user_with_roles("agent"))
    with time_machine.travel(T0, tick=False):
        ticket = ticket_create(actor=None, **ticket_kwargs())
        ticket_update(actor=agent, ticket=ticket, changes={"status": "solved"})
    assert time_rules_run(T0 + timedelta(hours=71)) == 0
    with time_machine.travel(T0 + timedelta(hours=72), tick=False):
        assert time_rules_run(T0 + timedelta(hours=72)) == 1
        assert time_rules_run(T0 + timedelta(hours=73)) == 0
    ticket.refresh_from_db()
    assert ticket.status_kind == "closed"
    assert TimeRuleFiring.objects.filter(rule=rule, ticket=ticket).count() == 1
    assert (
        TicketEvent.objects.filter(ticket=ticket, kind="automation", new_value="Chiudi i risolti").count()
        == 1
    )


def test_time_rule_reminder_fires_again_for_a_new_reference() -> None:
    TimeRule.objects.create(
        name="Promemoria",
        status_kind="pending",
        since_field="last_agent_message_at",
        hours=48,
        actions=[{"type": "add_tag", "value": "reminded"}],
        created_at=T0,
    )
    agent = actor_for(user_with_roles("agent"))
    with time_machine.travel(T0, tick=False):
        ticket = ticket_create(actor=None, **ticket_kwargs())
        message_add(actor=agent, ticket=ticket, kind="reply", body="?", new_status="pending_customer")
    assert time_rules_run(T0 + timedelta(hours=49)) == 1
    assert time_rules_run(T0 + timedelta(hours=50)) == 0
    with time_machine.travel(T0 + timedelta(hours=50), tick=False):
        message_add(actor=agent, ticket=ticket, kind="reply", body="??", new_status="pending_customer")
    assert time_rules_run(T0 + timedelta(hours=99)) == 1
    assert TimeRuleFiring.objects.filter(ticket=ticket).count() == 2


def test_send_template_action_emails_the_requester_in_their_language_after_commit() -> None:
    from django.core import mail
    from django.test import TestCase

    trigger(
        "created",
        [{"field": "channel", "operator": "is", "value": "portal"}],
        [
            {
                "type": "send_template",
                "to": "requester",
                "subject_it": "Abbiamo ricevuto {{ ticket.number }}",
                "subject_en": "We received {{ ticket.number }}",
                "body_it": "Gentile {{ customer.first_name }}, grazie.",
                "body_en": "Dear {{ customer.first_name }}, thank you.",
            }
        ],
    )
    with time_machine.travel(T0, tick=False), TestCase.captureOnCommitCallbacks(execute=True):
        ticket = ticket_create(actor=None, **ticket_kwargs(language="en", requester_name="John Smith"))
    sent = [message for message in mail.outbox if message.subject.startswith("We received")]
    assert len(sent) == 1
    assert ticket.number in sent[0].subject
    assert sent[0].to == ["mario.rossi@example.it"]
    assert "Dear John, thank you." in sent[0].body
