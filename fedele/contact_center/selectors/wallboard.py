"""The real-time wallboard: per queue and channel, what is waiting now and how the day is going.

"Now" figures: contacts waiting (queued or being offered) and the longest wait. "Today" figures (since
local midnight of the reporting time zone): offered, answered, abandoned, service level, ASA and abandon
rate, by the definitions in ``selectors/reports.py``. Agents by state are per queue (agents belong to
queues, not channels). Cells are coloured by thresholds (``WallboardThreshold`` rows or the defaults).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Min
from django.utils.translation import get_language

from fedele.contact_center.models import (
    Agent,
    AgentState,
    Channel,
    Interaction,
    InteractionState,
    Queue,
    WallboardMetric,
    WallboardThreshold,
)
from fedele.contact_center.selectors.reports import (
    Tally,
    default_time_zone,
    local_midnight,
    tallies_by_queue_channel,
    zone,
)
from fedele.shared import clock

WAITING_STATES = (InteractionState.QUEUED, InteractionState.OFFERED)
AGENT_STATES = (
    AgentState.AVAILABLE,
    AgentState.BUSY,
    AgentState.WRAP_UP,
    AgentState.BREAK,
    AgentState.OFFLINE,
)


@dataclass(frozen=True, slots=True)
class Threshold:
    warning_at: float
    alert_at: float
    lower_is_worse: bool = False

    def level(self, value: float | None) -> str:
        """ "" (fine), "warning" or "danger" for a value; an empty value is never coloured."""
        if value is None:
            return ""
        if self.lower_is_worse:
            if value <= self.alert_at:
                return "danger"
            return "warning" if value <= self.warning_at else ""
        if value >= self.alert_at:
            return "danger"
        return "warning" if value >= self.warning_at else ""


def default_thresholds(queue: Queue) -> dict[str, Threshold]:
    """Without configured rows: amber at the queue's own SL threshold/target, red a step beyond."""
    return {
        WallboardMetric.WAITING: Threshold(5, 10),
        WallboardMetric.LONGEST_WAIT: Threshold(queue.service_level_seconds, queue.service_level_seconds * 2),
        WallboardMetric.SERVICE_LEVEL: Threshold(
            queue.service_level_target, max(0, queue.service_level_target - 10), lower_is_worse=True
        ),
        WallboardMetric.ASA: Threshold(queue.service_level_seconds, queue.service_level_seconds * 2),
        WallboardMetric.ABANDON_RATE: Threshold(5, 10),
    }


def thresholds_for(queues: list[Queue]) -> dict[int, dict[str, Threshold]]:
    rows = list(WallboardThreshold.objects.all())
    defaults = {row.metric: row for row in rows if row.queue_id is None}
    own: dict[tuple[int, str], WallboardThreshold] = {
        (row.queue_id, row.metric): row for row in rows if row.queue_id is not None
    }
    result = {}
    for queue in queues:
        thresholds = default_thresholds(queue)
        for metric in WallboardMetric.values:
            row = own.get((queue.id, metric)) or defaults.get(metric)
            if row is not None:
                thresholds[metric] = Threshold(
                    row.warning_at, row.alert_at, lower_is_worse=metric == WallboardMetric.SERVICE_LEVEL
                )
        result[queue.id] = thresholds
    return result


@dataclass(frozen=True, slots=True)
class Cell:
    value: float | int | None
    level: str


@dataclass(frozen=True, slots=True)
class ChannelRow:
    channel: str
    channel_label: str
    waiting: Cell
    longest_wait_seconds: Cell
    service_level_percent: Cell
    average_speed_of_answer_seconds: Cell
    abandon_rate_percent: Cell
    offered: int
    answered: int
    abandoned: int


@dataclass(frozen=True, slots=True)
class QueueBoard:
    code: str
    name: str
    service_level_seconds: int
    service_level_target: int
    rows: list[ChannelRow]
    agents_by_state: dict[str, int]

    @property
    def agents_total(self) -> int:
        return sum(self.agents_by_state.values())


