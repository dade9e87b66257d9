"""The only clock: always aware UTC datetimes from django.utils.timezone.now().

``travel_to`` moves this clock (not the system's) for the block it wraps, in this thread or task
only. The demo loader uses it to write a realistic history through the real services (a
subscription started 14 months ago, renewed by the billing run of each month) instead of
back-dating rows behind the services' backs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

_offset: ContextVar[timedelta | None] = ContextVar("clock_offset", default=None)


def now() -> datetime:
    offset = _offset.get()
    return timezone.now() if offset is None else timezone.now() + offset


def today(tz: str = "Europe/Rome") -> date:
    """Today's date in a business calendar's time zone (not the server's)."""
    return now().astimezone(ZoneInfo(tz)).date()


def local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz))


@contextmanager
def travel_to(moment: datetime) -> Iterator[None]:
    """Within the block, now() starts at ``moment`` (aware) and keeps ticking."""
    if timezone.is_naive(moment):
        raise ValueError("travel_to needs an aware datetime.")
    token = _offset.set(moment - timezone.now())
    try:
        yield
    finally:
        _offset.reset(token)
