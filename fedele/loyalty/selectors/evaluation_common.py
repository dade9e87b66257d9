"""Shared pieces of the programme evaluation: the period, programme-local time, rates and tables.

A period is two days in the programme's time zone, both included: it starts at local midnight of
``start`` and ends at local midnight after ``end`` (so a day is a day even across DST changes).
Rates are percentages with two decimals (ROUND_HALF_UP), ``None`` when the denominator is zero —
an undefined rate is never shown as 0 %.
"""

from __future__ import annotations

import calendar
import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty.models import Programme
from fedele.shared import clock
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed

REPORTS_PERMISSION = "loyalty.view_loyalty_reports"
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
MAX_PERIOD_MONTHS = 120
DEFAULT_MARGIN_PERCENT = Decimal("30")


def authorise_reports(actor: Actor | None) -> None:
    """Staff with ``loyalty.view_loyalty_reports`` (the system may always read)."""
    if actor is None:
        return
    if not (actor.is_internal and actor.can(REPORTS_PERMISSION)):
        raise PermissionDenied(_("You may not see loyalty evaluation reports."), code="permission_denied")


def programme_for_reports(*, actor: Actor | None, code: str) -> Programme:
    authorise_reports(actor)
    programme = Programme.objects.filter(code=str(code)[:40]).first()
    if programme is None:
        raise NotFound(_("Programme not found."), code="programme_not_found")
    return programme


# ----------------------------------------------------------------------------------------------
# Time


def add_months(day: date, months: int) -> date:
    """Same day ``months`` later (or earlier), clamped to the month's end (31 Jan + 1 → 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def months_between(first: date, second: date) -> int:
    """Whole calendar months from ``first``'s month to ``second``'s month (March → May = 2)."""
    return (second.year - first.year) * 12 + second.month - first.month


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


@dataclass(frozen=True, slots=True)
class Period:
    """``start``…``end`` (both included) in ``programme.timezone``."""

    programme: Programme
    start: date
    end: date

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.programme.timezone)

    @property
    def starts_at(self) -> datetime:
        return local_midnight(self.start, self.tz)

    @property
    def ends_at(self) -> datetime:
        """Exclusive: local midnight after ``end``."""
        return local_midnight(self.end + timedelta(days=1), self.tz)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def months(self) -> list[date]:
        """First days of the months the period touches, in order."""
        first = month_start(self.start)
        return [add_months(first, offset) for offset in range(months_between(self.start, self.end) + 1)]

    def halves(self) -> tuple[tuple[date, date], tuple[date, date]]:
        """The period cut in two (the first half gets the odd day): 1–31 Jan → 1–16 and 17–31."""
        middle = self.start + timedelta(days=(self.days + 1) // 2 - 1)
        if self.days == 1:
            return (self.start, self.end), (self.start, self.end)
        return (self.start, middle), (middle + timedelta(days=1), self.end)

    def previous(self) -> tuple[date, date]:
        """The period of the same length just before this one (the matching baseline)."""
        length = timedelta(days=self.days)
        return self.start - length, self.start - timedelta(days=1)

    def within(self, field: str) -> Q:
        return Q(**{f"{field}__gte": self.starts_at, f"{field}__lt": self.ends_at})


def period_for(programme: Programme, start: date | None, end: date | None) -> Period:
    """Default: the last twelve months up to today (programme time zone): from the first day of the
    month eleven months back. Refuses an inverted period or one longer than ten years."""
    today = clock.today(programme.timezone)
    end = end or today
    start = start or month_start(add_months(end, -11))
    errors: dict[str, str] = {}
    if end < start:
        errors["to"] = _("The end must be on or after the start.")
    elif months_between(start, end) >= MAX_PERIOD_MONTHS:
        errors["from"] = _("The period may span at most ten years.")
    if errors:
        raise ValidationFailed(_("The period is not valid."), code="invalid_period", fields=errors)
    return Period(programme=programme, start=start, end=end)


# ----------------------------------------------------------------------------------------------
# Numbers


def cents(value: Decimal | int) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def percent(numerator: int | Decimal, denominator: int | Decimal) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) * HUNDRED / Decimal(denominator)).quantize(CENT, rounding=ROUND_HALF_UP)


def ratio(numerator: int | Decimal, denominator: int | Decimal) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(CENT, rounding=ROUND_HALF_UP)


def points_value(points: int, programme: Programme) -> Decimal:
    """EUR value of ``points`` at the programme's point value, to the cent."""
    return cents(Decimal(points) * programme.point_value)


# ----------------------------------------------------------------------------------------------
# Tables (page and CSV)


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str | Promise


@dataclass(frozen=True, slots=True)
class Table:
    """Rows for a page table and a CSV file. The CSV header is the column keys (stable in every
    language, the same names as the JSON fields); the page shows the translated labels."""

    name: str
    columns: tuple[Column, ...]
    rows: tuple[dict[str, object], ...]

    @property
    def headers(self) -> list[str]:
        return [str(column.label) for column in self.columns]

    @property
    def matrix(self) -> list[list[object]]:
        """Cells for the page: a row may carry ``<key>_label`` to show instead of the raw value."""
        return [
            [row.get(f"{column.key}_label", row.get(column.key)) for column in self.columns]
            for row in self.rows
        ]

    def as_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([column.key for column in self.columns])
        for row in self.rows:
            writer.writerow([csv_cell(row.get(column.key)) for column in self.columns])
        return buffer.getvalue()


def table(
    name: str, columns: Sequence[tuple[str, str | Promise]], rows: Iterable[dict[str, object]]
) -> Table:
    return Table(name=name, columns=tuple(Column(key, label) for key, label in columns), rows=tuple(rows))


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    # A cell a spreadsheet would run as a formula (CSV injection) gets a leading apostrophe.
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text
