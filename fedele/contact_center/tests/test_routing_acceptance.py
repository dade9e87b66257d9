"""The issue's acceptance for routing: 50 agents, 3 skills, 1,000 contacts → every contact reaches
an agent with the required skill, capacity is never exceeded, priorities are respected; and on
PostgreSQL four router workers at once never give one contact to two agents nor overload an agent."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from fedele.contact_center.models import (
    Agent,
    AgentSkill,
    AgentState,
    Interaction,
    InteractionState,
    Offer,
    OfferState,
    RoutingTask,
    RoutingTaskState,
)
from fedele.contact_center.services import presence, routing
from fedele.contact_center.services.interactions import (
    interaction_create,
    interaction_end,
    interaction_enqueue,
)
from fedele.contact_center.tests.factories import AgentFactory, AgentSkillFactory, QueueFactory, SkillFactory

T0 = datetime(2026, 12, 7, 9, 0, 0, tzinfo=UTC)
SKILLS = ("billing", "technical", "sales")


def seed(*, agents: int, contacts: int, seed_value: int) -> tuple[list[Agent], list[Interaction]]:
    rng = random.Random(seed_value)
    queue = QueueFactory(code="main", wrap_up_seconds=0)
    skills = {code: SkillFactory(code=code) for code in SKILLS}
    created = []
    for index in range(agents):
        agent = AgentFactory(capacity={"voice": 1, "chat": 3})
        agent.queues.add(queue)
        for code in rng.sample(SKILLS, rng.randint(1, 3)):
            AgentSkillFactory(agent=agent, skill=skills[code], proficiency=rng.randint(1, 5))
        presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=T0 + timedelta(seconds=index))
        created.append(agent)
    interactions = []
    for index in range(contacts):
        moment = T0 + timedelta(seconds=60 + index)
        interaction = interaction_create(
            channel=rng.choice(("voice", "voice", "chat")),
            direction="inbound",
            from_address=f"+3906{index:08d}",
            at=moment,
            customer_public_id="",
        )
        interaction_enqueue(
            interaction=interaction,
            queue_code="main",
            required_skills={rng.choice(SKILLS): rng.randint(1, 3)},
            priority=rng.randint(0, 5),
            at=moment,
        )
        interactions.append(interaction)
    return created, interactions


def agent_skills() -> dict[int, dict[str, int]]:
    result: dict[int, dict[str, int]] = defaultdict(dict)
    for agent_id, code, level in AgentSkill.objects.values_list("agent_id", "skill__code", "proficiency"):
        result[agent_id][code] = level
    return result


def assert_capacity_respected() -> dict[int, dict[str, int]]:
    loads: dict[int, dict[str, int]] = defaultdict(dict)
    for agent_id, channel in Interaction.objects.filter(state__in=presence.LOAD_STATES).values_list(
        "agent_id", "channel"
    ):
        loads[agent_id][channel] = loads[agent_id].get(channel, 0) + 1
    for agent_id, load in loads.items():
        assert load.get("voice", 0) <= 1, (agent_id, load)
        assert load.get("chat", 0) <= 3, (agent_id, load)
        assert not (load.get("voice", 0) and load.get("chat", 0) > 0 and _voice_came_last(agent_id)), load
    return loads


def _voice_came_last(agent_id: int) -> bool:
    """A chat offered while the agent was on a call would break the cross-channel rule: the newest
    open chat must be older than the open call."""
    open_rows = Offer.objects.filter(
        agent_id=agent_id, interaction__state__in=presence.LOAD_STATES, state__in=("pending", "accepted")
    )
    newest_chat = open_rows.filter(interaction__channel="chat").order_by("-offered_at", "-id").first()
    call = open_rows.filter(interaction__channel="voice").order_by("-offered_at", "-id").first()
    return bool(
        newest_chat and call and (newest_chat.offered_at, newest_chat.pk) > (call.offered_at, call.pk)
    )


@pytest.mark.django_db
@pytest.mark.slow
def test_fifty_agents_three_skills_thousand_contacts() -> None:
    agents, interactions = seed(agents=50, contacts=1000, seed_value=7)
    skills = agent_skills()
    rng = random.Random(11)
    moment = T0 + timedelta(seconds=2000)
    rounds = 0
    while Interaction.objects.exclude(state=InteractionState.ENDED).exists():
        rounds += 1
        assert rounds < 400, "routing stalled"
        before = set(Offer.objects.values_list("pk", flat=True))
        routing.route_pending(limit=10_000, at=moment)
        new_offers = list(
            Offer.objects.exclude(pk__in=before).select_related("task", "interaction").order_by("pk")
        )
        loads = assert_capacity_respected()
        waiting = list(
            RoutingTask.objects.filter(state=RoutingTaskState.WAITING).values(
                "channel", "required_skills", "effective_priority", "enqueued_at"
            )
        )
        for offer in new_offers:
            required = offer.task.required_skills
            ((code, level),) = required.items()
            assert skills[offer.agent_id].get(code, 0) >= level
            # Priority: no contact left waiting ahead of this one that this agent could still take.
            own_key = (-offer.task.effective_priority, offer.task.enqueued_at)
            load = loads.get(offer.agent_id, {})
            for row in waiting:
                ((w_code, w_level),) = row["required_skills"].items()
                ahead = (-row["effective_priority"], row["enqueued_at"]) < own_key
                fits = skills[offer.agent_id].get(w_code, 0) >= w_level and presence.has_room(
                    capacity={"voice": 1, "chat": 3, "email": 5, "sms": 3, "social": 3},
                    load=load,
                    channel=row["channel"],
                )
                assert not (ahead and fits), (offer.pk, row)
        for offer in new_offers:
            routing.offer_accept(offer=offer, agent=offer.agent, at=moment + timedelta(seconds=1))
        moment += timedelta(seconds=2)
        connected = list(Interaction.objects.filter(state=InteractionState.CONNECTED).order_by("pk"))
        for interaction in connected:
            if rng.random() < 0.6:
                interaction_end(interaction=interaction, outcome="handled", at=moment)
        moment += timedelta(seconds=1)
    handled = Interaction.objects.filter(pk__in=[i.pk for i in interactions])
    assert handled.filter(outcome="handled", state=InteractionState.ENDED).count() == 1000
    for interaction in handled:
        ((code, level),) = interaction.required_skills.items()
        assert interaction.agent_id is not None
        assert skills[interaction.agent_id].get(code, 0) >= level
    assert Offer.objects.filter(state=OfferState.ACCEPTED).count() == 1000
    assert len({a.pk for a in agents}) == 50


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_four_concurrent_routers_never_double_assign_nor_overload(settings: Any) -> None:
    from fedele.shared.testing import in_threads

    assert connection.vendor == "postgresql"
    # Only the four workers route: no router run after each commit while seeding.
    settings.CONTACT_CENTER_ROUTE_ON_COMMIT = False
    seed(agents=40, contacts=400, seed_value=3)
    moment = T0 + timedelta(seconds=2000)
    made: list[int] = []

    def work(index: int) -> None:
        for _round in range(6):
            made.append(routing.route_pending(limit=1000, at=moment))

    errors = in_threads(work, 4)
    assert errors == []
    offers = list(Offer.objects.values_list("interaction_id", "agent_id", "state"))
    per_interaction = Counter(interaction_id for interaction_id, _agent, _state in offers)
    assert max(per_interaction.values()) == 1
    assert sum(made) == len(offers) > 0
    assert_capacity_respected()
    assert RoutingTask.objects.filter(state=RoutingTaskState.OFFERED).count() == len(offers)
    skills = agent_skills()
    for interaction_id, agent_id, _state in offers:
        ((code, level),) = Interaction.objects.get(pk=interaction_id).required_skills.items()
        assert skills[agent_id].get(code, 0) >= level
