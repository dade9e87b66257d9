"""Business time: opening hours per weekday in a calendar's own time zone, minus public holidays
(``holidays`` package, country + optional subdivision) and the calendar's own closed days.

All arithmetic is on aware datetimes. Each local day's open intervals are built as aware datetimes
in the calendar's zone (zoneinfo), so a DST day has its real length; the walk goes day by day, which
is fast enough for targets of weeks (5400 business minutes ≈ two calendar weeks ≈ 14 steps).
"""

from __future__ import annotations

import itertools
import threading
import time as monotonic_time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_library
from django.utils.translation import gettext as _

from fedele.shared.errors import ValidationFailed

if TYPE_CHECKING:
    from fedele.support.models import BusinessCalendar

# A calendar closed for this many consecutive days is treated as broken rather than searched forever.
MAX_CLOSED_DAYS = 3 * 366
CACHE_SECONDS = 60.0


class CalendarNeverOpen(ValidationFailed):
    """The calendar has no opening hours (or is closed for years): no due time can be computed."""


@dataclass(frozen=True, slots=True)
class CalendarSpec:
    """A business calendar as plain values (built from the tables, or written directly in tests).

    ``hours`` maps weekday (0 = Monday) to its open intervals as (start, end) local wall times.
    ``closed_days`` are one-off closures; ``recurring_closed_days`` are (month, day) closed every year.
    """

    timezone: str = "Europe/Rome"
    hours: Mapping[int, Sequence[tuple[time, time]]] = field(default_factory=dict)
    holiday_country: str = ""
    holiday_subdivision: str = ""
    closed_days: frozenset[date] = frozenset()
    recurring_closed_days: frozenset[tuple[int, int]] = frozenset()


def validate_hours(hours: Iterable[tuple[int, time, time]]) -> None:
    """Configuration-time check: at least one interval, weekdays 0–6, start before end, no overlaps."""
    by_day: dict[int, list[tuple[time, time]]] = {}
    for weekday, starts_at, ends_at in hours:
        if starts_at.tzinfo is not None or ends_at.tzinfo is not None:
            raise ValidationFailed(
                _("Opening hours are local times of the calendar's time zone: give them without an offset."),
                code="time_with_offset",
                fields={"hours": _("Without a time zone offset.")},
            )
        if not 0 <= weekday <= 6:
            raise ValidationFailed(
                _("A weekday must be between 0 (Monday) and 6 (Sunday)."), code="bad_weekday"
            )
        if ends_at <= starts_at:
            raise ValidationFailed(
                _("Every interval must end after it starts."), code="bad_interval", fields={"hours": ""}
            )
        by_day.setdefault(weekday, []).append((starts_at, ends_at))
    if not by_day:
        raise ValidationFailed(
            _("A business calendar needs at least one opening interval."),
            code="calendar_without_hours",
            fields={"hours": _("Add at least one opening interval.")},
        )
    for intervals in by_day.values():
        intervals.sort()
        for (_start, previous_end), (next_start, _end) in itertools.pairwise(intervals):
            if next_start < previous_end:
                raise ValidationFailed(
                    _("Opening intervals of the same day must not overlap."), code="overlapping_hours"
                )


def validate_holiday_region(country: str, subdivision: str) -> None:
    """Configuration-time check that the ``holidays`` package knows the country/subdivision."""
    if not country:
        if subdivision:
            raise ValidationFailed(
                _("A province/region needs a country."), code="bad_holiday_region", fields={"subdivision": ""}
            )
        return
    try:
        holidays_library.country_holidays(country, subdiv=subdivision or None, years=2026)
    except NotImplementedError as error:
        raise ValidationFailed(
            _("Unknown country or province for public holidays."),
            code="bad_holiday_region",
            fields={"holiday_country": str(error)},
        ) from error


def validate_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValidationFailed(
            _("Unknown time zone."), code="bad_timezone", fields={"timezone": _("Unknown time zone.")}
        ) from error


@lru_cache(maxsize=256)
def _public_holidays(country: str, subdivision: str, year: int) -> frozenset[date]:
    calendar = holidays_library.country_holidays(country, subdiv=subdivision or None, years=year)
    return frozenset(calendar.keys())


