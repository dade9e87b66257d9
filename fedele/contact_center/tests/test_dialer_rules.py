"""The dialer's pure rules: numbers, calling windows across DST and holidays, retry times, the 72 h
rule, the regulatory meter on hand-computed data, and the pacing arithmetic."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

import pytest

from fedele.contact_center.dialer.contacts import (
    Window,
    in_window,
    is_public_holiday,
    next_window_start,
    normalise_number,
    retry_at,
)
from fedele.contact_center.dialer.meter import AnsweredCall, is_abandoned, meter_reading
from fedele.contact_center.dialer.pacing import (
    DialMode,
    HandleTimeModel,
    LiveAnswerEstimator,
    PacingInput,
    expected_abandon_rate,
    lines_to_dial,
)

WEEK = [*(Window(day, time(9), time(20)) for day in range(5)), Window(5, time(10), time(14))]
ROME = {"time_zone": "Europe/Rome", "region": "IT", "windows": WEEK}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# -- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "e164", "region", "zone"),
    [
        ("333 123 4567", "+393331234567", "IT", "Europe/Rome"),
        ("+39 06 1234 5678", "+390612345678", "IT", "Europe/Rome"),
        ("0039 02 1234 5678", "+390212345678", "IT", "Europe/Rome"),
        ("+44 20 7946 0018", "+442079460018", "GB", "Europe/London"),
        ("+49 30 123456", "+4930123456", "DE", "Europe/Berlin"),
    ],
)
def test_numbers_become_e164_with_country_and_zone(raw: str, e164: str, region: str, zone: str) -> None:
    number = normalise_number(raw)
    assert (number.e164, number.region, number.time_zone) == (e164, region, zone)


@pytest.mark.parametrize("raw", ["", "   ", "12", "abc", "+39 0", "9" * 41])
def test_bad_numbers_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_number(raw)


# -- windows ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2026, 3, 27, 7, 59), False),  # Friday 08:59 CET
        (utc(2026, 3, 27, 8, 0), True),  # Friday 09:00 CET
        (utc(2026, 3, 27, 18, 59), True),  # 19:59 CET
        (utc(2026, 3, 27, 19, 0), False),  # 20:00 CET: the end is exclusive
        (utc(2026, 3, 28, 9, 0), True),  # Saturday 10:00 CET
        (utc(2026, 3, 28, 13, 0), False),  # Saturday 14:00 CET
        (utc(2026, 3, 29, 10, 0), False),  # Sunday (and the day summer time starts)
        (utc(2026, 3, 30, 6, 59), False),  # Monday 08:59 CEST
        (utc(2026, 3, 30, 7, 0), True),  # Monday 09:00 CEST: one hour earlier in UTC than on Friday
        (utc(2026, 3, 30, 17, 59), True),  # 19:59 CEST
        (utc(2026, 3, 30, 18, 0), False),  # 20:00 CEST
        (utc(2026, 4, 6, 10, 0), False),  # Easter Monday 2026, a public holiday
        (utc(2026, 6, 2, 10, 0), False),  # Festa della Repubblica (Tuesday)
        (utc(2026, 10, 26, 7, 30), False),  # Monday after winter time: 08:30 CET
        (utc(2026, 10, 26, 8, 0), True),  # 09:00 CET
    ],
)
def test_calling_window_in_local_time_across_dst_and_holidays(at: datetime, expected: bool) -> None:
    assert in_window(at, **ROME) is expected


def test_holidays_are_the_contacts_country() -> None:
    assert is_public_holiday(date(2026, 6, 2), "IT") is True
    assert is_public_holiday(date(2026, 6, 2), "GB") is False
    assert is_public_holiday(date(2026, 6, 2), "") is False
    assert is_public_holiday(date(2026, 6, 2), "ZZ") is False


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2026, 3, 27, 10, 0), utc(2026, 3, 27, 10, 0)),  # inside: now
        (utc(2026, 3, 27, 19, 30), utc(2026, 3, 28, 9, 0)),  # Friday evening → Saturday 10:00 CET
        (utc(2026, 3, 28, 13, 30), utc(2026, 3, 30, 7, 0)),  # Saturday afternoon → Monday 09:00 CEST
        (utc(2026, 10, 24, 12, 30), utc(2026, 10, 26, 8, 0)),  # → Monday 09:00 CET (winter time)
        (utc(2026, 4, 4, 13, 0), utc(2026, 4, 7, 7, 0)),  # Easter Saturday → Tuesday (Monday a holiday)
    ],
)
def test_next_window_start(after: datetime, expected: datetime) -> None:
    assert next_window_start(after, **ROME) == expected


def test_no_window_at_all_is_none() -> None:
    assert next_window_start(utc(2026, 3, 27, 10), time_zone="Europe/Rome", region="IT", windows=[]) is None


# -- retries ---------------------------------------------------------------------------------------


def test_busy_retry_after_30_minutes_moves_to_the_next_window() -> None:
    # Monday 19:45 CEST + 30 min = 20:15, past the window → Tuesday 09:00 CEST.
    assert retry_at(
        ended_at=utc(2026, 3, 30, 17, 45), delay=timedelta(minutes=30), next_day=False, **ROME
    ) == utc(2026, 3, 31, 7, 0)
    assert retry_at(
        ended_at=utc(2026, 3, 30, 10, 0), delay=timedelta(minutes=30), next_day=False, **ROME
    ) == utc(2026, 3, 30, 10, 30)


def test_no_answer_after_two_hours_and_machine_next_day() -> None:
    assert retry_at(
        ended_at=utc(2026, 3, 31, 10, 0), delay=timedelta(hours=2), next_day=False, **ROME
    ) == utc(2026, 3, 31, 12, 0)
    assert retry_at(ended_at=utc(2026, 3, 31, 10, 0), delay=timedelta(0), next_day=True, **ROME) == utc(
        2026, 4, 1, 7, 0
    )
    # Machine on a Saturday → Sunday has no window → Monday 09:00.
    assert retry_at(ended_at=utc(2026, 3, 28, 9, 30), delay=timedelta(0), next_day=True, **ROME) == utc(
        2026, 3, 30, 7, 0
    )


def test_abandoned_number_waits_72_hours() -> None:
    abandoned = utc(2026, 3, 24, 10, 0, 0)  # Tuesday
    assert retry_at(
        ended_at=abandoned, delay=timedelta(minutes=30), next_day=False, abandoned_at=abandoned, **ROME
    ) == utc(2026, 3, 27, 10, 0)
    # 72 h later is Saturday 13:30 CET: still in Saturday's window.
    late = utc(2026, 3, 25, 12, 30)
    assert retry_at(ended_at=late, delay=timedelta(0), next_day=False, abandoned_at=late, **ROME) == utc(
        2026, 3, 28, 12, 30
    )


# -- the meter -------------------------------------------------------------------------------------


def test_abandoned_means_live_and_not_connected_within_two_seconds() -> None:
    answered = utc(2026, 3, 2, 10)
    assert is_abandoned(AnsweredCall(answered, answered + timedelta(seconds=2))) is False
    assert is_abandoned(AnsweredCall(answered, answered + timedelta(seconds=2, microseconds=1))) is True
    assert is_abandoned(AnsweredCall(answered, None)) is True
    assert is_abandoned(AnsweredCall(answered, None, machine=True)) is False


def test_meter_on_hand_computed_calls() -> None:
    now = utc(2026, 3, 31, 12)
    calls = []
    # 97 connected within 2 s over the last 29 days.
    for index in range(97):
        answered = now - timedelta(days=29) + timedelta(hours=index)
        calls.append(AnsweredCall(answered, answered + timedelta(seconds=1)))
    # 3 abandoned: one never connected, one connected after 3 s, one dropped, all in the last day.
    calls.append(AnsweredCall(now - timedelta(hours=1), None))
    calls.append(AnsweredCall(now - timedelta(hours=2), now - timedelta(hours=2) + timedelta(seconds=3)))
    calls.append(AnsweredCall(now - timedelta(hours=3), None))
    # Machines and calls older than 30 days do not count.
    calls += [AnsweredCall(now - timedelta(hours=4), None, machine=True)] * 10
    calls.append(AnsweredCall(now - timedelta(days=30, seconds=1), None))

    month = meter_reading(calls, at=now, rule="rolling_30_days")
    assert (month.live_answers, month.abandoned) == (100, 3)
    assert month.rate == pytest.approx(0.03)
    assert month.over_cap is False
    assert month.near_cap is True  # 3 % ≥ 80 % of 3 %
    assert month.headroom == 0

    day = meter_reading(calls, at=now, rule="rolling_24_hours")
    # In the last 24 h: the 3 abandoned and the connected calls answered in that day.
    in_day = sum(1 for c in calls[:97] if c.answered_at > now - timedelta(hours=24))
    assert (day.live_answers, day.abandoned) == (in_day + 3, 3)
    assert day.over_cap is True


def test_empty_meter_reads_zero_and_not_near_cap() -> None:
    reading = meter_reading([], at=utc(2026, 3, 31))
    assert (reading.live_answers, reading.abandoned, reading.rate, reading.near_cap) == (0, 0, 0.0, False)


# -- pacing ----------------------------------------------------------------------------------------


def _brute_rate(lines: int, p: float, free: int, busy: int, q: float) -> float:
    excess = 0.0
    for live in range(lines + 1):
        p_live = math.comb(lines, live) * p**live * (1 - p) ** (lines - live)
        for extra in range(busy + 1):
            p_extra = math.comb(busy, extra) * q**extra * (1 - q) ** (busy - extra)
            excess += p_live * p_extra * max(0, live - free - extra)
    return excess / (lines * p)


@pytest.mark.parametrize(
    ("lines", "free", "busy", "q"), [(1, 0, 0, 0.0), (12, 3, 0, 0.0), (40, 10, 8, 0.2), (5, 5, 2, 0.9)]
)
def test_expected_abandon_rate_matches_brute_force(lines: int, free: int, busy: int, q: float) -> None:
    agents_pmf = [math.comb(busy, k) * q**k * (1 - q) ** (busy - k) for k in range(busy + 1)]
    assert expected_abandon_rate(
        lines=lines, live_probability=0.3, agents_pmf=agents_pmf, agents_base=free
    ) == pytest.approx(_brute_rate(lines, 0.3, free, busy, q), abs=1e-12)


def test_one_free_agent_gets_one_line_at_3_percent() -> None:
    # Two lines: P(both live) = 0.09, expected excess 0.09 over 0.6 live = 15 % > 3 %.
    pacing = PacingInput(DialMode.PREDICTIVE, 1, (), 0, 0.3, 0.03, 100)
    assert lines_to_dial(pacing) == 1


def test_predictive_dials_the_largest_count_under_target() -> None:
    pacing = PacingInput(DialMode.PREDICTIVE, 10, (), 0, 0.3, 0.03, 200)
    count = lines_to_dial(pacing)
    no_busy = [1.0]
    assert (
        expected_abandon_rate(lines=count, live_probability=0.3, agents_pmf=no_busy, agents_base=10) <= 0.03
    )
    assert (
        expected_abandon_rate(lines=count + 1, live_probability=0.3, agents_pmf=no_busy, agents_base=10)
        > 0.03
    )
    assert count > 10
    # Lines already out are subtracted; never negative.
    assert lines_to_dial(PacingInput(DialMode.PREDICTIVE, 10, (), 5, 0.3, 0.03, 200)) == count - 5
    assert lines_to_dial(PacingInput(DialMode.PREDICTIVE, 10, (), 500, 0.3, 0.03, 200)) == 0
    # The line cap holds.
    assert lines_to_dial(PacingInput(DialMode.PREDICTIVE, 10, (), 0, 0.3, 0.03, 12)) == 12


def test_agents_about_to_free_up_add_lines_and_nobody_means_nothing() -> None:
    alone = lines_to_dial(PacingInput(DialMode.PREDICTIVE, 2, (), 0, 0.3, 0.03, 200))
    helped = lines_to_dial(PacingInput(DialMode.PREDICTIVE, 2, (0.9,) * 10, 0, 0.3, 0.03, 200))
    assert helped > alone
    assert lines_to_dial(PacingInput(DialMode.PREDICTIVE, 0, (0.0,) * 10, 0, 0.3, 0.03, 200)) == 0
    assert lines_to_dial(PacingInput(DialMode.PREDICTIVE, 0, (), 0, 0.3, 0.03, 200)) == 0


def test_progressive_is_one_line_per_free_agent_and_preview_dials_nothing() -> None:
    assert lines_to_dial(PacingInput(DialMode.PROGRESSIVE, 5, (0.9,) * 5, 2, 0.3, 0.03, 100)) == 3
    assert lines_to_dial(PacingInput(DialMode.PROGRESSIVE, 5, (), 7, 0.3, 0.03, 100)) == 0
    assert lines_to_dial(PacingInput(DialMode.PREVIEW, 5, (), 0, 0.3, 0.03, 100)) == 0


def test_live_answer_estimator_rolls_with_a_prior() -> None:
    estimator = LiveAnswerEstimator(prior=0.25, prior_weight=4, window=4)
    assert estimator.probability == pytest.approx(0.25)
    for live in (True, True, False, False):
        estimator.record(live)
    assert estimator.probability == pytest.approx((2 + 1) / 8)
    for live in (True, True, True, True):
        estimator.record(live)
    assert (estimator.dials, estimator.live) == (4, 4)
    assert estimator.probability == pytest.approx((4 + 1) / 8)
    with pytest.raises(ValueError):
        LiveAnswerEstimator(prior=0)


def test_handle_time_model_conditional_freeing() -> None:
    model = HandleTimeModel(180, 0.5)
    assert model.cdf(0) == 0.0
    # A lognormal with mean m and CV c has its median at m / sqrt(1 + c²).
    assert model.cdf(180 / math.sqrt(1.25)) == pytest.approx(0.5)
    early = model.free_within(elapsed_seconds=10, horizon_seconds=14)
    late = model.free_within(elapsed_seconds=300, horizon_seconds=14)
    assert 0 <= early < late <= 1
    with pytest.raises(ValueError):
        HandleTimeModel(0)
