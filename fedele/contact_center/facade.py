"""The only contact-center surface other modules may import. Returns contracts, never ORM objects."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from fedele.contact_center.contracts import (
    AgentStateInterval,
    InteractionSummary,
    IntervalStats,
    QueueSummary,
)


def interval_stats(
    *, start: datetime, end: datetime, interval_minutes: int, queue_code: str | None = None
) -> list[IntervalStats]:
    """Per queue and channel, one IntervalStats per interval from ``start`` (aware) to before ``end``,
    for every queue and channel that was offered at least one contact in the range (quiet intervals
    come as zeros). Definitions: ``fedele.contact_center.selectors.reports``; WFM forecasts from this."""
    from fedele.contact_center.selectors.reports import interval_stats_for

    return interval_stats_for(start=start, end=end, interval_minutes=interval_minutes, queue_code=queue_code)


# --- routing: contacts, queues and agent states for other modules --------------------------------

MAX_SUMMARIES = 100


def _interaction_summary(interaction: Any) -> InteractionSummary:
    return InteractionSummary(
        public_id=str(interaction.public_id),
        number=interaction.number,
        channel=interaction.channel,
        network=interaction.network,
        direction=interaction.direction,
        state=interaction.state,
        outcome=interaction.outcome,
        queue_code=interaction.queue.code if interaction.queue else None,
        agent_name=interaction.agent.display_name if interaction.agent else "",
        ticket_public_id=interaction.ticket_public_id,
        created_at=interaction.created_at,
        answered_at=interaction.answered_at,
        ended_at=interaction.ended_at,
        wait_seconds=interaction.wait_seconds,
        talk_seconds=interaction.talk_seconds,
        hold_seconds=interaction.hold_seconds,
        after_call_seconds=interaction.after_call_seconds,
        wrap_up_code=interaction.wrap_up_code.code if interaction.wrap_up_code else None,
    )


def recent_interactions_for_customer(customer_public_id: str, limit: int = 10) -> list[InteractionSummary]:
    """The customer's contacts on every channel, newest first (at most 100)."""
    from fedele.contact_center.models import Interaction

    limit = max(0, min(limit, MAX_SUMMARIES))
    if not str(customer_public_id or "").strip():
        return []
    rows = (
        Interaction.objects.filter(customer_public_id=str(customer_public_id).strip())
        .select_related("queue", "agent", "wrap_up_code")
        .order_by("-created_at", "-id")[:limit]
    )
    return [_interaction_summary(row) for row in rows]


def interaction_summary(public_id: str) -> InteractionSummary | None:
    import uuid

    from fedele.contact_center.models import Interaction

    try:
        key = uuid.UUID(str(public_id))
    except ValueError:
        return None
    row = Interaction.objects.select_related("queue", "agent", "wrap_up_code").filter(public_id=key).first()
    return _interaction_summary(row) if row else None


def queues(*, active_only: bool = True) -> list[QueueSummary]:
    from fedele.contact_center.models import Queue

    rows = Queue.objects.filter(active=True) if active_only else Queue.objects.all()
    return [
        QueueSummary(
            code=queue.code,
            name_it=queue.name_it,
            name_en=queue.name_en,
            channels=tuple(queue.channels or ()),
            calendar_code=queue.calendar_code,
            service_level_seconds=queue.service_level_seconds,
            service_level_target=queue.service_level_target,
            active=queue.active,
        )
        for queue in rows
    ]


def agent_state_intervals(
    *, start: datetime, end: datetime, user_ids: Iterable[int] | None = None
) -> list[AgentStateInterval]:
    """Every agent state stretch overlapping [start, end), oldest first, cut to the range (durations
    in whole seconds inside the range; an open stretch counts up to ``end``): WFM adherence."""
    from fedele.contact_center.models import AgentStateLog

    rows = (
        AgentStateLog.objects.filter(started_at__lt=end).exclude(ended_at__lte=start).select_related("agent")
    )
    if user_ids is not None:
        rows = rows.filter(agent__user_id__in=list(user_ids))
    result = []
    for row in rows.order_by("started_at", "id"):
        began = max(row.started_at, start)
        finished = min(row.ended_at, end) if row.ended_at else None
        result.append(
            AgentStateInterval(
                user_id=row.agent.user_id,
                agent_public_id=str(row.agent.public_id),
                state=row.state,
                reason=row.reason,
                started_at=began,
                ended_at=finished,
                duration_seconds=int(((finished or end) - began).total_seconds()),
            )
        )
    return result
