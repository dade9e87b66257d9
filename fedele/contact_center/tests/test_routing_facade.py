"""The routing part of the contact-center facade: contracts, never ORM objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fedele.contact_center import facade
from fedele.contact_center.contracts import AgentStateInterval, InteractionSummary
from fedele.contact_center.models import AgentState
from fedele.contact_center.services import presence
from fedele.contact_center.services.interactions import (
    interaction_connect,
    interaction_create,
    interaction_end,
)
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_recent_interactions_for_customer_and_one_summary() -> None:
    from fedele.customers.tests.factories import CustomerFactory

    customer = CustomerFactory(phone="+393471112233")
    agent = AgentFactory(display_name="Luca Verdi")
    first = interaction_create(channel="voice", direction="inbound", from_address="+393471112233", at=T0)
    interaction_connect(interaction=first, agent=agent, at=T0 + timedelta(seconds=5))
    interaction_end(interaction=first, outcome="handled", at=T0 + timedelta(seconds=65))
    second = interaction_create(
        channel="sms", direction="inbound", from_address="+393471112233", at=T0 + timedelta(1)
    )
    found = facade.recent_interactions_for_customer(str(customer.public_id), limit=10)
    assert [s.number for s in found] == [second.number, first.number]
    assert isinstance(found[1], InteractionSummary)
    assert (found[1].agent_name, found[1].talk_seconds, found[1].state, found[1].queue_code) == (
        "Luca Verdi",
        60,
        "ended",
        None,
    )
    assert facade.recent_interactions_for_customer("", limit=10) == []
    assert facade.interaction_summary("not-a-uuid") is None
    summary = facade.interaction_summary(str(second.public_id))
    assert summary is not None and summary.channel == "sms"


def test_queues_and_agent_state_intervals_cut_to_the_range() -> None:
    QueueFactory(code="care", channels=["voice"])
    QueueFactory(code="old", active=False)
    assert [q.code for q in facade.queues()] == ["care"]
    assert [q.code for q in facade.queues(active_only=False)] == ["care", "old"]
    agent = AgentFactory()
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=T0)
    presence.agent_state_set(agent=agent, state=AgentState.BREAK, reason="lunch", at=T0 + timedelta(hours=4))
    intervals = facade.agent_state_intervals(
        start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=5), user_ids=[agent.user_id]
    )
    assert intervals == [
        AgentStateInterval(
            user_id=agent.user_id,
            agent_public_id=str(agent.public_id),
            state="available",
            reason="",
            started_at=T0 + timedelta(hours=1),
            ended_at=T0 + timedelta(hours=4),
            duration_seconds=3 * 3600,
        ),
        AgentStateInterval(
            user_id=agent.user_id,
            agent_public_id=str(agent.public_id),
            state="break",
            reason="lunch",
            started_at=T0 + timedelta(hours=4),
            ended_at=None,
            duration_seconds=3600,
        ),
    ]
    assert facade.agent_state_intervals(start=T0, end=T0 + timedelta(hours=1), user_ids=[]) == []
