"""The only contact-center surface other modules may import. Returns contracts, never ORM objects."""

from __future__ import annotations

from datetime import datetime

from fedele.contact_center.contracts import IntervalStats


def interval_stats(
    *, start: datetime, end: datetime, interval_minutes: int, queue_code: str | None = None
) -> list[IntervalStats]:
    """Per queue and channel, one IntervalStats per interval from ``start`` (aware) to before ``end``,
    for every queue and channel that was offered at least one contact in the range (quiet intervals
    come as zeros). Definitions: ``fedele.contact_center.selectors.reports``; WFM forecasts from this."""
    from fedele.contact_center.selectors.reports import interval_stats_for

    return interval_stats_for(start=start, end=end, interval_minutes=interval_minutes, queue_code=queue_code)
