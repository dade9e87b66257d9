"""What other modules may know about the contact center. No Django imports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class IntervalStats:
    """One queue and channel over one reporting interval (15/30/60 min): what WFM forecasts from."""

    queue_code: str
    channel: str
    interval_start: datetime
    interval_minutes: int
    offered: int
    answered: int
    abandoned: int
    answered_within_threshold: int
    average_speed_of_answer_seconds: float
    average_handle_seconds: float
    service_level_percent: float | None


@dataclass(frozen=True, slots=True)
class InteractionSummary:
    """One contact as other modules see it (customer 360 timeline, support ticket side panel)."""

    public_id: str
    number: str
    channel: str
    network: str
    direction: str
    state: str
    outcome: str
    queue_code: str | None
    agent_name: str
    ticket_public_id: str
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    wait_seconds: int
    talk_seconds: int
    hold_seconds: int
    after_call_seconds: int
    wrap_up_code: str | None


@dataclass(frozen=True, slots=True)
class QueueSummary:
    code: str
    name_it: str
    name_en: str
    channels: tuple[str, ...]
    calendar_code: str
    service_level_seconds: int
    service_level_target: int
    active: bool


@dataclass(frozen=True, slots=True)
class AgentStateInterval:
    """One stretch of time an agent (by user id) spent in one state: WFM adherence compares these
    with the schedule. ``ended_at`` is None while the state lasts."""

    user_id: int
    agent_public_id: str
    state: str
    reason: str
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int | None
