"""Reads for routing: live queue counts, agents with their state and load, workflows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Min, Q

from fedele.contact_center.models import (
    Agent,
    AgentState,
    Interaction,
    Queue,
    RoutingTask,
    RoutingTaskState,
)
from fedele.contact_center.services.presence import LOAD_STATES
from fedele.shared import clock


@dataclass(frozen=True, slots=True)
class QueueLive:
    code: str
    name_it: str
    name_en: str
    channels: list[str]
    waiting: int
    offered: int
    longest_wait_seconds: int
    agents_available: int
    agents_busy: int
    agents_logged_in: int


def queue_live(*, at: datetime | None = None, active_only: bool = True) -> list[QueueLive]:
    """Every queue with its waiting and offered contacts, longest wait and agents by state: four
    grouped queries whatever the number of queues."""
    at = at or clock.now()
    queues = list(Queue.objects.filter(active=True) if active_only else Queue.objects.all())
    tasks: dict[int, dict[str, Any]] = {
        row["queue_id"]: dict(row)
        for row in RoutingTask.objects.filter(state__in=(RoutingTaskState.WAITING, RoutingTaskState.OFFERED))
        .values("queue_id")
        .annotate(
            waiting=Count("id", filter=Q(state=RoutingTaskState.WAITING)),
            offered=Count("id", filter=Q(state=RoutingTaskState.OFFERED)),
            oldest=Min("enqueued_at", filter=Q(state=RoutingTaskState.WAITING)),
        )
        .order_by()
    }
    agents: dict[int, dict[str, Any]] = {
        row["queues"]: dict(row)
        for row in Agent.objects.filter(active=True, queues__isnull=False)
        .values("queues")
        .annotate(
            available=Count("id", filter=Q(state=AgentState.AVAILABLE)),
            busy=Count("id", filter=Q(state__in=(AgentState.BUSY, AgentState.WRAP_UP))),
            logged_in=Count("id", filter=~Q(state=AgentState.OFFLINE)),
        )
        .order_by()
    }
    result = []
    for queue in queues:
        task_row: dict[str, Any] = tasks.get(queue.pk, {})
        agent_row: dict[str, Any] = agents.get(queue.pk, {})
        oldest = task_row.get("oldest")
        result.append(
            QueueLive(
                code=queue.code,
                name_it=queue.name_it,
                name_en=queue.name_en,
                channels=list(queue.channels or []),
                waiting=task_row.get("waiting", 0),
                offered=task_row.get("offered", 0),
                longest_wait_seconds=max(0, int((at - oldest).total_seconds())) if oldest else 0,
                agents_available=agent_row.get("available", 0),
                agents_busy=agent_row.get("busy", 0),
                agents_logged_in=agent_row.get("logged_in", 0),
            )
        )
    return result


def agent_for_user(user_id: int) -> Agent | None:
    return Agent.objects.filter(user_id=user_id, active=True).first()


def agent_loads(agent_ids: list[int]) -> dict[int, dict[str, int]]:
    loads: dict[int, dict[str, int]] = {}
    for agent_id, channel, count in (
        Interaction.objects.filter(agent_id__in=agent_ids, state__in=LOAD_STATES)
        .values_list("agent_id", "channel")
        .annotate(count=Count("id"))
        .order_by()
    ):
        loads.setdefault(agent_id, {})[channel] = count
    return loads


def agent_list() -> list[Agent]:
    return list(Agent.objects.prefetch_related("queues", "skills__skill").select_related("user"))


def queue_position(interaction_id: int) -> int | None:
    """The contact's place in its queue as the router serves it: 1 + the waiting contacts of the
    same queue with a higher effective priority, or the same priority and an earlier place in line
    (an overflowed or callback contact keeps its original place). None when it isn't waiting."""
    task = (
        RoutingTask.objects.filter(interaction_id=interaction_id, state=RoutingTaskState.WAITING)
        .values("pk", "queue_id", "effective_priority", "enqueued_at")
        .first()
    )
    if task is None:
        return None
    ahead = (
        RoutingTask.objects.filter(queue_id=task["queue_id"], state=RoutingTaskState.WAITING)
        .filter(
            Q(effective_priority__gt=task["effective_priority"])
            | Q(effective_priority=task["effective_priority"], enqueued_at__lt=task["enqueued_at"])
            | Q(
                effective_priority=task["effective_priority"],
                enqueued_at=task["enqueued_at"],
                pk__lt=task["pk"],
            )
        )
        .count()
    )
    return ahead + 1
