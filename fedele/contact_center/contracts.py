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
