"""The interval report, ``interval_stats`` and the wallboard's day so far are summed by the database:
on a seeded set (random waits to the microsecond, both DST days of Europe/Rome, every edge the
definitions name) each tally equals a straightforward Python computation over the same rows, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fedele.contact_center.models import Channel, Interaction, InteractionState, Outcome, Queue
from fedele.contact_center.selectors.reports import (
    Tally,
    interval_report,
    interval_stats_for,
    local_midnight,
    tallies_by_queue_channel,
)
from fedele.contact_center.tests.factories import InteractionFactory, QueueFactory

pytestmark = pytest.mark.django_db
ROME = ZoneInfo("Europe/Rome")
FIELDS = (
    "offered",
    "answered",
    "abandoned",
    "answered_within_threshold",
    "abandoned_after_threshold",
    "wait_microseconds_answered",
    "handled",
    "handle_seconds",
)


def _values(tally: Tally) -> tuple[Any, ...]:
    return tuple(getattr(tally, name) for name in FIELDS)


def _contact(queue: Queue | None, queued_at: datetime | None, **fields: Any) -> None:
    InteractionFactory(
        queue=queue, queued_at=queued_at, created_at=queued_at or datetime(2026, 1, 1, tzinfo=UTC), **fields
    )


def seed() -> list[Queue]:
    """About 900 contacts around 2026-03-29 (clocks forward) and 2026-10-25 (clocks back)."""
    billing = QueueFactory(code="billing", service_level_seconds=20, channels=["voice", "chat"])
    sales = QueueFactory(code="sales", service_level_seconds=45, channels=["voice", "chat", "email"])
    queues = [billing, sales]
    rng = random.Random(20260329)
    for first_day in (date(2026, 3, 28), date(2026, 10, 24)):
        origin = local_midnight(first_day, ROME)
        for _ in range(450):
            queue = rng.choice(queues)
            queued = origin + timedelta(microseconds=rng.randrange(3 * 24 * 3600 * 1_000_000))
            channel = rng.choice([Channel.VOICE, Channel.VOICE, Channel.CHAT, Channel.EMAIL])
            wait = timedelta(microseconds=rng.randrange(0, 90_000_000))
            kind = rng.random()
            if kind < 0.55:
                ended = rng.random() < 0.8
                _contact(
                    queue,
                    queued,
                    channel=channel,
                    answered_at=queued + wait,
                    ended_at=queued + wait + timedelta(seconds=60) if ended else None,
                    state=InteractionState.ENDED if ended else InteractionState.WRAP_UP,
                    outcome=Outcome.HANDLED,
                    talk_seconds=rng.randrange(400),
                    hold_seconds=rng.randrange(30),
                    after_call_seconds=rng.randrange(60) if ended else 0,
                )
            elif kind < 0.8:
                with_end = rng.random() < 0.8
                _contact(
                    queue,
                    queued,
                    channel=channel,
                    ended_at=queued + wait if with_end else None,
                    wait_seconds=rng.randrange(90),
                    state=InteractionState.ENDED,
                    outcome=Outcome.ABANDONED,
                )
            elif kind < 0.9:
                _contact(queue, queued, channel=channel, state=InteractionState.QUEUED)
            else:
                _contact(
                    queue,
                    queued,
                    channel=channel,
                    ended_at=queued + wait,
                    state=InteractionState.ENDED,
                    outcome=rng.choice([Outcome.VOICEMAIL, Outcome.CALLBACK, Outcome.TRANSFERRED]),
                )
    # The edges: waits exactly at the threshold, a microsecond over, an answer logged before the
    # queueing (counts as no wait), contacts at the first instant of an interval and of the next day,
    # the repeated hour of 2026-10-25, and contacts that never queued or have no queue.
    edge = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST, the first hour after the jump
    _contact(
        billing,
        edge,
        answered_at=edge + timedelta(seconds=20),
        state=InteractionState.ENDED,
        outcome=Outcome.HANDLED,
    )
    _contact(
        billing,
        edge,
        answered_at=edge + timedelta(seconds=20, microseconds=1),
        state=InteractionState.ENDED,
        outcome=Outcome.HANDLED,
    )
    _contact(
        billing,
        edge,
        answered_at=edge - timedelta(seconds=3),
        state=InteractionState.ENDED,
        outcome=Outcome.HANDLED,
    )
    _contact(
        billing,
        edge,
        ended_at=edge + timedelta(seconds=20),
        state=InteractionState.ENDED,
        outcome=Outcome.ABANDONED,
    )
    _contact(
        billing,
        edge,
        ended_at=edge + timedelta(seconds=20, microseconds=1),
        state=InteractionState.ENDED,
        outcome=Outcome.ABANDONED,
    )
    _contact(sales, edge, wait_seconds=46, state=InteractionState.ENDED, outcome=Outcome.ABANDONED)
    repeated = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, the second 02:30 of the day
    _contact(
        sales,
        repeated - timedelta(hours=1),
        answered_at=repeated - timedelta(minutes=59),
        state=InteractionState.ENDED,
        outcome=Outcome.HANDLED,
        talk_seconds=7,
    )
    _contact(
        sales,
        repeated,
        answered_at=repeated + timedelta(seconds=5),
        state=InteractionState.ENDED,
        outcome=Outcome.HANDLED,
        talk_seconds=9,
    )
    _contact(sales, local_midnight(date(2026, 10, 26), ROME), state=InteractionState.QUEUED)
    _contact(billing, None, state=InteractionState.ENDED, outcome=Outcome.SELF_SERVICE)
    _contact(None, edge, state=InteractionState.ENDED, outcome=Outcome.HANDLED)
    return queues


def python_tallies(
    *,
    start: datetime,
    end: datetime,
    step: timedelta | None,
    queue_ids: set[int] | None = None,
    channel: str = "",
) -> dict[tuple[int, str, int], Tally]:
    """The definitions of ``selectors/reports.py`` applied one contact at a time, in exact time
    arithmetic: the reference the SQL must equal."""
    thresholds = {queue.id: timedelta(seconds=queue.service_level_seconds) for queue in Queue.objects.all()}
    waits: dict[tuple[int, str, int], timedelta] = {}
    result: dict[tuple[int, str, int], Tally] = {}
    for contact in Interaction.objects.filter(queue__isnull=False, queued_at__isnull=False):
        assert contact.queued_at is not None and contact.queue_id is not None
        if not (start <= contact.queued_at < end):
            continue
        if queue_ids is not None and contact.queue_id not in queue_ids:
            continue
        if channel and contact.channel != channel:
            continue
        bucket = (contact.queued_at - start) // step if step else 0
        key = (contact.queue_id, contact.channel, bucket)
        tally = result.setdefault(key, Tally())
        threshold = thresholds[contact.queue_id]
        tally.offered += 1
        if contact.answered_at is not None:
            wait = max(timedelta(0), contact.answered_at - contact.queued_at)
            tally.answered += 1
            waits[key] = waits.get(key, timedelta(0)) + wait
            tally.answered_within_threshold += wait <= threshold
            if contact.state == InteractionState.ENDED:
                tally.handled += 1
                tally.handle_seconds += (
                    contact.talk_seconds + contact.hold_seconds + contact.after_call_seconds
                )
        elif contact.outcome == Outcome.ABANDONED:
            tally.abandoned += 1
            if contact.ended_at is not None:
                waited = contact.ended_at - contact.queued_at
            else:
                waited = timedelta(seconds=contact.wait_seconds)
            tally.abandoned_after_threshold += waited > threshold
    for key, total in waits.items():
        result[key].wait_microseconds_answered = total // timedelta(microseconds=1)
    return result


def _summed(tallies: dict[tuple[int, str, int], Tally], buckets: int) -> list[Tally]:
    rows = [Tally() for _ in range(buckets)]
    for (_queue, _channel, bucket), tally in tallies.items():
        rows[bucket].add(tally)
    return rows


@pytest.mark.parametrize("interval", [15, 30, 60])
@pytest.mark.parametrize(
    "days",
    [
        (date(2026, 3, 29), date(2026, 3, 29)),
        (date(2026, 10, 25), date(2026, 10, 25)),
        (date(2026, 3, 28), date(2026, 3, 30)),
    ],
)
def test_interval_report_equals_the_python_computation(interval: int, days: tuple[date, date]) -> None:
    seed()
    start_date, end_date = days
    report = interval_report(
        start_date=start_date, end_date=end_date, interval_minutes=interval, time_zone="Europe/Rome"
    )
    start = local_midnight(start_date, ROME)
    end = local_midnight(end_date + timedelta(days=1), ROME)
    expected = _summed(
        python_tallies(start=start, end=end, step=timedelta(minutes=interval)), len(report.rows)
    )
    assert [_values(row.tally) for row in report.rows] == [_values(tally) for tally in expected]
    total = Tally()
    for tally in expected:
        total.add(tally)
    assert _values(report.total) == _values(total)
    assert report.total.offered > 0


def test_dst_days_have_the_right_intervals_and_figures() -> None:
    seed()
    spring = interval_report(start_date=date(2026, 3, 29), end_date=date(2026, 3, 29), interval_minutes=15)
    autumn = interval_report(start_date=date(2026, 10, 25), end_date=date(2026, 10, 25), interval_minutes=60)
    assert (len(spring.rows), len(autumn.rows)) == (92, 25)
    three = next(row for row in spring.rows if row.label == "2026-03-29 03:00")
    # The six edge contacts at 03:00: two answered within 20 s (one at exactly 20 s, one logged
    # before it queued), one a microsecond late; one abandoned at exactly 20 s (not late), one a
    # microsecond late; sales' abandon after 46 s (its threshold is 45 s).
    edge = python_tallies(
        start=datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        end=datetime(2026, 3, 29, 1, 0, 0, 1, tzinfo=UTC),
        step=None,
    )
    edge_total = _summed({(0, "", 0): Tally()} | edge, 1)[0]
    # 20 s + 20.000001 s + 0 (the early answer) of waits; 3 answered, 3 abandoned, 2 late abandons.
    assert _values(edge_total) == (6, 3, 3, 2, 2, 40_000_001, 3, 0)
    quarter = python_tallies(
        start=datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        end=datetime(2026, 3, 29, 1, 15, tzinfo=UTC),
        step=None,
    )
    assert _values(three.tally) == _values(_summed({(0, "", 0): Tally()} | quarter, 1)[0])
    twice = [row for row in autumn.rows if row.label == "2026-10-25 02:00"]
    assert [row.offset_label for row in twice] == ["+02:00", "+01:00"]
    assert all(row.tally.offered >= 1 for row in twice)


@pytest.mark.parametrize("channel", ["", "chat"])
def test_filters_by_queue_and_channel_equal_the_python_computation(channel: str) -> None:
    billing, _sales = seed()
    report = interval_report(
        start_date=date(2026, 10, 24),
        end_date=date(2026, 10, 26),
        interval_minutes=30,
        queue_codes=["billing"],
        channel=channel,
    )
    start = local_midnight(date(2026, 10, 24), ROME)
    end = local_midnight(date(2026, 10, 27), ROME)
    expected = _summed(
        python_tallies(
            start=start, end=end, step=timedelta(minutes=30), queue_ids={billing.id}, channel=channel
        ),
        len(report.rows),
    )
    assert [_values(row.tally) for row in report.rows] == [_values(tally) for tally in expected]


def test_interval_stats_equal_the_python_computation_from_any_start() -> None:
    seed()
    # A start that is not on a whole second: buckets are counted from it, to the microsecond.
    start = datetime(2026, 3, 28, 22, 7, 3, 250_000, tzinfo=UTC)
    end = start + timedelta(days=2)
    stats = interval_stats_for(start=start, end=end, interval_minutes=15)
    codes = dict(Queue.objects.values_list("id", "code"))
    expected = python_tallies(start=start, end=end, step=timedelta(minutes=15))
    got = {
        (stat.queue_code, stat.channel, (stat.interval_start - start) // timedelta(minutes=15)): (
            stat.offered,
            stat.answered,
            stat.abandoned,
            stat.answered_within_threshold,
            stat.average_speed_of_answer_seconds,
            stat.average_handle_seconds,
            stat.service_level_percent,
        )
        for stat in stats
        if stat.offered
    }
    assert got == {
        (codes[queue_id], channel, bucket): (
            tally.offered,
            tally.answered,
            tally.abandoned,
            tally.answered_within_threshold,
            tally.average_speed_of_answer_seconds,
            tally.average_handle_seconds,
            tally.service_level_percent,
        )
        for (queue_id, channel, bucket), tally in expected.items()
    }
    assert len(stats) == len({(s.queue_code, s.channel) for s in stats}) * 192


def test_day_so_far_per_queue_and_channel_equals_the_python_computation() -> None:
    seed()
    start = local_midnight(date(2026, 10, 25), ROME)
    end = datetime(2026, 10, 25, 15, 0, tzinfo=UTC)
    with CaptureQueriesContext(connection) as queries:
        got = tallies_by_queue_channel(start=start, end=end)
    assert len(queries) == 1
    expected = python_tallies(start=start, end=end, step=None)
    assert {key: _values(tally) for key, tally in got.items()} == {
        (queue_id, channel): _values(tally) for (queue_id, channel, _bucket), tally in expected.items()
    }


def test_the_report_is_one_query_whatever_the_range() -> None:
    seed()
    with CaptureQueriesContext(connection) as queries:
        interval_report(start_date=date(2026, 3, 28), end_date=date(2026, 3, 30), interval_minutes=15)
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        interval_report(
            start_date=date(2026, 3, 28),
            end_date=date(2026, 3, 30),
            interval_minutes=15,
            queue_codes=["sales"],
        )
    assert len(queries) == 2  # the queue codes, then the sums