class BusinessClock:
    """Business-time arithmetic for one calendar. Instances are immutable and safe to share."""

    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self.zone = ZoneInfo(spec.timezone)
        self._hours: dict[int, tuple[tuple[time, time], ...]] = {
            weekday: tuple(sorted(intervals)) for weekday, intervals in spec.hours.items() if intervals
        }

    # -- days -------------------------------------------------------------------------------------

    def is_holiday(self, day: date) -> bool:
        spec = self.spec
        if day in spec.closed_days or (day.month, day.day) in spec.recurring_closed_days:
            return True
        if spec.holiday_country:
            return day in _public_holidays(spec.holiday_country, spec.holiday_subdivision, day.year)
        return False

    def _require_hours(self) -> None:
        if not self._hours:
            raise CalendarNeverOpen(
                _("This business calendar has no opening hours."), code="calendar_without_hours"
            )

    def intervals_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open intervals of a local day as aware datetimes in the calendar's zone (empty if closed)."""
        intervals = self._hours.get(day.weekday())
        if not intervals or self.is_holiday(day):
            return []
        result = []
        for starts_at, ends_at in intervals:
            start = _as_utc(datetime.combine(day, starts_at, tzinfo=self.zone))
            end = _as_utc(datetime.combine(day, ends_at, tzinfo=self.zone))
            if end > start:
                result.append((start, end))
        return result

    def _local_day(self, moment: datetime) -> date:
        return _aware(moment).astimezone(self.zone).date()

    # -- arithmetic -------------------------------------------------------------------------------

    def add_business_minutes(self, start: datetime, minutes: int) -> datetime:
        """The moment ``minutes`` business minutes after ``start`` (UTC). Zero returns ``start``;
        a target that ends exactly at closing time returns the closing time."""
        return self.add_business_seconds(start, minutes * 60)

    def add_business_seconds(self, start: datetime, seconds: int) -> datetime:
        if seconds < 0:
            raise ValidationFailed(_("Business time to add cannot be negative."), code="negative_duration")
        start = _as_utc(_aware(start))
        if seconds == 0:
            return start
        self._require_hours()
        remaining = timedelta(seconds=seconds)
        day = self._local_day(start)
        closed_run = 0
        while True:
            intervals = self.intervals_on(day)
            closed_run = 0 if intervals else closed_run + 1
            if closed_run > MAX_CLOSED_DAYS:
                raise CalendarNeverOpen(
                    _("This business calendar is never open."), code="calendar_never_open"
                )
            for interval_start, interval_end in intervals:
                begin = max(interval_start, start)
                if begin >= interval_end:
                    continue
                available = interval_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += timedelta(days=1)

    def business_seconds_between(self, start: datetime, end: datetime) -> int:
        """Open seconds in [start, end); negative when end is before start."""
        start = _as_utc(_aware(start))
        end = _as_utc(_aware(end))
        if end < start:
            return -self.business_seconds_between(end, start)
        total = timedelta(0)
        day = self._local_day(start)
        last_day = self._local_day(end)
        while day <= last_day:
            for interval_start, interval_end in self.intervals_on(day):
                begin = max(interval_start, start)
                finish = min(interval_end, end)
                if finish > begin:
                    total += finish - begin
            day += timedelta(days=1)
        return int(total.total_seconds())

    def is_open(self, at: datetime) -> bool:
        at = _as_utc(_aware(at))
        return any(start <= at < end for start, end in self.intervals_on(self._local_day(at)))

    def next_open(self, at: datetime) -> datetime:
        """``at`` itself when open, otherwise the next opening moment (UTC)."""
        self._require_hours()
        at = _as_utc(_aware(at))
        day = self._local_day(at)
        for _offset in range(MAX_CLOSED_DAYS + 8):
            for interval_start, interval_end in self.intervals_on(day):
                if at < interval_end:
                    return max(at, interval_start)
            day += timedelta(days=1)
        raise CalendarNeverOpen(_("This business calendar is never open."), code="calendar_never_open")

    def closed_days(self, first: date, last: date) -> list[date]:
        """Days in [first, last] with weekday hours but closed for a holiday (for the settings preview)."""
        days = []
        day = first
        while day <= last:
            if self._hours.get(day.weekday()) and self.is_holiday(day):
                days.append(day)
            day += timedelta(days=1)
        return days


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("Business calendars need aware datetimes.")
    return moment


def _as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def spec_for(calendar: BusinessCalendar) -> CalendarSpec:
    hours: dict[int, list[tuple[time, time]]] = {}
    for row in calendar.hours.all():
        hours.setdefault(row.weekday, []).append((row.starts_at, row.ends_at))
    one_off: set[date] = set()
    recurring: set[tuple[int, int]] = set()
    for holiday in calendar.holidays.all():
        if holiday.recurring:
            recurring.add((holiday.day.month, holiday.day.day))
        else:
            one_off.add(holiday.day)
    return CalendarSpec(
        timezone=calendar.timezone,
        hours={weekday: tuple(intervals) for weekday, intervals in hours.items()},
        holiday_country=calendar.holiday_country,
        holiday_subdivision=calendar.holiday_subdivision,
        closed_days=frozenset(one_off),
        recurring_closed_days=frozenset(recurring),
    )


_cache: dict[tuple[int, str], tuple[float, BusinessClock]] = {}
_cache_lock = threading.Lock()


def clock_for(calendar: BusinessCalendar) -> BusinessClock:
    """The calendar's clock, cached per process for a minute (settings changes clear it at once here,
    other processes see them within the minute)."""
    key = (calendar.pk, str(calendar.public_id))
    now = monotonic_time.monotonic()
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    clock = BusinessClock(spec_for(calendar))
    with _cache_lock:
        _cache[key] = (now, clock)
    return clock


def clock_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()
