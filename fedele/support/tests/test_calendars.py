"""Business-time arithmetic: the acceptance examples (Europe/Rome, Mon–Fri 09:00–18:00) exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from fedele.shared.errors import ValidationFailed
from fedele.support.calendars import (
    BusinessClock,
    CalendarNeverOpen,
    CalendarSpec,
    clock_cache_clear,
    clock_for,
    validate_holiday_region,
    validate_hours,
    validate_timezone,
)
from fedele.support.models import BusinessCalendar, CalendarHoliday, CalendarHours

ROME = ZoneInfo("Europe/Rome")
NINE_TO_SIX = {weekday: ((time(9), time(18)),) for weekday in range(5)}


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)  # type: ignore[misc]


def italy(**overrides: object) -> BusinessClock:
    values: dict[str, object] = {"timezone": "Europe/Rome", "hours": NINE_TO_SIX, "holiday_country": "IT"}
    values.update(overrides)
    return BusinessClock(CalendarSpec(**values))  # type: ignore[arg-type]


def test_friday_evening_plus_four_hours_is_monday_half_past_twelve() -> None:
    due = italy().add_business_minutes(rome(2026, 11, 20, 17, 30), 240)
    assert due.astimezone(ROME) == rome(2026, 11, 23, 12, 30)
    assert due == datetime(2026, 11, 23, 11, 30, tzinfo=UTC)


def test_spring_dst_change_2026() -> None:
    start = rome(2026, 3, 27, 16, 0)
    assert start.astimezone(UTC) == datetime(2026, 3, 27, 15, 0, tzinfo=UTC)  # CET, +01:00
    due = italy().add_business_minutes(start, 240)
    assert due.astimezone(ROME) == rome(2026, 3, 30, 11, 0)
    assert due == datetime(2026, 3, 30, 9, 0, tzinfo=UTC)  # CEST, +02:00


def test_spring_dst_change_2027_lands_on_easter_monday_so_due_is_tuesday() -> None:
    clock = italy()
    assert date(2027, 3, 28).weekday() == 6  # DST Sunday is Easter Sunday in 2027
    assert clock.is_holiday(date(2027, 3, 29))  # Easter Monday: closed
    due = clock.add_business_minutes(rome(2027, 3, 26, 16, 0), 240)
    assert due.astimezone(ROME) == rome(2027, 3, 30, 11, 0)
    assert due == datetime(2027, 3, 30, 9, 0, tzinfo=UTC)


def test_autumn_dst_change_2026() -> None:
    start = rome(2026, 10, 23, 16, 0)
    assert start.astimezone(UTC) == datetime(2026, 10, 23, 14, 0, tzinfo=UTC)  # CEST
    due = italy().add_business_minutes(start, 240)
    assert due.astimezone(ROME) == rome(2026, 10, 26, 11, 0)
    assert due == datetime(2026, 10, 26, 10, 0, tzinfo=UTC)  # CET


def test_dst_days_have_their_real_length_on_an_always_open_calendar() -> None:
    all_day = {weekday: ((time(0), time(23, 59)),) for weekday in range(7)}
    clock = italy(hours=all_day, holiday_country="")
    assert (
        clock.business_seconds_between(rome(2026, 3, 29, 0, 0), rome(2026, 3, 29, 23, 59))
        == (22 * 60 + 59) * 60
    )
    assert (
        clock.business_seconds_between(rome(2026, 10, 25, 0, 0), rome(2026, 10, 25, 23, 59))
        == (24 * 60 + 59) * 60
    )
    due = clock.add_business_minutes(rome(2026, 3, 29, 1, 0), 120)  # 01:00 CET + 2 h → 04:00 CEST
    assert due.astimezone(ROME) == rome(2026, 3, 29, 4, 0)


def test_liberation_day_2025_friday_is_closed() -> None:
    clock = italy()
    assert date(2025, 4, 25).weekday() == 4
    assert clock.is_holiday(date(2025, 4, 25))
    assert not clock.is_open(rome(2025, 4, 25, 10, 0))
    due = clock.add_business_minutes(rome(2025, 4, 24, 17, 0), 120)
    assert due.astimezone(ROME) == rome(2025, 4, 28, 10, 0)
    assert clock.business_seconds_between(rome(2025, 4, 24, 9, 0), rome(2025, 4, 28, 9, 0)) == 9 * 3600


def test_easter_monday_2026_is_closed() -> None:
    clock = italy()
    assert clock.is_holiday(date(2026, 4, 6))
    due = clock.add_business_minutes(rome(2026, 4, 3, 17, 0), 120)  # Good Friday is a working day
    assert due.astimezone(ROME) == rome(2026, 4, 7, 10, 0)


@pytest.mark.django_db
def test_patron_day_as_a_recurring_calendar_holiday() -> None:
    calendar = BusinessCalendar.objects.create(
        name="Roma", timezone="Europe/Rome", holiday_country="IT", created_at=timezone.now()
    )
    for weekday in range(5):
        CalendarHours.objects.create(calendar=calendar, weekday=weekday, starts_at=time(9), ends_at=time(18))
    clock_cache_clear()
    assert not clock_for(calendar).is_holiday(date(2026, 6, 29))  # not a national holiday
    CalendarHoliday.objects.create(
        calendar=calendar, name="Santi Pietro e Paolo", day=date(2020, 6, 29), recurring=True
    )
    CalendarHoliday.objects.create(calendar=calendar, name="Inventario", day=date(2026, 7, 1))
    clock_cache_clear()
    clock = clock_for(calendar)
    assert clock.is_holiday(date(2026, 6, 29))  # Monday
    assert clock.is_holiday(date(2027, 6, 29))  # recurs
    assert clock.is_holiday(date(2026, 7, 1))
    assert not clock.is_holiday(date(2027, 7, 1))  # one-off
    due = clock.add_business_minutes(rome(2026, 6, 26, 17, 0), 120)  # Friday → Tuesday 30 June
    assert due.astimezone(ROME) == rome(2026, 6, 30, 10, 0)
    assert clock.closed_days(date(2026, 6, 1), date(2026, 7, 31)) == [
        date(2026, 6, 2),
        date(2026, 6, 29),
        date(2026, 7, 1),
    ]
    assert clock_for(calendar) is clock  # cached


def test_subdivision_rome_has_the_patron_day_from_the_library() -> None:
    assert italy(holiday_subdivision="RM").is_holiday(date(2026, 6, 29))
    assert not italy().is_holiday(date(2026, 6, 29))


def test_zero_minutes_returns_start_and_negative_is_refused() -> None:
    clock = italy()
    start = rome(2026, 11, 21, 10, 0)  # a Saturday
    assert clock.add_business_minutes(start, 0) == start
    with pytest.raises(ValidationFailed):
        clock.add_business_minutes(start, -1)


def test_ending_exactly_at_closing_time_and_starting_before_opening() -> None:
    clock = italy()
    assert clock.add_business_minutes(rome(2026, 11, 23, 17, 0), 60).astimezone(ROME) == rome(
        2026, 11, 23, 18, 0
    )
    assert clock.add_business_minutes(rome(2026, 11, 23, 6, 0), 30).astimezone(ROME) == rome(
        2026, 11, 23, 9, 30
    )
    assert clock.add_business_minutes(rome(2026, 11, 21, 12, 0), 1).astimezone(ROME) == rome(
        2026, 11, 23, 9, 1
    )


def test_lunch_break_intervals() -> None:
    split = {weekday: ((time(9), time(13)), (time(14), time(18))) for weekday in range(5)}
    clock = italy(hours=split)
    assert clock.add_business_minutes(rome(2026, 11, 23, 12, 0), 120).astimezone(ROME) == rome(
        2026, 11, 23, 15, 0
    )
    assert not clock.is_open(rome(2026, 11, 23, 13, 30))
    assert clock.next_open(rome(2026, 11, 23, 13, 30)).astimezone(ROME) == rome(2026, 11, 23, 14, 0)


def test_week_long_targets_are_fast_and_exact() -> None:
    clock = italy()
    start = rome(2026, 11, 23, 9, 0)  # Monday
    due = clock.add_business_minutes(start, 5400)  # ten business days of 540 minutes
    assert due.astimezone(ROME) == rome(2026, 12, 4, 18, 0)
    # 30 business days skip 8 Dec, 25 Dec, 1 Jan and 6 Jan (26 Dec 2026 is a Saturday).
    long_due = clock.add_business_minutes(start, 540 * 30)
    assert clock.business_seconds_between(start, long_due) == 540 * 30 * 60
    assert long_due.astimezone(ROME) == rome(2027, 1, 7, 18, 0)


def test_is_open_and_next_open() -> None:
    clock = italy()
    assert clock.is_open(rome(2026, 11, 23, 9, 0))
    assert not clock.is_open(rome(2026, 11, 23, 18, 0))
    assert clock.next_open(rome(2026, 11, 20, 18, 0)).astimezone(ROME) == rome(2026, 11, 23, 9, 0)
    assert clock.next_open(rome(2026, 11, 23, 10, 0)) == rome(2026, 11, 23, 10, 0)
    assert clock.next_open(rome(2026, 12, 24, 19, 0)).astimezone(ROME) == rome(2026, 12, 28, 9, 0)


def test_between_is_signed_and_zero_on_closed_time() -> None:
    clock = italy()
    assert clock.business_seconds_between(rome(2026, 11, 21, 8, 0), rome(2026, 11, 22, 20, 0)) == 0
    assert clock.business_seconds_between(rome(2026, 11, 23, 12, 0), rome(2026, 11, 23, 10, 0)) == -7200


def test_calendar_without_hours_raises_a_clear_error() -> None:
    clock = italy(hours={})
    with pytest.raises(CalendarNeverOpen) as caught:
        clock.add_business_minutes(rome(2026, 1, 5, 9, 0), 10)
    assert caught.value.code == "calendar_without_hours"
    with pytest.raises(ValidationFailed) as config_error:
        validate_hours([])
    assert config_error.value.code == "calendar_without_hours"


def test_calendar_closed_every_day_is_detected() -> None:
    always_closed = italy(recurring_closed_days=frozenset((m, d) for m in range(1, 13) for d in range(1, 32)))
    with pytest.raises(CalendarNeverOpen):
        always_closed.add_business_minutes(rome(2026, 1, 5, 9, 0), 10)


def test_configuration_checks() -> None:
    with pytest.raises(ValidationFailed):
        validate_hours([(0, time(18), time(9))])
    with pytest.raises(ValidationFailed):
        validate_hours([(0, time(9), time(13)), (0, time(12), time(18))])
    with pytest.raises(ValidationFailed):
        validate_hours([(7, time(9), time(18))])
    validate_hours([(0, time(9), time(13)), (0, time(13), time(18))])
    with pytest.raises(ValidationFailed):
        validate_timezone("Europe/Nowhere")
    with pytest.raises(ValidationFailed):
        validate_holiday_region("XX", "")
    validate_holiday_region("IT", "RM")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        italy().add_business_minutes(datetime(2026, 1, 5, 9, 0), 10)


def test_leap_day_is_an_ordinary_working_day() -> None:
    clock = italy()
    due = clock.add_business_minutes(rome(2028, 2, 28, 17, 0), 120)  # Monday 28 → Tuesday 29 February
    assert due.astimezone(ROME) == rome(2028, 2, 29, 10, 0)


@settings(max_examples=150, deadline=None)
@given(
    offset_minutes=st.integers(min_value=0, max_value=3 * 366 * 24 * 60),
    minutes=st.integers(min_value=0, max_value=20_000),
    seconds=st.integers(min_value=0, max_value=59),
)
def test_between_is_the_inverse_of_add(offset_minutes: int, minutes: int, seconds: int) -> None:
    clock = italy(holiday_subdivision="RM")
    start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=offset_minutes, seconds=seconds)
    due = clock.add_business_minutes(start, minutes)
    assert due >= start
    assert clock.business_seconds_between(start, due) == minutes * 60
    if minutes:
        assert clock.is_open(due - timedelta(microseconds=1))
