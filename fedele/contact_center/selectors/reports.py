"""Historical interval reports (15/30/60 minutes) and the day-so-far figures of the wallboards.

Definitions (the same everywhere: report table, chart, CSV, wallboard, ``facade.interval_stats``):

- An interaction counts in the interval in which it entered a queue (``queued_at``); interactions that
  never queued (self-service in the IVR, outbound calls placed directly) are not counted.
- **Offered**: interactions that entered a queue in the interval.
- **Answered**: offered interactions an agent connected (``answered_at`` set). Wait = answered_at − queued_at.
- **Abandoned**: offered interactions that ended unanswered with outcome *abandoned*. Their wait is
  ended_at − queued_at.
- **Service level (SL)** = answered within the queue's threshold (``Queue.service_level_seconds``, wait ≤
  threshold) ÷ (answered + abandoned after the threshold) × 100. Calls abandoned within the threshold
  count neither for nor against; with nothing to count the SL is empty (None), not 100 %.
- **Abandon rate** = abandoned ÷ offered × 100.
- **ASA** (average speed of answer) = mean wait of the answered interactions, in seconds.
- **AHT** (average handle time) = mean of talk + hold + after-call seconds over the answered interactions
  whose wrap-up is finished (state *ended*).

Intervals are wall-clock intervals of a time zone (Europe/Rome by default) laid out from local midnight in
UTC steps, so a day has 92 quarter hours when the clocks go forward (2026-03-29) and 100 when they go
back (2026-10-25); the repeated hour's labels carry their UTC offset.

The sums are made by the database (``tally_rows``: one GROUP BY over queue, channel and interval bucket),
in whole microseconds, so SQLite and PostgreSQL give the same figures; ``count_contact`` is the same
definition for one contact in Python (kept as the reference the tests compare the SQL with).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import connection
from django.utils.translation import gettext as _

from fedele.contact_center.contracts import IntervalStats
from fedele.contact_center.models import Channel, Interaction, InteractionState, Outcome, Queue
from fedele.shared.errors import NotFound, ValidationFailed

INTERVAL_CHOICES = (15, 30, 60)
MAX_REPORT_DAYS = 92


def default_time_zone() -> str:
    return str(getattr(settings, "TIME_ZONE", "Europe/Rome") or "Europe/Rome")


@dataclass(slots=True)
class Tally:
    """Counts and sums of one bucket (an interval, a queue and channel, a day so far)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_within_threshold: int = 0
    abandoned_after_threshold: int = 0
    wait_microseconds_answered: int = 0  # whole microseconds: sums are exact in any order
    handled: int = 0
    handle_seconds: int = 0

    def add(self, other: Tally) -> None:
        self.offered += other.offered
        self.answered += other.answered
        self.abandoned += other.abandoned
        self.answered_within_threshold += other.answered_within_threshold
        self.abandoned_after_threshold += other.abandoned_after_threshold
        self.wait_microseconds_answered += other.wait_microseconds_answered
        self.handled += other.handled
        self.handle_seconds += other.handle_seconds

    @property
    def wait_seconds_answered(self) -> float:
        return self.wait_microseconds_answered / 1_000_000

    @property
    def service_level_percent(self) -> float | None:
        base = self.answered + self.abandoned_after_threshold
        return round(self.answered_within_threshold * 100 / base, 1) if base else None

    @property
    def abandon_rate_percent(self) -> float | None:
        return round(self.abandoned * 100 / self.offered, 1) if self.offered else None

    @property
    def average_speed_of_answer_seconds(self) -> float:
        if not self.answered:
            return 0.0
        return round(self.wait_microseconds_answered / (self.answered * 1_000_000), 1)

    @property
    def average_handle_seconds(self) -> float:
        return round(self.handle_seconds / self.handled, 1) if self.handled else 0.0


FACT_FIELDS = (
    "queue_id",
    "channel",
    "queued_at",
    "answered_at",
    "ended_at",
    "outcome",
    "state",
    "wait_seconds",
    "talk_seconds",
    "hold_seconds",
    "after_call_seconds",
)
# One row of FACT_FIELDS, read with values_list (no model instances: a month is ~100k rows).
ContactRow = tuple[int, str, datetime, datetime | None, datetime | None, str, str, int, int, int, int]


