"""The regulatory abandon meter of a campaign.

A call is *abandoned* when a live person answered (an answering machine reported by the provider's
AMD is not live) and was not connected to an agent within 2 seconds. The rate is abandoned calls over
live answers in a rolling window: 30 days for the Ofcom-style rule, 24 hours for the UK-style daily
variant; both cap it at 3 %. When the rate nears the cap (``near_cap_ratio`` of it) the dialer falls
back to 1:1 progressive dialling until it has recovered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "CONNECT_GRACE",
    "AbandonRule",
    "AnsweredCall",
    "MeterReading",
    "is_abandoned",
    "meter_reading",
    "rule_window",
]

CONNECT_GRACE = timedelta(seconds=2)


class AbandonRule(StrEnum):
    ROLLING_30_DAYS = "rolling_30_days"
    ROLLING_24_HOURS = "rolling_24_hours"


def rule_window(rule: AbandonRule | str) -> timedelta:
    return {
        AbandonRule.ROLLING_30_DAYS: timedelta(days=30),
        AbandonRule.ROLLING_24_HOURS: timedelta(hours=24),
    }[AbandonRule(rule)]


@dataclass(frozen=True, slots=True)
class AnsweredCall:
    """An answered dial attempt as the meter sees it."""

    answered_at: datetime
    connected_at: datetime | None
    machine: bool = False


def is_abandoned(call: AnsweredCall) -> bool:
    if call.machine:
        return False
    return call.connected_at is None or call.connected_at - call.answered_at > CONNECT_GRACE


@dataclass(frozen=True, slots=True)
class MeterReading:
    rule: str
    window_start: datetime
    window_end: datetime
    live_answers: int
    abandoned: int
    cap_rate: float
    near_cap_ratio: float

    @property
    def rate(self) -> float:
        return self.abandoned / self.live_answers if self.live_answers else 0.0

    @property
    def over_cap(self) -> bool:
        return self.rate > self.cap_rate

    @property
    def near_cap(self) -> bool:
        """At or past the fall-back threshold: the dialer must go 1:1 (progressive)."""
        return self.abandoned > 0 and self.rate >= self.cap_rate * self.near_cap_ratio

    @property
    def headroom(self) -> int:
        """How many more abandoned calls would keep the rate within the cap with no further live answers."""
        return max(0, int(self.cap_rate * self.live_answers + 1e-9) - self.abandoned)


def meter_reading(
    calls: Iterable[AnsweredCall],
    *,
    at: datetime,
    rule: AbandonRule | str = AbandonRule.ROLLING_30_DAYS,
    cap_rate: float = 0.03,
    near_cap_ratio: float = 0.8,
) -> MeterReading:
    """The meter over the calls answered in (at - window, at]. Machines are neither live nor abandoned."""
    start = at - rule_window(rule)
    live = abandoned = 0
    for call in calls:
        if call.machine or not (start < call.answered_at <= at):
            continue
        live += 1
        abandoned += int(is_abandoned(call))
    return MeterReading(
        rule=str(AbandonRule(rule)),
        window_start=start,
        window_end=at,
        live_answers=live,
        abandoned=abandoned,
        cap_rate=cap_rate,
        near_cap_ratio=near_cap_ratio,
    )
