"""The router's decision on PostgreSQL in prepared plain SQL (``services.routing_sql``): the rows an
offer writes, the agent's load read under the agent's lock (not the run's snapshot), the capacity and
cross-channel rules in SQL, a task held by another transaction skipped without waiting, two
statements per decision, and the desktop push's payload equal to the ORM path's."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from fedele.contact_center.models import (
    Agent,
    AgentState,
    Interaction,
    InteractionEvent,
    InteractionState,
    Offer,
    OfferState,
    Queue,
    RoutingTask,
    RoutingTaskState,
)
from fedele.contact_center.services import presence, routing
from fedele.contact_center.services.interactions import interaction_create, interaction_enqueue
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory

pytestmark = [pytest.mark.postgres]
LOCK = "WITH task AS MATERIALIZED"
OFFER_IF_ROOM = "WITH load AS MATERIALIZED"
T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _route_only_when_asked(settings: Any) -> None:
    # PostgreSQL only: the module's ``postgres`` marker skips it elsewhere (root conftest).
    settings.CONTACT_CENTER_ROUTE_ON_COMMIT = False


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def agent_in(queue: Queue, *, available_at: float, **fields: Any) -> Agent:
    agent = AgentFactory(**fields)
    agent.queues.add(queue)
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=at(available_at))
    return agent


def contact(queue: str, *, when: float, channel: str = "voice") -> Interaction:
    interaction = interaction_create(
        channel=channel, direction="inbound", from_address="+390612345678", at=at(when)
    )
    return interaction_enqueue(interaction=interaction, queue_code=queue, at=at(when))


def decide(interaction: Interaction, when: float) -> tuple[bool, routing._Snapshot, list[str]]:
    """One decision for the contact's task, as route_pending makes it; returns the statements run."""
    snapshot = routing._Snapshot.load()
    row = RoutingTask.objects.filter(interaction=interaction).values(*routing._TASK_FIELDS).get()
    moment = at(when)
    ranked = routing.rank_agents(
        routing._eligible(row, snapshot, moment),
        strategy=row["strategy"],
        required={},
        preferred_agent_id=None,
    )
    with recorded() as statements:
        made = routing._assign(row["pk"], ranked, snapshot, moment)
    return made, snapshot, statements


@contextmanager
def recorded() -> Iterator[list[str]]:
    """The statements run, by their first words (the SQL text as sent: prepared statements are
    logged by CaptureQueriesContext without it), checked against CaptureQueriesContext's list."""
    statements: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        words = sql.split()
        statements.append(" ".join(words[:4]) if words[0] == "WITH" else " ".join(words[:2]))
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(record):
        yield statements
    # One transaction: BEGIN and COMMIT around the statements, nothing else.
    assert [query["sql"] for query in queries.captured_queries] == ["BEGIN"] + [None] * len(statements) + [
        "COMMIT"
    ]


@pytest.mark.django_db(transaction=True)
def test_an_offer_writes_its_rows_in_two_statements_and_counts_the_load() -> None:
    queue = QueueFactory(code="care")
    agent = agent_in(queue, available_at=10, capacity={"voice": 1, "chat": 3})
    call = contact("care", when=20)
    task = RoutingTask.objects.get(interaction=call)
    made, snapshot, statements = decide(call, 30)
    assert made is True
    # The lock of task, contact and agent; the load count with the conditional writes. No other
    # statement (BEGIN and COMMIT are the transaction's, not logged as queries).
    assert statements == [LOCK, OFFER_IF_ROOM]
    offer = Offer.objects.get(interaction=call)
    assert (offer.task_id, offer.agent_id, offer.state) == (task.pk, agent.pk, OfferState.PENDING)
    assert (offer.offered_at, offer.expires_at, offer.responded_at) == (
        at(30),
        at(30) + timedelta(seconds=task.offer_timeout_seconds),
        None,
    )
    task.refresh_from_db()
    call.refresh_from_db()
    agent.refresh_from_db()
    assert task.state == RoutingTaskState.OFFERED
    assert (call.state, call.agent_id) == (InteractionState.OFFERED, agent.pk)
    assert agent.last_offered_at == at(30)
    event = InteractionEvent.objects.get(interaction=call, kind="offered")
    assert event.data == {"agent_id": agent.pk, "offer": str(offer.public_id), "priority": 0}
    assert event.created_at == at(30)
    # The snapshot now counts the reserved call: the agent has no room for another one.
    assert snapshot.agents[agent.pk].load == {"voice": 1}
    assert snapshot.agents[agent.pk].last_offered_at == at(30)
    assert presence.agent_load(agent.pk) == {"voice": 1}