@dataclass(frozen=True, slots=True)
class Wallboard:
    at: datetime
    time_zone: str
    queues: list[QueueBoard] = field(default_factory=list)
    agents_by_state: dict[str, int] = field(default_factory=dict)

    def fingerprint(self) -> tuple[object, ...]:
        """What a viewer sees, without the clock: pushes happen only when this changes (or on a tick
        when something is waiting, as the longest wait keeps growing)."""
        return tuple(
            (
                board.code,
                tuple(
                    (row.channel, row.waiting.value, row.offered, row.answered, row.abandoned)
                    for row in board.rows
                ),
                tuple(sorted(board.agents_by_state.items())),
            )
            for board in self.queues
        )


def _queue_name(queue: Queue) -> str:
    return queue.name_it if (get_language() or "en").startswith("it") else queue.name_en


def wallboard(*, queue_codes: list[str] | None = None, time_zone: str | None = None) -> Wallboard:
    """Six queries whatever the number of queues, agents and contacts: queues, waiting counts, queue
    members, agents by state, today's sums per queue and channel (made by the database, each contact
    against its own queue's SL threshold) and the wallboard thresholds."""
    now = clock.now()
    tz_name = time_zone or default_time_zone()
    tz = zone(tz_name)
    queues_query = Queue.objects.filter(active=True)
    if queue_codes:
        queues_query = queues_query.filter(code__in=queue_codes)
    queues = list(queues_query.order_by("code"))
    queue_ids = [queue.id for queue in queues]
    waiting = {
        (row["queue_id"], row["channel"]): (row["count"], row["oldest"])
        for row in Interaction.objects.filter(queue_id__in=queue_ids, state__in=WAITING_STATES)
        .order_by()
        .values("queue_id", "channel")
        .annotate(count=Count("id"), oldest=Min("queued_at"))
    }
    agent_states: dict[int, Counter[str]] = {queue_id: Counter() for queue_id in queue_ids}
    everyone: Counter[str] = Counter()
    memberships = Agent.queues.through.objects.filter(queue_id__in=queue_ids, agent__active=True)
    for state, queue_id in memberships.values_list("agent__state", "queue_id"):
        agent_states[queue_id][state] += 1
    for state in Agent.objects.filter(active=True).values_list("state", flat=True):
        everyone[state] += 1
    start_of_day = local_midnight(now.astimezone(tz).date(), tz)
    today = tallies_by_queue_channel(start=start_of_day, end=now)
    thresholds = thresholds_for(queues)
    channel_labels = dict(Channel.choices)
    boards = []
    for queue in queues:
        limits = thresholds[queue.id]
        rows = []
        channels = [channel for channel in Channel.values if channel in (queue.channels or [])]
        for channel in channels:
            count, oldest = waiting.get((queue.id, channel), (0, None))
            longest = int((now - oldest).total_seconds()) if oldest is not None else 0
            tally = today.get((queue.id, channel), Tally())
            rows.append(
                ChannelRow(
                    channel=channel,
                    channel_label=str(channel_labels[channel]),
                    waiting=Cell(count, limits[WallboardMetric.WAITING].level(count)),
                    longest_wait_seconds=Cell(longest, limits[WallboardMetric.LONGEST_WAIT].level(longest)),
                    service_level_percent=Cell(
                        tally.service_level_percent,
                        limits[WallboardMetric.SERVICE_LEVEL].level(tally.service_level_percent),
                    ),
                    average_speed_of_answer_seconds=Cell(
                        tally.average_speed_of_answer_seconds if tally.answered else None,
                        limits[WallboardMetric.ASA].level(
                            tally.average_speed_of_answer_seconds if tally.answered else None
                        ),
                    ),
                    abandon_rate_percent=Cell(
                        tally.abandon_rate_percent,
                        limits[WallboardMetric.ABANDON_RATE].level(tally.abandon_rate_percent),
                    ),
                    offered=tally.offered,
                    answered=tally.answered,
                    abandoned=tally.abandoned,
                )
            )
        boards.append(
            QueueBoard(
                code=queue.code,
                name=_queue_name(queue),
                service_level_seconds=queue.service_level_seconds,
                service_level_target=queue.service_level_target,
                rows=rows,
                agents_by_state={state: agent_states[queue.id].get(state, 0) for state in AGENT_STATES},
            )
        )
    return Wallboard(
        at=now,
        time_zone=tz_name,
        queues=boards,
        agents_by_state={state: everyone.get(state, 0) for state in AGENT_STATES},
    )
