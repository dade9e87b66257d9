"""The SLA scheduler job: warning once, breach once, escalations, idempotence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.shared.models import AuditLog, Notification, OutboxEvent
from fedele.support.calendars import clock_cache_clear
from fedele.support.models import EscalationRule, SlaClock, SlaPolicy, TeamSettings, Ticket, TicketEvent
from fedele.support.services.sla import sla_run_due
from fedele.support.services.tickets import message_add, ticket_create
from fedele.support.tests.factories import ticket_kwargs

pytestmark = pytest.mark.django_db
ROME = ZoneInfo("Europe/Rome")
TEAM_MODEL: Any = Ticket._meta.get_field("team").related_model


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _fresh_clocks() -> Iterator[None]:
    clock_cache_clear()
    yield


def urgent_ticket(**overrides: Any) -> Ticket:
    with time_machine.travel(rome(2026, 11, 23, 9, 0), tick=False):
        return ticket_create(actor=None, **ticket_kwargs(priority="urgent", **overrides))  # first response 60


def breach_events() -> int:
    return OutboxEvent.objects.filter(event_type="support.sla_breached").count()


def test_warning_then_breach_exactly_once() -> None:
    ticket = urgent_ticket()
    assert sla_run_due(rome(2026, 11, 23, 9, 29)) == {"warnings": 0, "breaches": 0, "escalations": 0}
    assert sla_run_due(rome(2026, 11, 23, 9, 30)) == {"warnings": 1, "breaches": 0, "escalations": 0}
    first = SlaClock.objects.get(ticket=ticket, metric="first_response")
    assert first.warned_at == rome(2026, 11, 23, 9, 30)
    assert TicketEvent.objects.filter(ticket=ticket, kind="sla_warning", field="first_response").count() == 1
    assert sla_run_due(rome(2026, 11, 23, 9, 45)) == {"warnings": 0, "breaches": 0, "escalations": 0}
    assert breach_events() == 0
    assert sla_run_due(rome(2026, 11, 23, 10, 0)) == {"warnings": 0, "breaches": 1, "escalations": 0}
    assert sla_run_due(rome(2026, 11, 23, 10, 5)) == {"warnings": 0, "breaches": 0, "escalations": 0}
    first.refresh_from_db()
    assert first.breached_at == rome(2026, 11, 23, 10, 0)
    ticket.refresh_from_db()
    assert ticket.sla_breached is True
    assert breach_events() == 1
    payload = OutboxEvent.objects.get(event_type="support.sla_breached").payload
    assert payload["metric"] == "first_response"
    assert payload["number"] == ticket.number
    assert TicketEvent.objects.filter(ticket=ticket, kind="sla_breached").count() == 1
    # A late reply is fulfilled but not met; the breach stays on the ticket.
    with time_machine.travel(rome(2026, 11, 23, 10, 30), tick=False):
        message_add(actor=actor_for(user_with_roles("agent")), ticket=ticket, kind="reply", body="Scusate")
    first.refresh_from_db()
    assert first.met is False
    ticket.refresh_from_db()
    assert ticket.sla_breached is True


def test_breach_detected_late_skips_the_warning() -> None:
    ticket = urgent_ticket()
    assert sla_run_due(rome(2026, 11, 23, 12, 0)) == {"warnings": 0, "breaches": 1, "escalations": 0}
    assert sla_run_due(rome(2026, 11, 23, 12, 1))["warnings"] == 0
    assert TicketEvent.objects.filter(ticket=ticket, kind="sla_warning").count() == 0


def test_warning_counts_business_minutes_across_the_weekend() -> None:
    with time_machine.travel(rome(2026, 11, 20, 17, 50), tick=False):
        ticket = ticket_create(actor=None, **ticket_kwargs(priority="urgent"))
    first = SlaClock.objects.get(ticket=ticket, metric="first_response")
    assert first.due_at.astimezone(ROME) == rome(2026, 11, 23, 9, 50)
    # Friday 17:55: 55 business minutes left — no warning; Monday 09:20: 30 left → warning.
    assert sla_run_due(rome(2026, 11, 20, 17, 55))["warnings"] == 0
    assert sla_run_due(rome(2026, 11, 22, 23, 0))["warnings"] == 0
    assert sla_run_due(rome(2026, 11, 23, 9, 20))["warnings"] == 1


def test_a_clock_paused_after_its_due_time_still_breaches_once() -> None:
    ticket = urgent_ticket()
    agent = actor_for(user_with_roles("agent"))
    with time_machine.travel(rome(2026, 11, 23, 10, 30), tick=False):
        message_add(actor=agent, ticket=ticket, kind="note", body="x", new_status="pending_third_party")
    assert SlaClock.objects.get(ticket=ticket, metric="first_response").status == "paused"
    assert sla_run_due(rome(2026, 11, 23, 11, 0))["breaches"] == 1
    assert sla_run_due(rome(2026, 11, 23, 11, 1))["breaches"] == 0


def test_paused_clock_before_due_does_not_breach() -> None:
    ticket = urgent_ticket()
    agent = actor_for(user_with_roles("agent"))
    with time_machine.travel(rome(2026, 11, 23, 9, 10), tick=False):
        message_add(actor=agent, ticket=ticket, kind="note", body="x", new_status="pending_third_party")
    assert sla_run_due(rome(2026, 11, 30, 9, 0)) == {"warnings": 0, "breaches": 0, "escalations": 0}


def test_escalations_on_warning_and_breach() -> None:
    team = TEAM_MODEL.objects.create(name="Secondo livello")
    supervisor = user_with_roles("supervisor")
    other_supervisor = user_with_roles("supervisor")
    watcher = user_with_roles("agent")
    settings_row = TeamSettings.objects.create(team=team)
    settings_row.supervisors.add(supervisor)
    policy = SlaPolicy.objects.get(name="Standard")
    EscalationRule.objects.create(
        policy=policy,
        metric="first_response",
        when="warning",
        actions=[{"type": "notify_user", "user": str(watcher.public_id)}],
    )
    EscalationRule.objects.create(
        policy=policy,
        metric="",
        when="breach",
        actions=[
            {"type": "assign_team", "team": str(team.public_id)},
            {"type": "raise_priority"},
            {"type": "notify_supervisors"},
        ],
    )
    EscalationRule.objects.create(
        policy=policy, metric="resolution", when="warning", actions=[{"type": "raise_priority"}]
    )
    with time_machine.travel(rome(2026, 11, 23, 9, 0), tick=False):
        ticket = ticket_create(actor=None, **ticket_kwargs(priority="high"))  # first 120, resolution 1080
    assert sla_run_due(rome(2026, 11, 23, 10, 30)) == {"warnings": 1, "breaches": 0, "escalations": 1}
    assert Notification.objects.filter(recipient=watcher).count() == 1
    assert sla_run_due(rome(2026, 11, 23, 11, 0)) == {"warnings": 0, "breaches": 1, "escalations": 3}
    ticket.refresh_from_db()
    assert ticket.team_id == team.pk
    assert ticket.priority == "urgent"
    # Priority raised: the resolution clock is retargeted to urgent (540 min) from its original start.
    resolution = SlaClock.objects.get(ticket=ticket, metric="resolution")
    assert resolution.target_minutes == 540
    assert resolution.due_at.astimezone(ROME) == rome(2026, 11, 23, 18, 0)
    assert list(Notification.objects.filter(level="error").values_list("recipient_id", flat=True)) == [
        supervisor.pk
    ]
    assert not Notification.objects.filter(recipient=other_supervisor).exists()
    assert TicketEvent.objects.filter(ticket=ticket, kind="escalated").count() == 4
    assert AuditLog.objects.filter(action="support.sla_escalation.raise_priority").count() == 1
    # Idempotent: nothing more on later runs (the resolution warning already raised nothing more: urgent).
    again = sla_run_due(rome(2026, 11, 23, 11, 1))
    assert again["breaches"] == 0 and again["escalations"] == 0
    assert Notification.objects.count() == 2


def test_notify_supervisors_falls_back_to_the_supervisor_role() -> None:
    first_supervisor = user_with_roles("supervisor")
    second_supervisor = user_with_roles("supervisor")
    user_with_roles("agent")
    EscalationRule.objects.create(
        policy=SlaPolicy.objects.get(name="Standard"), when="breach", actions=[{"type": "notify_supervisors"}]
    )
    urgent_ticket()
    assert sla_run_due(rome(2026, 11, 23, 10, 0))["escalations"] == 1
    assert sorted(Notification.objects.values_list("recipient_id", flat=True)) == sorted(
        [first_supervisor.pk, second_supervisor.pk]
    )


def test_raise_priority_stops_at_urgent_and_unknown_actions_are_ignored() -> None:
    EscalationRule.objects.create(
        policy=SlaPolicy.objects.get(name="Standard"),
        when="breach",
        actions=[
            {"type": "raise_priority"},
            {"type": "launch_rockets"},
            {"type": "assign_team", "team": "nope"},
        ],
    )
    ticket = urgent_ticket()
    assert sla_run_due(rome(2026, 11, 23, 10, 0)) == {"warnings": 0, "breaches": 1, "escalations": 0}
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"