def count_contact(tally: Tally, row: ContactRow, threshold_seconds: int) -> None:
    """Add one interaction to a tally, by the module's definitions (see the module docstring)."""
    _queue, _channel, queued_at, answered_at, ended_at, outcome, state, wait_seconds, talk, hold, after = row
    tally.offered += 1
    if answered_at is not None:
        wait = max(timedelta(0), answered_at - queued_at)
        tally.answered += 1
        tally.wait_microseconds_answered += wait // timedelta(microseconds=1)
        if wait <= timedelta(seconds=threshold_seconds):
            tally.answered_within_threshold += 1
        if state == InteractionState.ENDED:
            tally.handled += 1
            tally.handle_seconds += talk + hold + after
    elif outcome == Outcome.ABANDONED:
        tally.abandoned += 1
        waited = (ended_at - queued_at).total_seconds() if ended_at is not None else float(wait_seconds)
        if waited > threshold_seconds:
            tally.abandoned_after_threshold += 1


def contact_rows(
    *, start: datetime, end: datetime, queue_ids: Sequence[int] | None = None, channel: str | None = None
) -> Iterable[ContactRow]:
    queryset = Interaction.objects.filter(queue__isnull=False, queued_at__gte=start, queued_at__lt=end)
    if queue_ids is not None:
        queryset = queryset.filter(queue_id__in=list(queue_ids))
    if channel:
        queryset = queryset.filter(channel=channel)
    return queryset.order_by().values_list(*FACT_FIELDS).iterator(chunk_size=5000)


def thresholds_by_queue() -> dict[int, int]:
    return dict(Queue.objects.values_list("id", "service_level_seconds"))


# -- the sums in SQL -------------------------------------------------------------------------------

MICROSECONDS = 1_000_000


def _epoch_microseconds(column: str) -> str:
    """SQL for a datetime column as whole microseconds since 1970 (NULL stays NULL), exact on both
    back ends: PostgreSQL's EXTRACT(EPOCH) is numeric; SQLite stores Django's UTC text
    ``YYYY-MM-DD HH:MM:SS[.ffffff]`` and its own date functions keep only milliseconds, so the
    fraction is read from the text."""
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {column}) * {MICROSECONDS} AS BIGINT)"
    return (
        f"(CAST(strftime('%%s', {column}) AS INTEGER) * {MICROSECONDS}"
        f" + CASE WHEN length({column}) >= 26 THEN CAST(substr({column}, 21, 6) AS INTEGER) ELSE 0 END)"
    )


@dataclass(frozen=True, slots=True)
class TallyRow:
    queue_id: int
    channel: str
    bucket: int  # the interval's index from ``origin``; 0 when not bucketed
    tally: Tally


