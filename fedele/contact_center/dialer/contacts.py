"""Pure rules about whom and when to call: phone numbers to E.164 with their country and time zone,
calling windows in the contact's local time (public holidays excluded), and the retry schedule.

Times in and out are aware UTC datetimes; windows are local wall-clock times, so "09:00" stays 09:00
in Rome on both sides of a daylight-saving change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import phonenumbers
from django.utils.translation import gettext as _
from phonenumbers import timezone as phone_timezones

__all__ = [
    "ABANDON_REDIAL_GAP",
    "NormalisedNumber",
    "Window",
    "in_window",
    "is_public_holiday",
    "next_window_start",
    "normalise_number",
    "retry_at",
]

# Ofcom: a number whose call was abandoned is not called again within 72 hours unless an agent is
# guaranteed to be on the line (preview dialling or an agent's own callback).
ABANDON_REDIAL_GAP = timedelta(hours=72)
# How far ahead to look for the next window before saying there is none.
_SEARCH_DAYS = 60
_FALLBACK_ZONES = {"IT": "Europe/Rome", "SM": "Europe/San_Marino", "VA": "Europe/Vatican"}


@dataclass(frozen=True, slots=True)
class NormalisedNumber:
    e164: str
    region: str
    time_zone: str


def normalise_number(raw: str, *, default_region: str = "IT") -> NormalisedNumber:
    """The number in E.164 with its country and time zone. Raises ValueError with a readable reason
    (translated: contact-list import reports and form errors show it).

    Where a country spans several zones the first phonenumbers lists for the number is used (for
    Italian numbers there is one: Europe/Rome)."""
    text = (raw or "").strip()
    if not text:
        raise ValueError(_("The phone number is empty."))
    if len(text) > 40:
        raise ValueError(_("The phone number is too long."))
    try:
        parsed = phonenumbers.parse(text, default_region.upper() or None)
    except phonenumbers.NumberParseException as error:
        raise ValueError(_("'%(value)s' is not a phone number.") % {"value": text}) from error
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(_("'%(value)s' is not a valid phone number.") % {"value": text})
    region = phonenumbers.region_code_for_number(parsed) or default_region.upper()
    zones = [zone for zone in phone_timezones.time_zones_for_number(parsed) if zone != "Etc/Unknown"]
    zone = zones[0] if zones else _FALLBACK_ZONES.get(region, "UTC")
    return NormalisedNumber(
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), region, zone
    )


@dataclass(frozen=True, slots=True)
class Window:
    """A calling window: weekday 0 = Monday, local start (inclusive) to end (exclusive)."""

    weekday: int
    start: time
    end: time


@lru_cache(maxsize=256)
def _holidays_for(region: str, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays.country_holidays(region, years=year).keys())
    except NotImplementedError:
        return frozenset()


def is_public_holiday(day: date, region: str) -> bool:
    return bool(region) and day in _holidays_for(region.upper(), day.year)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def in_window(at: datetime, *, time_zone: str, region: str, windows: Iterable[Window]) -> bool:
    """May the contact be called at ``at``: inside one of today's windows, today not a public holiday."""
    local = at.astimezone(_zone(time_zone))
    if is_public_holiday(local.date(), region):
        return False
    clock = local.time().replace(tzinfo=None)
    return any(w.weekday == local.weekday() and w.start <= clock < w.end for w in windows)


def next_window_start(
    after: datetime, *, time_zone: str, region: str, windows: Sequence[Window]
) -> datetime | None:
    """The first moment at or after ``after`` inside a window (UTC), or None within 60 days."""
    zone = _zone(time_zone)
    local_after = after.astimezone(zone)
    by_weekday: dict[int, list[Window]] = {}
    for window in sorted(windows, key=lambda w: (w.weekday, w.start)):
        by_weekday.setdefault(window.weekday, []).append(window)
    for offset in range(_SEARCH_DAYS + 1):
        day = local_after.date() + timedelta(days=offset)
        if is_public_holiday(day, region):
            continue
        for window in by_weekday.get(day.weekday(), []):
            start = datetime.combine(day, window.start, tzinfo=zone)
            end = datetime.combine(day, window.end, tzinfo=zone)
            if end <= local_after:
                continue
            return max(start, local_after).astimezone(UTC)
    return None


def retry_at(
    *,
    ended_at: datetime,
    delay: timedelta,
    next_day: bool,
    time_zone: str,
    region: str,
    windows: Sequence[Window],
    abandoned_at: datetime | None = None,
) -> datetime | None:
    """When to try again: ``delay`` after the call ended, or the first window of the next local day;
    never within 72 h of an abandoned call; always inside a window. None: no window within 60 days."""
    if next_day:
        local_end = ended_at.astimezone(_zone(time_zone))
        candidate = datetime.combine(local_end.date() + timedelta(days=1), time(0), tzinfo=_zone(time_zone))
    else:
        candidate = ended_at + delay
    if abandoned_at is not None:
        candidate = max(candidate, abandoned_at + ABANDON_REDIAL_GAP)
    return next_window_start(candidate, time_zone=time_zone, region=region, windows=windows)
