"""``{% load contact_center_durations %}``: durations as a clock reads them.

Waits, ASA and AHT on the wallboards and interval reports are kept in seconds; people read "3:12:42"
faster than "11562 s". ``duration`` writes ``m:ss`` under an hour and ``h:mm:ss`` from an hour on,
rounding fractions of a second half up; an empty value is a dash.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

register = template.Library()

EMPTY = "–"


def format_duration(seconds: float | int | Decimal | str | None) -> str:
    """0 → "0:00", 59 → "0:59", 3599 → "59:59", 3600 → "1:00:00", 11562 → "3:12:42", None → "–"."""
    if seconds is None or seconds == "":
        return EMPTY
    try:
        whole = int(Decimal(str(seconds)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except (InvalidOperation, ValueError):
        return EMPTY
    sign = "-" if whole < 0 else ""
    hours, rest = divmod(abs(whole), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{secs:02d}"
    return f"{sign}{minutes}:{secs:02d}"


@register.filter(name="duration")
def duration(seconds: float | int | Decimal | str | None) -> str:
    return format_duration(seconds)