def tally_rows(
    *,
    start: datetime,
    end: datetime,
    queue_ids: Sequence[int] | None = None,
    channel: str | None = None,
    origin: datetime | None = None,
    step_seconds: int | None = None,
    per_queue_channel: bool = True,
) -> list[TallyRow]:
    """One query: the tallies of the contacts that queued in [start, end), grouped by queue, channel
    and (with ``origin`` and ``step_seconds``) the interval ``(queued_at - origin) // step``; with
    ``per_queue_channel`` False by interval only (queue 0, channel ""): fewer rows to read back. The
    module's definitions, in SQL: waits in whole microseconds, each compared with its own queue's
    threshold; a negative wait counts as zero."""
    interaction = Interaction._meta.db_table
    queue = Queue._meta.db_table
    queued = _epoch_microseconds("i.queued_at")
    answered = _epoch_microseconds("i.answered_at")
    ended = _epoch_microseconds("i.ended_at")
    conditions = ["i.queue_id IS NOT NULL", "i.queued_at >= %s", "i.queued_at < %s"]
    params: list[Any] = [
        connection.ops.adapt_datetimefield_value(start),
        connection.ops.adapt_datetimefield_value(end),
    ]
    if queue_ids is not None:
        ids = [int(queue_id) for queue_id in queue_ids]
        if not ids:
            return []
        conditions.append(f"i.queue_id IN ({', '.join(['%s'] * len(ids))})")
        params.extend(ids)
    if channel:
        conditions.append("i.channel = %s")
        params.append(channel)
    bucket = "0"
    bucket_params: list[Any] = []
    if origin is not None and step_seconds is not None:
        origin_microseconds = int(
            (origin - datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))) / timedelta(microseconds=1)
        )
        # Both sides are integers: "/" divides whole numbers on both back ends (queued_at >= origin).
        bucket = f"(({queued}) - CAST(%s AS BIGINT)) / CAST(%s AS BIGINT)"
        bucket_params = [origin_microseconds, step_seconds * MICROSECONDS]
    if per_queue_channel:
        group_columns, group_by = (
            "facts.queue_id, facts.channel",
            "facts.queue_id, facts.channel, facts.bucket",
        )
    else:
        group_columns, group_by = "0, ''", "facts.bucket"
    sql = f"""
        SELECT {group_columns}, facts.bucket,
            COUNT(*),
            COUNT(facts.wait),
            SUM(CASE WHEN facts.wait <= facts.threshold THEN 1 ELSE 0 END),
            COALESCE(SUM(facts.wait), 0),
            SUM(CASE WHEN facts.wait IS NOT NULL AND facts.state = %s THEN 1 ELSE 0 END),
            SUM(CASE WHEN facts.wait IS NOT NULL AND facts.state = %s THEN facts.handle ELSE 0 END),
            SUM(CASE WHEN facts.abandoned = 1 THEN 1 ELSE 0 END),
            SUM(CASE WHEN facts.abandoned = 1 AND facts.waited > facts.threshold THEN 1 ELSE 0 END)
        FROM (
            SELECT i.queue_id AS queue_id, i.channel AS channel, {bucket} AS bucket,
                q.service_level_seconds * {MICROSECONDS} AS threshold,
                i.state AS state,
                i.talk_seconds + i.hold_seconds + i.after_call_seconds AS handle,
                CASE WHEN i.answered_at IS NULL THEN NULL
                    WHEN ({answered}) - ({queued}) < 0 THEN 0
                    ELSE ({answered}) - ({queued}) END AS wait,
                CASE WHEN i.answered_at IS NULL AND i.outcome = %s THEN 1 ELSE 0 END AS abandoned,
                CASE WHEN i.ended_at IS NOT NULL THEN ({ended}) - ({queued})
                    ELSE i.wait_seconds * {MICROSECONDS} END AS waited
            FROM {interaction} i JOIN {queue} q ON q.id = i.queue_id
            WHERE {" AND ".join(conditions)}
        ) facts
        GROUP BY {group_by}
    """  # noqa: S608 - table names and SQL fragments are this module's; every value is a parameter
    all_params = [
        InteractionState.ENDED,
        InteractionState.ENDED,
        *bucket_params,
        Outcome.ABANDONED,
        *params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, all_params)
        found = cursor.fetchall()
    return [
        TallyRow(
            queue_id=int(queue_id),
            channel=str(row_channel),
            bucket=int(row_bucket),
            tally=Tally(
                offered=int(offered),
                answered=int(answered_count),
                abandoned=int(abandoned or 0),
                answered_within_threshold=int(within or 0),
                abandoned_after_threshold=int(late or 0),
                wait_microseconds_answered=int(wait_total),
                handled=int(handled or 0),
                handle_seconds=int(handle_total or 0),
            ),
        )
        for (
            queue_id,
            row_channel,
            row_bucket,
            offered,
            answered_count,
            within,
            wait_total,
            handled,
            handle_total,
            abandoned,
            late,
        ) in found
    ]


# -- intervals -------------------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValidationFailed(
            _("Unknown time zone."), code="invalid_time_zone", fields={"tz": _("Unknown time zone.")}
        ) from error


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(ZoneInfo("UTC"))


def interval_starts(start: datetime, end: datetime, interval_minutes: int) -> list[datetime]:
    """Interval starts from ``start`` to before ``end`` in equal UTC steps (so DST days come out 23 or 25
    hours long in a local time zone)."""
    step = timedelta(minutes=interval_minutes)
    starts = []
    moment = start.astimezone(ZoneInfo("UTC"))
    stop = end.astimezone(ZoneInfo("UTC"))
    while moment < stop:
        starts.append(moment)
        moment += step
    return starts


def check_interval(interval_minutes: int) -> None:
    if interval_minutes not in INTERVAL_CHOICES:
        raise ValidationFailed(
            _("The interval must be 15, 30 or 60 minutes."),
            code="invalid_interval",
            fields={"interval": _("The interval must be 15, 30 or 60 minutes.")},
        )


@dataclass(frozen=True, slots=True)
class IntervalRow:
    start: datetime  # UTC
    local_start: datetime
    tally: Tally

    @property
    def label(self) -> str:
        return self.local_start.strftime("%Y-%m-%d %H:%M")

    @property
    def offset_label(self) -> str:
        return self.local_start.strftime("%z")[:3] + ":" + self.local_start.strftime("%z")[3:]


