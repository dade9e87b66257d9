"""SLA reports: attainment per metric (clocks fulfilled on time / fulfilled) overall or by team, agent,
category or priority, breaches, and the average first response in business minutes.

A clock counts in the period its measure ended (fulfilled_at); a breach counts in the period it was
detected (breached_at). Days are local days of the default business calendar's time zone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _

from fedele.support.calendars import BusinessClock, clock_for
from fedele.support.models import BusinessCalendar, SlaClock, SlaPolicy, Ticket

GROUPINGS = ("overall", "team", "agent", "category", "priority")
METRICS = ("first_response", "next_response", "resolution")
MAX_DAYS = 731


@dataclass(slots=True)
class MetricFigures:
    fulfilled: int = 0
    on_time: int = 0
    breaches: int = 0

    @property
    def attainment(self) -> Decimal | None:
        """Percentage with one decimal (ROUND_HALF_UP), None when nothing was fulfilled."""
        if not self.fulfilled:
            return None
        return (Decimal(self.on_time) * 100 / Decimal(self.fulfilled)).quantize(Decimal("0.1"), ROUND_HALF_UP)


@dataclass(slots=True)
class SlaReportRow:
    key: str
    label: str
    metrics: dict[str, MetricFigures] = field(default_factory=lambda: {m: MetricFigures() for m in METRICS})
    first_response_business_seconds: list[int] = field(default_factory=list)

    @property
    def average_first_response_minutes(self) -> Decimal | None:
        values = self.first_response_business_seconds
        if not values:
            return None
        return (Decimal(sum(values)) / Decimal(len(values)) / 60).quantize(Decimal("0.1"), ROUND_HALF_UP)

    @property
    def breaches(self) -> int:
        return sum(figures.breaches for figures in self.metrics.values())


@dataclass(frozen=True, slots=True)
class SlaReport:
    start: date
    end: date
    group_by: str
    rows: list[SlaReportRow]
    total: SlaReportRow


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    calendar = BusinessCalendar.objects.filter(is_default=True).first()
    zone = ZoneInfo(calendar.timezone if calendar is not None else "Europe/Rome")
    return (
        datetime.combine(start, time(0), tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone),
    )


def _group_key(clock_row: SlaClock, group_by: str) -> str:
    ticket = clock_row.ticket
    if group_by == "team":
        team_id = clock_row.team_id_at_stop if clock_row.fulfilled_at else ticket.team_id
        return str(team_id or "")
    if group_by == "agent":
        user_id = clock_row.assignee_id_at_stop if clock_row.fulfilled_at else ticket.assignee_id
        return str(user_id or "")
    if group_by == "category":
        return ticket.category.code if ticket.category is not None else ""
    if group_by == "priority":
        return ticket.priority
    return "all"


def _labels(group_by: str, keys: Iterable[str]) -> dict[str, str]:
    ids = [int(key) for key in keys if key.isdigit()]
    labels: dict[str, str] = {"": _("(none)"), "all": _("All tickets")}
    if group_by == "team":
        team_model: Any = Ticket._meta.get_field("team").related_model
        labels.update(
            {str(pk): name for pk, name in team_model.objects.filter(pk__in=ids).values_list("pk", "name")}
        )
    elif group_by == "agent":
        for user in get_user_model().objects.filter(pk__in=ids):
            labels[str(user.pk)] = str(user.get_full_name() or user.email)
    elif group_by == "priority":
        from fedele.support.models import Priority

        labels.update({value: str(label) for value, label in Priority.choices})
    return labels


def sla_report(*, start: date, end: date, group_by: str = "overall") -> SlaReport:
    """The SLA figures of [start, end] (inclusive local days)."""
    from fedele.shared.errors import ValidationFailed

    if group_by not in GROUPINGS:
        raise ValidationFailed(
            _("Unknown grouping."), code="bad_grouping", fields={"group_by": ", ".join(GROUPINGS)}
        )
    if end < start or (end - start).days > MAX_DAYS or start.year < 2000 or end.year > 2999:
        raise ValidationFailed(
            _("Choose a period of at most two years, ending after it starts."),
            code="bad_period",
            fields={"end": _("Invalid period.")},
        )
    low, high = _bounds(start, end)
    base = SlaClock.objects.select_related("ticket", "ticket__category")
    fulfilled = list(
        base.filter(status=SlaClock.Status.FULFILLED, fulfilled_at__gte=low, fulfilled_at__lt=high)
    )
    breached = list(base.filter(breached_at__gte=low, breached_at__lt=high))
    rows: dict[str, SlaReportRow] = {}
    total = SlaReportRow(key="total", label=_("Total"))
    clocks: dict[int | None, BusinessClock | None] = {}

    def business(policy_id: int | None) -> BusinessClock | None:
        if policy_id not in clocks:
            policy = (
                SlaPolicy.objects.select_related("calendar").filter(pk=policy_id).first()
                if policy_id
                else None
            )
            clocks[policy_id] = clock_for(policy.calendar) if policy is not None else None
        return clocks[policy_id]

    def row_for(key: str) -> SlaReportRow:
        if key not in rows:
            rows[key] = SlaReportRow(key=key, label=key)
        return rows[key]

    for clock_row in fulfilled:
        assert clock_row.fulfilled_at is not None
        on_time = clock_row.fulfilled_at <= clock_row.due_at
        for row in (row_for(_group_key(clock_row, group_by)), total):
            figures = row.metrics[clock_row.metric]
            figures.fulfilled += 1
            figures.on_time += int(on_time)
        if clock_row.metric == SlaClock.Metric.FIRST_RESPONSE:
            calendar_clock = business(clock_row.policy_id)
            if calendar_clock is not None:
                seconds = max(
                    0,
                    calendar_clock.business_seconds_between(clock_row.started_at, clock_row.fulfilled_at)
                    - clock_row.paused_business_seconds,
                )
                row_for(_group_key(clock_row, group_by)).first_response_business_seconds.append(seconds)
                total.first_response_business_seconds.append(seconds)
    for clock_row in breached:
        for row in (row_for(_group_key(clock_row, group_by)), total):
            row.metrics[clock_row.metric].breaches += 1
    labels = _labels(group_by, rows)
    for key, row in rows.items():
        row.label = labels.get(key, key)
    ordered = sorted(rows.values(), key=lambda row: (row.key == "", row.label.lower()))
    return SlaReport(start=start, end=end, group_by=group_by, rows=ordered, total=total)


def _number(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def sla_report_csv(report: SlaReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["group"]
    for metric in METRICS:
        header += [
            f"{metric}_fulfilled",
            f"{metric}_on_time",
            f"{metric}_attainment_percent",
            f"{metric}_breaches",
        ]
    header.append("average_first_response_business_minutes")
    writer.writerow(header)
    for row in [*report.rows, report.total]:
        cells: list[str] = [row.label]
        for metric in METRICS:
            figures = row.metrics[metric]
            cells += [
                str(figures.fulfilled),
                str(figures.on_time),
                _number(figures.attainment),
                str(figures.breaches),
            ]
        cells.append(_number(row.average_first_response_minutes))
        writer.writerow(cells)
    return buffer.getvalue()
