"""Presence: chosen states with reasons, the exact state log, automatic wrap-up and its end,
offline refused with a live contact, bad input refused with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from fedele.contact_center.models import AgentState, AgentStateLog, InteractionState
from fedele.contact_center.services import presence, routing
from fedele.contact_center.services.interactions import (
    interaction_connect,
    interaction_create,
    interaction_end,
    interaction_enqueue,
)
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory
from fedele.shared.errors import Conflict, ValidationFailed
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 10, 25, 0, 30, 0, tzinfo=UTC)  # the night Europe/Rome leaves summer time


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_state_log_has_exact_durations_across_the_dst_night() -> None:
    agent = AgentFactory()
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=at(0))
    presence.agent_state_set(agent=agent, state=AgentState.BREAK, reason="coffee", at=at(3600 * 2))
    presence.agent_state_set(
        agent=agent, state=AgentState.BREAK, reason="coffee", at=at(7300)
    )  # same: no row
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=at(7200 + 900))
    presence.agent_state_set(agent=agent, state=AgentState.OFFLINE, at=at(7200 + 900 + 61))
    rows = list(AgentStateLog.objects.filter(agent=agent).values_list("state", "reason", "duration_seconds"))
    assert rows == [
        ("available", "", 7200),
        ("break", "coffee", 900),
        ("available", "", 61),
        ("offline", "", None),
    ]
    totals = presence.state_durations(agent=agent, start=at(1800), end=at(9000))
    assert totals == {"available": 5400 + 61, "break:coffee": 900, "offline": 9000 - 8161}
    assert AuditLog.objects.filter(action="contact_center.agent_state_set").count() == 4


def test_bad_states_and_reasons_change_nothing() -> None:
    agent = AgentFactory()
    with pytest.raises(ValidationFailed):
        presence.agent_state_set(agent=agent, state=AgentState.BUSY, at=at(0))
    with pytest.raises(ValidationFailed):
        presence.agent_state_set(agent=agent, state=AgentState.BREAK, reason="", at=at(0))
    with pytest.raises(ValidationFailed):
        presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, reason="lunch", at=at(0))
    agent.refresh_from_db()
    assert (agent.state, AgentStateLog.objects.count()) == (AgentState.OFFLINE, 0)


def test_offline_with_a_live_contact_is_refused_and_ready_ends_wrap_up() -> None:
    queue = QueueFactory(code="care", wrap_up_seconds=120)
    agent = AgentFactory()
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=at(0))
    call = interaction_create(channel="voice", direction="inbound", from_address="+390612345678", at=at(1))
    interaction_enqueue(interaction=call, queue_code=queue.code, at=at(1))
    interaction_connect(interaction=call, agent=agent, at=at(5))
    with pytest.raises(Conflict) as error:
        presence.agent_state_set(agent=agent, state=AgentState.OFFLINE, at=at(10))
    assert error.value.code == "agent_has_open_contacts"
    agent.refresh_from_db()
    assert agent.state == AgentState.BUSY
    interaction_end(interaction=call, outcome="handled", at=at(65))
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=at(80))  # "ready" before the timer
    call.refresh_from_db()
    agent.refresh_from_db()
    assert (call.state, call.after_call_seconds, call.talk_seconds) == (InteractionState.ENDED, 15, 60)
    assert (agent.state, agent.wrap_up_until) == (AgentState.AVAILABLE, None)


def test_automatic_wrap_up_ends_after_the_queue_time_through_the_router() -> None:
    queue = QueueFactory(code="care", wrap_up_seconds=30)
    agent = AgentFactory()
    agent.queues.add(queue)
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=at(0))
    call = interaction_create(channel="voice", direction="inbound", from_address="+390612345678", at=at(0))
    interaction_enqueue(interaction=call, queue_code="care", at=at(0))
    interaction_connect(interaction=call, agent=agent, at=at(2))
    interaction_end(interaction=call, outcome="handled", at=at(100))
    waiting = interaction_create(
        channel="voice", direction="inbound", from_address="+390612345679", at=at(101)
    )
    interaction_enqueue(interaction=waiting, queue_code="care", at=at(101))
    assert routing.route_pending(limit=5, at=at(129)) == 0  # still in wrap-up
    assert presence.wrap_up_expire_due(at=at(129)) == 0
    assert routing.route_pending(limit=5, at=at(131)) == 1
    call.refresh_from_db()
    agent.refresh_from_db()
    assert (call.state, call.after_call_seconds, call.wrap_up_ended_at) == (
        InteractionState.ENDED,
        30,
        at(130),
    )
    log = list(AgentStateLog.objects.filter(agent=agent).values_list("state", "duration_seconds"))
    assert log == [("available", 2), ("busy", 98), ("wrap_up", 30), ("available", None)]


def test_cc_router_command_runs_once() -> None:
    from io import StringIO

    queue = QueueFactory(code="care")
    agent = AgentFactory()
    agent.queues.add(queue)
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE)
    interaction_enqueue(
        interaction=interaction_create(channel="chat", direction="inbound", from_address="a@example.it"),
        queue_code="care",
    )
    out = StringIO()
    call_command("cc_router", "--once", stdout=out)
    assert out.getvalue().strip() == "1 offers"