@pytest.mark.django_db(transaction=True)
def test_the_load_is_read_under_the_lock_not_from_the_snapshot() -> None:
    queue = QueueFactory(code="care")
    first = agent_in(queue, available_at=10, capacity={"voice": 1, "chat": 3})
    second = agent_in(queue, available_at=20, capacity={"voice": 1, "chat": 3})
    earlier = contact("care", when=30)
    later = contact("care", when=31)
    # The run's snapshot is taken while both agents are free...
    snapshot = routing._Snapshot.load()
    # ...then another router gives the earlier call to the longest idle agent.
    assert routing.route_pending(limit=1, at=at(40)) == 1
    assert Offer.objects.get(interaction=earlier).agent_id == first.pk
    row = RoutingTask.objects.filter(interaction=later).values(*routing._TASK_FIELDS).get()
    ranked = routing.rank_agents(
        routing._eligible(row, snapshot, at(41)),
        strategy=row["strategy"],
        required={},
        preferred_agent_id=None,
    )
    assert [view.agent_id for view in ranked] == [first.pk, second.pk]
    with recorded() as statements:
        assert routing._assign(row["pk"], ranked, snapshot, at(41)) is True
    # Lock task+first agent, count (full: nothing written), lock the second agent, count and write.
    assert statements == [LOCK, OFFER_IF_ROOM, "SELECT a.id,", OFFER_IF_ROOM]
    assert Offer.objects.get(interaction=later).agent_id == second.pk
    assert Offer.objects.filter(agent=first).count() == 1
    assert snapshot.agents[first.pk].load == {"voice": 1}
    assert snapshot.agents[second.pk].load == {"voice": 1}
    # Both full for calls, and nobody else: the run stops here.
    assert snapshot.has_any_room() is (any(snapshot.with_room(view) for view in snapshot.agents.values()))


@pytest.mark.django_db(transaction=True)
def test_a_call_in_progress_keeps_a_chat_away_in_sql() -> None:
    queue = QueueFactory(code="care", channels=["voice", "chat"])
    agent = agent_in(queue, available_at=10, capacity={"voice": 1, "chat": 3})
    call = contact("care", when=20)
    chat = contact("care", when=21, channel="chat")
    snapshot = routing._Snapshot.load()  # before the call reached the agent: the chat looks possible
    assert routing.route_pending(limit=1, at=at(30)) == 1
    assert Offer.objects.get(interaction=call).agent_id == agent.pk
    row = RoutingTask.objects.filter(interaction=chat).values(*routing._TASK_FIELDS).get()
    ranked = routing.rank_agents(
        routing._eligible(row, snapshot, at(31)),
        strategy=row["strategy"],
        required={},
        preferred_agent_id=None,
    )
    assert [view.agent_id for view in ranked] == [agent.pk]
    assert routing._assign(row["pk"], ranked, snapshot, at(31)) is False
    assert not Offer.objects.filter(interaction=chat).exists()
    chat.refresh_from_db()
    assert (chat.state, chat.agent_id) == (InteractionState.QUEUED, None)
    assert RoutingTask.objects.get(interaction=chat).state == RoutingTaskState.WAITING
    assert snapshot.agents[agent.pk].load == {"voice": 1}
    assert agent.pk not in snapshot.roomy


@pytest.mark.django_db(transaction=True)
def test_a_task_held_by_another_transaction_is_skipped_without_waiting() -> None:
    queue = QueueFactory(code="care")
    agent_in(queue, available_at=10)
    call = contact("care", when=20)
    locked = threading.Event()
    release = threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Interaction.objects.select_for_update().get(pk=call.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        made, _snapshot, statements = decide(call, 30)
        assert (made, statements) == (False, [LOCK])
        assert not Offer.objects.filter(interaction=call).exists()
        assert RoutingTask.objects.get(interaction=call).state == RoutingTaskState.WAITING
    finally:
        release.set()
        holder.join(10)
    made, _snapshot, _statements = decide(call, 31)
    assert made is True
    assert Offer.objects.filter(interaction=call, state=OfferState.PENDING).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_desktop_push_carries_the_same_payload_as_the_orm_path() -> None:
    queue = QueueFactory(code="care")
    agent = agent_in(queue, available_at=10)
    call = contact("care", when=20)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(presence.agent_group(agent.pk), channel)
    assert routing.route_pending(limit=1, at=at(30)) == 1
    message = async_to_sync(layer.receive)(channel)
    offer = Offer.objects.get(interaction=call)
    task = RoutingTask.objects.select_related("queue").get(interaction=call)
    call.refresh_from_db()
    assert message == {"type": "cc.offer", "data": routing.offer_payload(offer, call, task)}
    assert message["data"]["queue"] == "care"
    assert message["data"]["callback"] is False
