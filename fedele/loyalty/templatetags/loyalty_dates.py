"""``{% load loyalty_dates %}``: dates written as each language writes them.

Django's Italian catalogue capitalises month and day names ("31 Agosto 2026", "Lunedì"), but Italian
writes them in lower case inside a sentence ("31 agosto 2026"). ``written_date`` formats like Django's
``date`` filter and then, for such languages, lower-cases the month and day names of that date.
"""

from __future__ import annotations

from datetime import date, datetime

from django import template
from django.template.defaultfilters import date as date_filter
from django.utils.dates import MONTHS, MONTHS_3, MONTHS_ALT, MONTHS_AP, WEEKDAYS, WEEKDAYS_ABBR
from django.utils.translation import get_language

register = template.Library()

LOWER_CASE_NAME_LANGUAGES = frozenset({"it"})
"""Languages that write month and day names in lower case (Django's catalogue capitalises them)."""


def written_names(value: date) -> list[str]:
    """The month and day names (full, short, abbreviated) a format of ``value`` may contain."""
    month, weekday = value.month, value.weekday()
    names = [str(MONTHS[month]), str(MONTHS_ALT[month]), str(MONTHS_AP[month]), str(MONTHS_3[month]).title()]
    names += [str(WEEKDAYS[weekday]), str(WEEKDAYS_ABBR[weekday])]
    # Longest first, so "Agosto" is lower-cased whole before "Ago" is looked for.
    return sorted({name for name in names if name}, key=len, reverse=True)


def written_date_text(value: date | datetime | None, format_string: str | None = None) -> str:
    text = str(date_filter(value, format_string) or "")
    if not text or value is None or (get_language() or "")[:2] not in LOWER_CASE_NAME_LANGUAGES:
        return text
    for name in written_names(value):
        text = text.replace(name, name.lower())
    return text


@register.filter(expects_localtime=True, is_safe=False)
def written_date(value: date | datetime | None, format_string: str | None = None) -> str:
    """Like ``date`` ("j F Y", "F Y", "j M Y", DATE_FORMAT...), with lower-case month and day names
    where the language writes them so."""
    return written_date_text(value, format_string)