@dataclass(slots=True)
class IntervalReport:
    start_date: date
    end_date: date
    interval_minutes: int
    time_zone: str
    queue_codes: tuple[str, ...]
    channel: str
    rows: list[IntervalRow] = field(default_factory=list)
    total: Tally = field(default_factory=Tally)

    @property
    def ambiguous_labels(self) -> set[str]:
        """Local labels that occur twice (the hour repeated when the clocks go back)."""
        seen: set[str] = set()
        repeated: set[str] = set()
        for row in self.rows:
            (repeated if row.label in seen else seen).add(row.label)
        return repeated


def _bucket_index(moment: datetime, origin: datetime, step_seconds: int) -> int:
    return int((moment - origin).total_seconds() // step_seconds)


def interval_report(
    *,
    start_date: date,
    end_date: date,
    interval_minutes: int,
    time_zone: str | None = None,
    queue_codes: Iterable[str] = (),
    channel: str = "",
) -> IntervalReport:
    """Every interval of the local days ``start_date``..``end_date`` (inclusive), summed over the chosen
    queues (all when none) and channel (all when empty)."""
    check_interval(interval_minutes)
    if end_date < start_date:
        raise ValidationFailed(
            _("The end date is before the start date."),
            code="invalid_range",
            fields={"end": _("The end date is before the start date.")},
        )
    if (end_date - start_date).days >= MAX_REPORT_DAYS:
        raise ValidationFailed(
            _("Choose at most %(days)d days.") % {"days": MAX_REPORT_DAYS},
            code="range_too_long",
            fields={"end": _("Choose at most %(days)d days.") % {"days": MAX_REPORT_DAYS}},
        )
    if channel and channel not in Channel.values:
        raise ValidationFailed(
            _("Unknown channel."), code="invalid_channel", fields={"channel": _("Unknown channel.")}
        )
    tz_name = time_zone or default_time_zone()
    tz = zone(tz_name)
    codes = tuple(sorted({code for code in queue_codes if code}))
    queue_ids: list[int] | None = None
    if codes:
        found = dict(Queue.objects.filter(code__in=codes).values_list("code", "id"))
        missing = [code for code in codes if code not in found]
        if missing:
            raise ValidationFailed(
                _("Unknown queue: %(codes)s.") % {"codes": ", ".join(missing)},
                code="unknown_queue",
                fields={"queue": _("Unknown queue: %(codes)s.") % {"codes": ", ".join(missing)}},
            )
        queue_ids = list(found.values())
    start = local_midnight(start_date, tz)
    end = local_midnight(end_date + timedelta(days=1), tz)
    starts = interval_starts(start, end, interval_minutes)
    tallies = [Tally() for _ in starts]
    total = Tally()
    for group in tally_rows(
        start=start,
        end=end,
        queue_ids=queue_ids,
        channel=channel or None,
        origin=start,
        step_seconds=interval_minutes * 60,
        per_queue_channel=False,
    ):
        tallies[group.bucket].add(group.tally)
    for tally in tallies:
        total.add(tally)
    rows = [
        IntervalRow(start=moment, local_start=moment.astimezone(tz), tally=tally)
        for moment, tally in zip(starts, tallies, strict=True)
    ]
    return IntervalReport(
        start_date=start_date,
        end_date=end_date,
        interval_minutes=interval_minutes,
        time_zone=tz_name,
        queue_codes=codes,
        channel=channel,
        rows=rows,
        total=total,
    )


CSV_HEADER = (
    "interval_start_local",
    "utc_offset",
    "interval_start_utc",
    "offered",
    "answered",
    "abandoned",
    "answered_within_threshold",
    "abandoned_after_threshold",
    "service_level_percent",
    "abandon_rate_percent",
    "average_speed_of_answer_seconds",
    "average_handle_seconds",
)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def report_line(label: str, offset: str, utc: str, tally: Tally) -> list[str]:
    return [
        label,
        offset,
        utc,
        str(tally.offered),
        str(tally.answered),
        str(tally.abandoned),
        str(tally.answered_within_threshold),
        str(tally.abandoned_after_threshold),
        _number(tally.service_level_percent),
        _number(tally.abandon_rate_percent),
        _number(tally.average_speed_of_answer_seconds),
        _number(tally.average_handle_seconds),
    ]


def interval_report_csv(report: IntervalReport) -> str:
    """The table as CSV: one line per interval, then the total (same numbers as the page)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in report.rows:
        writer.writerow(
            report_line(row.label, row.offset_label, row.start.strftime("%Y-%m-%dT%H:%M:%SZ"), row.tally)
        )
    writer.writerow(report_line("total", "", "", report.total))
    return out.getvalue()


def interval_report_chart(report: IntervalReport) -> dict[str, Any]:
    """The chart's data: offered / answered / abandoned bars and the service level line."""
    ambiguous = report.ambiguous_labels
    labels = [
        (f"{row.label} ({row.offset_label})" if row.label in ambiguous else row.label)[
            (0 if report.start_date != report.end_date else 11) :
        ]
        for row in report.rows
    ]
    return {
        "labels": labels,
        "series": [
            {"name": str(_("Offered")), "values": [row.tally.offered for row in report.rows]},
            {"name": str(_("Answered")), "values": [row.tally.answered for row in report.rows]},
            {"name": str(_("Abandoned")), "values": [row.tally.abandoned for row in report.rows]},
        ],
        "line": {
            "name": str(_("Service level %")),
            "values": [row.tally.service_level_percent for row in report.rows],
        },
    }


# -- per queue and channel (the facade's IntervalStats and the wallboard) --------------------------


def tallies_by_queue_channel_interval(
    *, start: datetime, end: datetime, interval_minutes: int, queue_ids: Sequence[int] | None = None
) -> tuple[list[datetime], dict[tuple[int, str], list[Tally]]]:
    """For every queue and channel with at least one offered interaction between start and end: one
    tally per interval (zeros included, so a forecaster sees the quiet intervals)."""
    starts = interval_starts(start, end, interval_minutes)
    grid: dict[tuple[int, str], list[Tally]] = {}
    for found in tally_rows(
        start=start,
        end=end,
        queue_ids=queue_ids,
        origin=start.astimezone(ZoneInfo("UTC")),
        step_seconds=interval_minutes * 60,
    ):
        line = grid.get((found.queue_id, found.channel))
        if line is None:
            line = grid[(found.queue_id, found.channel)] = [Tally() for _ in starts]
        line[found.bucket].add(found.tally)
    return starts, grid


def tallies_by_queue_channel(*, start: datetime, end: datetime) -> dict[tuple[int, str], Tally]:
    """Day-so-far figures of the wallboard: one tally per queue and channel."""
    result: dict[tuple[int, str], Tally] = {}
    for found in tally_rows(start=start, end=end):
        result.setdefault((found.queue_id, found.channel), Tally()).add(found.tally)
    return result


MAX_FACADE_RANGE = timedelta(days=MAX_REPORT_DAYS)


def interval_stats_for(
    *, start: datetime, end: datetime, interval_minutes: int, queue_code: str | None = None
) -> list[IntervalStats]:
    """The facade's ``interval_stats``: sorted by queue code, channel, interval start."""
    check_interval(interval_minutes)
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailed(_("Start and end must carry a time zone."), code="naive_datetime")
    if end <= start:
        raise ValidationFailed(_("The end is not after the start."), code="invalid_range")
    if end - start > MAX_FACADE_RANGE:
        raise ValidationFailed(
            _("Choose at most %(days)d days.") % {"days": MAX_REPORT_DAYS}, code="range_too_long"
        )
    queue_ids: list[int] | None = None
    if queue_code:
        queue = Queue.objects.filter(code=queue_code).values_list("id", flat=True).first()
        if queue is None:
            raise NotFound(_("Unknown queue: %(codes)s.") % {"codes": queue_code}, code="unknown_queue")
        queue_ids = [queue]
    starts, grid = tallies_by_queue_channel_interval(
        start=start, end=end, interval_minutes=interval_minutes, queue_ids=queue_ids
    )
    codes = dict(
        Queue.objects.filter(id__in={queue_id for queue_id, _channel in grid}).values_list("id", "code")
    )
    stats = []
    for (queue_id, channel), tallies in sorted(
        grid.items(), key=lambda item: (codes[item[0][0]], item[0][1])
    ):
        for moment, tally in zip(starts, tallies, strict=True):
            stats.append(
                IntervalStats(
                    queue_code=codes[queue_id],
                    channel=channel,
                    interval_start=moment,
                    interval_minutes=interval_minutes,
                    offered=tally.offered,
                    answered=tally.answered,
                    abandoned=tally.abandoned,
                    answered_within_threshold=tally.answered_within_threshold,
                    average_speed_of_answer_seconds=tally.average_speed_of_answer_seconds,
                    average_handle_seconds=tally.average_handle_seconds,
                    service_level_percent=tally.service_level_percent,
                )
            )
    return stats
