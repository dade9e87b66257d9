"""Interval reports and the facade's interval_stats: exact numbers on seeded interactions, DST days in
Europe/Rome (23 and 25 hours of intervals), the CSV equal to the table, bad input refused."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse

from fedele.accounts.contracts import Role
from fedele.accounts.tests.factories import UserFactory
from fedele.contact_center import facade
from fedele.contact_center.contracts import IntervalStats
from fedele.contact_center.models import Channel, InteractionState, Outcome
from fedele.contact_center.selectors.reports import interval_report, interval_report_csv
from fedele.contact_center.tests.factories import InteractionFactory, QueueFactory
from fedele.shared.errors import NotFound, ValidationFailed

pytestmark = pytest.mark.django_db


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def answered(
    queue, queued_at: datetime, wait: int, *, talk=100, hold=0, acw=20, channel=Channel.VOICE, ended=True
):
    return InteractionFactory(
        queue=queue,
        channel=channel,
        queued_at=queued_at,
        created_at=queued_at,
        answered_at=queued_at + timedelta(seconds=wait),
        ended_at=queued_at + timedelta(seconds=wait + talk + hold),
        state=InteractionState.ENDED if ended else InteractionState.WRAP_UP,
        outcome=Outcome.HANDLED,
        talk_seconds=talk,
        hold_seconds=hold,
        after_call_seconds=acw if ended else 0,
    )


def abandoned(queue, queued_at: datetime, after: int, *, channel=Channel.VOICE):
    return InteractionFactory(
        queue=queue,
        channel=channel,
        queued_at=queued_at,
        created_at=queued_at,
        ended_at=queued_at + timedelta(seconds=after),
        state=InteractionState.ENDED,
        outcome=Outcome.ABANDONED,
        wait_seconds=after,
    )


@pytest.fixture
def billing_queue():
    return QueueFactory(code="billing", service_level_seconds=20, channels=["voice", "chat"])


def seed_morning(queue) -> None:
    # 2026-06-10 is CEST (UTC+2): local 09:00-09:15 is 07:00-07:15 UTC.
    answered(queue, utc(2026, 6, 10, 7, 0, 10), 5, talk=100, hold=10, acw=30)  # within 20 s
    answered(queue, utc(2026, 6, 10, 7, 5), 20, talk=200, hold=0, acw=10)  # exactly the threshold: within
    answered(queue, utc(2026, 6, 10, 7, 10), 45, talk=60, hold=0, acw=0)  # late
    abandoned(queue, utc(2026, 6, 10, 7, 12), 10)  # abandoned within the threshold: not counted in SL
    abandoned(queue, utc(2026, 6, 10, 7, 14), 30)  # abandoned after: counts against SL
    # Next quarter hour: one answered, still in wrap-up (not in AHT).
    answered(queue, utc(2026, 6, 10, 7, 20), 3, talk=50, ended=False)
    # Never queued (self-service): not offered anywhere.
    InteractionFactory(
        queue=queue, queued_at=None, created_at=utc(2026, 6, 10, 7, 1), state=InteractionState.ENDED
    )


def test_interval_report_counts_and_definitions_on_seeded_contacts(billing_queue) -> None:
    seed_morning(billing_queue)
    report = interval_report(
        start_date=date(2026, 6, 10), end_date=date(2026, 6, 10), interval_minutes=15, time_zone="Europe/Rome"
    )
    assert len(report.rows) == 96
    by_label = {row.label: row.tally for row in report.rows}
    first = by_label["2026-06-10 09:00"]
    assert (first.offered, first.answered, first.abandoned) == (5, 3, 2)
    assert first.answered_within_threshold == 2
    assert first.abandoned_after_threshold == 1
    assert first.service_level_percent == 50.0  # 2 / (3 + 1)
    assert first.abandon_rate_percent == 40.0  # 2 / 5
    assert first.average_speed_of_answer_seconds == 23.3  # (5 + 20 + 45) / 3
    assert first.average_handle_seconds == pytest.approx(136.7)  # (140 + 210 + 60) / 3
    second = by_label["2026-06-10 09:15"]
    assert (second.offered, second.answered, second.abandoned, second.handled) == (1, 1, 0, 0)
    assert second.service_level_percent == 100.0
    assert second.average_handle_seconds == 0.0
    assert by_label["2026-06-10 09:30"].offered == 0
    assert by_label["2026-06-10 09:30"].service_level_percent is None
    assert (report.total.offered, report.total.answered, report.total.abandoned) == (6, 4, 2)
    assert report.total.service_level_percent == 60.0  # 3 / (4 + 1)


def test_hourly_intervals_and_channel_and_queue_filters(billing_queue) -> None:
    seed_morning(billing_queue)
    other = QueueFactory(code="sales", service_level_seconds=60)
    answered(other, utc(2026, 6, 10, 7, 30), 50, channel=Channel.CHAT)  # within sales' 60 s
    answered(billing_queue, utc(2026, 6, 10, 7, 40), 1, channel=Channel.CHAT)
    hourly = interval_report(start_date=date(2026, 6, 10), end_date=date(2026, 6, 10), interval_minutes=60)
    assert len(hourly.rows) == 24
    nine = next(row.tally for row in hourly.rows if row.label == "2026-06-10 09:00")
    assert (nine.offered, nine.answered, nine.answered_within_threshold) == (8, 6, 5)
    chat_only = interval_report(
        start_date=date(2026, 6, 10), end_date=date(2026, 6, 10), interval_minutes=30, channel="chat"
    )
    assert chat_only.total.offered == 2
    assert chat_only.total.answered_within_threshold == 2
    sales_only = interval_report(
        start_date=date(2026, 6, 10), end_date=date(2026, 6, 10), interval_minutes=30, queue_codes=["sales"]
    )
    assert sales_only.total.offered == 1


def test_spring_forward_day_has_92_quarter_hours_and_no_0200() -> None:
    queue = QueueFactory(code="billing", service_level_seconds=20)
    # 2026-03-29 in Rome: 02:00 CET jumps to 03:00 CEST. 01:50 UTC = 03:50 CEST.
    answered(queue, utc(2026, 3, 29, 0, 59, 59), 1)  # 01:59:59 CET, last quarter before the jump
    answered(queue, utc(2026, 3, 29, 1, 0), 1)  # 03:00 CEST, first quarter after the jump
    answered(queue, utc(2026, 3, 28, 22, 59), 1)  # 23:59 CET on the 28th: not in this day
    report = interval_report(start_date=date(2026, 3, 29), end_date=date(2026, 3, 29), interval_minutes=15)
    labels = [row.label for row in report.rows]
    assert len(labels) == 92
    assert "2026-03-29 02:00" not in labels
    assert labels[7:9] == ["2026-03-29 01:45", "2026-03-29 03:00"]
    offered = {row.label: row.tally.offered for row in report.rows if row.tally.offered}
    assert offered == {"2026-03-29 01:45": 1, "2026-03-29 03:00": 1}
    assert (
        len(
            interval_report(
                start_date=date(2026, 3, 29), end_date=date(2026, 3, 29), interval_minutes=60
            ).rows
        )
        == 23
    )


def test_fall_back_day_has_100_quarter_hours_and_the_repeated_hour_twice() -> None:
    queue = QueueFactory(code="billing", service_level_seconds=20)
    # 2026-10-25 in Rome: 03:00 CEST goes back to 02:00 CET; 02:xx happens twice.
    answered(queue, utc(2026, 10, 25, 0, 10), 1)  # 02:10 CEST (first pass)
    answered(queue, utc(2026, 10, 25, 1, 10), 30)  # 02:10 CET (second pass), late
    report = interval_report(start_date=date(2026, 10, 25), end_date=date(2026, 10, 25), interval_minutes=15)
    assert len(report.rows) == 100
    twice = [row for row in report.rows if row.label == "2026-10-25 02:00"]
    assert [row.offset_label for row in twice] == ["+02:00", "+01:00"]
    assert [(row.tally.offered, row.tally.answered_within_threshold) for row in twice] == [(1, 1), (1, 0)]
    assert report.ambiguous_labels == {
        "2026-10-25 02:00",
        "2026-10-25 02:15",
        "2026-10-25 02:30",
        "2026-10-25 02:45",
    }
    assert (
        len(
            interval_report(
                start_date=date(2026, 10, 25), end_date=date(2026, 10, 25), interval_minutes=30
            ).rows
        )
        == 50
    )


def test_csv_is_the_table(billing_queue) -> None:
    seed_morning(billing_queue)
    report = interval_report(start_date=date(2026, 6, 10), end_date=date(2026, 6, 10), interval_minutes=15)
    lines = list(csv.reader(io.StringIO(interval_report_csv(report))))
    assert lines[0][:6] == [
        "interval_start_local",
        "utc_offset",
        "interval_start_utc",
        "offered",
        "answered",
        "abandoned",
    ]
    assert len(lines) == 1 + 96 + 1
    nine = next(line for line in lines if line[0] == "2026-06-10 09:00")
    assert nine == [
        "2026-06-10 09:00",
        "+02:00",
        "2026-06-10T07:00:00Z",
        "5",
        "3",
        "2",
        "2",
        "1",
        "50.0",
        "40.0",
        "23.3",
        "136.7",
    ]
    quiet = next(line for line in lines if line[0] == "2026-06-10 10:00")
    assert quiet[3:] == ["0", "0", "0", "0", "0", "", "", "0.0", "0.0"]
    assert lines[-1] == ["total", "", "", "6", "4", "2", "3", "1", "60.0", "33.3", "18.2", "136.7"]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"interval_minutes": 20}, "invalid_interval"),
        ({"interval_minutes": 0}, "invalid_interval"),
        ({"interval_minutes": -15}, "invalid_interval"),
        ({"end_date": date(2026, 6, 9)}, "invalid_range"),
        ({"end_date": date(2026, 12, 31)}, "range_too_long"),
        ({"time_zone": "Mars/Olympus"}, "invalid_time_zone"),
        ({"queue_codes": ["nope"]}, "unknown_queue"),
        ({"channel": "pigeon"}, "invalid_channel"),
    ],
)
def test_bad_report_input_is_refused(kwargs, code) -> None:
    arguments = {
        "start_date": date(2026, 6, 10),
        "end_date": date(2026, 6, 10),
        "interval_minutes": 15,
        **kwargs,
    }
    with pytest.raises(ValidationFailed) as error:
        interval_report(**arguments)
    assert error.value.code == code


def test_facade_interval_stats_per_queue_and_channel_with_zero_intervals(billing_queue) -> None:
    seed_morning(billing_queue)
    answered(billing_queue, utc(2026, 6, 10, 7, 40), 1, channel=Channel.CHAT)
    stats = facade.interval_stats(
        start=utc(2026, 6, 10, 7, 0), end=utc(2026, 6, 10, 8, 0), interval_minutes=30, queue_code="billing"
    )
    assert all(isinstance(item, IntervalStats) for item in stats)
    assert [(s.queue_code, s.channel, s.interval_start, s.offered) for s in stats] == [
        ("billing", "chat", utc(2026, 6, 10, 7, 0), 0),
        ("billing", "chat", utc(2026, 6, 10, 7, 30), 1),
        ("billing", "voice", utc(2026, 6, 10, 7, 0), 6),
        ("billing", "voice", utc(2026, 6, 10, 7, 30), 0),
    ]
    voice = stats[2]
    assert voice == IntervalStats(
        queue_code="billing",
        channel="voice",
        interval_start=utc(2026, 6, 10, 7, 0),
        interval_minutes=30,
        offered=6,
        answered=4,
        abandoned=2,
        answered_within_threshold=3,
        average_speed_of_answer_seconds=18.2,
        average_handle_seconds=136.7,
        service_level_percent=60.0,
    )
    assert facade.interval_stats(start=utc(2026, 6, 11), end=utc(2026, 6, 12), interval_minutes=60) == []


def test_facade_interval_stats_refuses_bad_input(billing_queue) -> None:
    with pytest.raises(NotFound):
        facade.interval_stats(
            start=utc(2026, 6, 10), end=utc(2026, 6, 11), interval_minutes=15, queue_code="x"
        )
    with pytest.raises(ValidationFailed):
        facade.interval_stats(start=utc(2026, 6, 11), end=utc(2026, 6, 10), interval_minutes=15)
    with pytest.raises(ValidationFailed):
        facade.interval_stats(start=datetime(2026, 6, 10), end=datetime(2026, 6, 11), interval_minutes=15)
    with pytest.raises(ValidationFailed):
        facade.interval_stats(start=utc(2026, 1, 1), end=utc(2026, 12, 1), interval_minutes=60)


def test_report_page_and_csv_download_show_the_same_numbers(client, billing_queue) -> None:
    seed_morning(billing_queue)
    supervisor = UserFactory(roles=[Role.SUPERVISOR])
    client.force_login(supervisor)
    query = {"start": "2026-06-10", "end": "2026-06-10", "interval": "15", "queue": "billing"}
    page = client.get(reverse("contact_center:interval_report"), query)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="report-row-2026-06-10 09:00"' in html
    row = html.split('data-testid="report-row-2026-06-10 09:00"')[1].split("</tr>")[0]
    for value in (">5<", ">3<", ">2<", ">50.0<", ">40.0<", '"23.3">0:23<', '"136.7">2:17<'):
        assert value in row
    download = client.get(reverse("contact_center:interval_report_csv"), query)
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    lines = list(csv.reader(io.StringIO(download.content.decode())))
    assert lines[-1][:6] == ["total", "", "", "6", "4", "2"]


def test_report_page_needs_the_wallboard_permission(client) -> None:
    client.force_login(UserFactory(roles=[Role.AGENT]))
    assert client.get(reverse("contact_center:interval_report")).status_code == 403
    bad = UserFactory(roles=[Role.SUPERVISOR])
    client.force_login(bad)
    response = client.get(
        reverse("contact_center:interval_report"), {"start": "2026-06-10", "end": "2026-06-01"}
    )
    assert response.status_code == 422
    assert "The end date is before the start date." in response.content.decode()
