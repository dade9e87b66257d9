"""The only clock: always aware UTC datetimes from django.utils.timezone.now()."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def today(tz: str = "Europe/Rome") -> date:
    """Today's date in a business calendar's time zone (not the server's)."""
    return now().astimezone(ZoneInfo(tz)).date()


def local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz))
