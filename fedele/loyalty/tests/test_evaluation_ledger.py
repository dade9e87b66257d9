"""Programme evaluation from the ledger: summary rates, breakage (to date, by cohort), liability over
time and the breakage forecast, on small hand-built histories posted through the ledger services."""

from __future__ import annotations

from datetime import UTC, date
from decimal import Decimal

import pytest
import time_machine

from fedele.loyalty.models import Programme
from fedele.loyalty.selectors.evaluation_ledger import (
    breakage,
    breakage_forecast,
    liability,
    months_to_expiry,
    summary,
)
from fedele.loyalty.services.ledger import reservation_hold, transaction_reverse
from fedele.loyalty.tests.evaluation_support import earn, expire, member_at, period, redeem, rome
from fedele.loyalty.tests.factories import ProgrammeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def programme() -> Programme:
    created: Programme = ProgrammeFactory(
        expiry_policy="rolling_months", expiry_months=2, point_value=Decimal("0.010000")
    )
    return created


def _history(programme: Programme) -> None:
    """1,000 points issued in January; 850 redeemed in February; the 150 left expire in March."""
    alice = member_at(programme, rome(2026, 1, 5))
    bruno = member_at(programme, rome(2026, 1, 6))
    earn(alice, 600, rome(2026, 1, 10))  # last day 10 March
    earn(bruno, 400, rome(2026, 1, 20))  # last day 20 March
    redeem(alice, 550, rome(2026, 2, 1))
    redeem(bruno, 300, rome(2026, 2, 15))
    assert expire(programme, date(2026, 3, 25)) == 2


def test_breakage_is_expired_over_issued_to_date_and_by_cohort(programme: Programme) -> None:
    _history(programme)
    result = breakage(period(programme, date(2026, 1, 1), date(2026, 3, 31)))
    assert (result.issued, result.expired, result.breakage) == (1000, 150, Decimal("15.00"))
    january, february, march = result.cohorts
    assert (january.month, january.issued, january.used, january.expired, january.open) == (
        date(2026, 1, 1),
        1000,
        850,
        150,
        0,
    )
    assert january.breakage == Decimal("15.00")
    assert (february.issued, february.breakage, march.issued, march.breakage) == (0, None, 0, None)
    # Before the expiry run nothing has expired yet: breakage to the end of February is 0 %.
    before = breakage(period(programme, date(2026, 1, 1), date(2026, 2, 28)))
    assert (before.issued, before.expired, before.breakage) == (1000, 0, Decimal("0.00"))
    assert before.cohorts[0].open == 150


def test_breakage_without_issuance_is_undefined_not_zero(programme: Programme) -> None:
    result = breakage(period(programme, date(2026, 1, 1), date(2026, 1, 31)))
    assert (result.issued, result.expired, result.breakage) == (0, 0, None)


def test_liability_month_ends_from_cumulative_ledger_sums(programme: Programme) -> None:
    _history(programme)
    months = liability(period(programme, date(2026, 1, 1), date(2026, 4, 15)))
    assert [(m.month_end, m.outstanding, m.value_eur) for m in months] == [
        (date(2026, 1, 31), 1000, Decimal("10.00")),
        (date(2026, 2, 28), 150, Decimal("1.50")),
        (date(2026, 3, 31), 0, Decimal("0.00")),
        (date(2026, 4, 15), 0, Decimal("0.00")),  # the period ends mid-month
    ]
    # A period starting later carries the opening balance from before it.
    later = liability(period(programme, date(2026, 2, 1), date(2026, 2, 28)))
    assert [(m.month_end, m.available, m.outstanding) for m in later] == [(date(2026, 2, 28), 150, 150)]


def test_liability_splits_pending_reserved_and_debt(programme: Programme) -> None:
    carla = member_at(programme, rome(2026, 1, 2))
    earned = earn(carla, 100, rome(2026, 1, 5))
    redeem(carla, 80, rome(2026, 1, 6))
    with time_machine.travel(rome(2026, 2, 3), tick=False):
        transaction_reverse(actor=None, transaction=earned, reason="fraud")  # 20 back, 80 owed
    dario = member_at(programme, rome(2026, 2, 1))
    earn(dario, 50, rome(2026, 2, 20), pending_days=30)
    elena = member_at(programme, rome(2026, 3, 1))
    earn(elena, 200, rome(2026, 3, 1))
    with time_machine.travel(rome(2026, 3, 2), tick=False):
        reservation_hold(actor=None, member=elena, points=30, idempotency_key="hold-1", source="test")
    january, february, march = liability(period(programme, date(2026, 1, 1), date(2026, 3, 31)))
    assert (january.available, january.pending, january.reserved, january.debt, january.outstanding) == (
        20,
        0,
        0,
        0,
        20,
    )
    assert (february.available, february.pending, february.debt, february.outstanding) == (0, 50, 80, -30)
    assert february.value_eur == Decimal("-0.30")
    assert (march.available, march.pending, march.reserved, march.debt, march.outstanding) == (
        170,
        50,
        30,
        80,
        170,
    )
    assert march.value_eur == Decimal("1.70")


def test_liability_month_boundaries_follow_the_programme_time_zone(programme: Programme) -> None:
    member = member_at(programme, rome(2026, 1, 1))
    # 00:30 on 1 February in Rome is still 31 January in UTC: it belongs to February's month end.
    earn(member, 70, rome(2026, 2, 1, 0, 30))
    january, february = liability(period(programme, date(2026, 1, 1), date(2026, 2, 28)))
    assert (january.outstanding, february.outstanding) == (0, 70)


def test_summary_rates(programme: Programme) -> None:
    _history(programme)
    quiet = member_at(programme, rome(2026, 1, 7))
    earn(quiet, 10, rome(2026, 1, 8))  # active in January only
    suspended = member_at(programme, rome(2026, 1, 7), status="suspended")
    # As of 31 May: the last 90 days start on 2 March; nobody earned or redeemed since.
    result = summary(period(programme, date(2026, 3, 1), date(2026, 5, 31)))
    assert (result.active_members, result.active_last_90_days, result.active_rate) == (3, 0, Decimal("0.00"))
    assert (result.points_issued, result.points_redeemed, result.points_expired) == (0, 0, 150)
    assert result.earn_burn_ratio is None
    assert (result.members, result.members_redeemed, result.redemption_rate) == (4, 2, Decimal("50.00"))
    # As of 28 February: the window starts on 30 November; every active member earned in January.
    february = summary(period(programme, date(2026, 1, 1), date(2026, 2, 28)))
    assert (february.active_members, february.active_last_90_days, february.active_rate) == (
        3,
        3,
        Decimal("100.00"),
    )
    assert (february.points_issued, february.points_redeemed) == (1010, 850)
    assert february.earn_burn_ratio == Decimal("1.19")  # 1010 / 850 = 1.188…
    assert suspended.status == "suspended"


def test_summary_counts_only_members_enrolled_by_the_end(programme: Programme) -> None:
    early = member_at(programme, rome(2026, 1, 5))
    earn(early, 100, rome(2026, 1, 6))
    member_at(programme, rome(2026, 3, 1))
    result = summary(period(programme, date(2026, 1, 1), date(2026, 1, 31)))
    assert (result.members, result.active_members, result.active_last_90_days) == (1, 1, 1)
    assert result.redemption_rate == Decimal("0.00")


@pytest.mark.parametrize(
    ("expires_on", "day", "expected"),
    [
        (date(2026, 3, 10), date(2026, 3, 10), 0),
        (date(2026, 3, 10), date(2026, 3, 9), 1),
        (date(2026, 3, 10), date(2026, 2, 10), 1),
        (date(2026, 3, 10), date(2026, 2, 9), 2),
        (date(2026, 3, 10), date(2026, 1, 10), 2),
        (date(2026, 3, 31), date(2026, 2, 28), 1),  # 31 March − 1 month = 28 February
        (date(2026, 3, 31), date(2026, 2, 27), 2),
        (date(2028, 2, 29), date(2027, 2, 28), 12),  # leap day: 29 Feb 2028 − 12 months = 28 Feb 2027
        (date(2028, 2, 29), date(2027, 2, 27), 13),
    ],
)
def test_months_to_expiry_counts_checkpoints_still_ahead(expires_on: date, day: date, expected: int) -> None:
    assert months_to_expiry(expires_on, day) == expected


def test_forecast_without_history_says_so_instead_of_inventing(programme: Programme) -> None:
    member = member_at(programme, rome(2026, 1, 5))
    earn(member, 500, rome(2026, 1, 10))
    result = breakage_forecast(period(programme, date(2026, 1, 1), date(2026, 1, 31)))
    assert result.has_history is False
    assert (result.resolved_lots, result.open_points) == (0, 500)
    assert (result.expected_expiry, result.expected_expiry_eur, result.expected_share) == (None, None, None)
    assert [(m.expiry_month, m.open_points, m.expected_expiry) for m in result.months] == [
        (date(2026, 3, 1), 500, None)
    ]


def test_forecast_applies_the_historical_curve_to_open_lots(programme: Programme) -> None:
    _history(programme)
    # A third resolved lot that was whole one month before its expiry and then fully redeemed.
    carla = member_at(programme, rome(2026, 1, 14))
    earn(carla, 500, rome(2026, 1, 15))  # last day 15 March; checkpoint k=1 is 15 February
    redeem(carla, 500, rome(2026, 2, 20))
    # Open on 31 March: 80 expiring 10 April (next checkpoint: k=0), 200 and 100 expiring in May
    # (next checkpoint: k=1).
    dario = member_at(programme, rome(2026, 2, 1))
    earn(dario, 80, rome(2026, 2, 10))
    fresh = member_at(programme, rome(2026, 3, 1))
    earn(fresh, 200, rome(2026, 3, 5))
    earn(fresh, 100, rome(2026, 3, 20))
    result = breakage_forecast(period(programme, date(2026, 1, 1), date(2026, 3, 31)))
    assert result.has_history is True
    assert result.resolved_lots == 3
    # k=1 (10, 20 and 15 February): alice 50 left, bruno 100, carla 500 → 650, of which 150 expired.
    # k=0 (the last usable days): alice 50, bruno 100, carla 0 → 150, all expired.
    assert [(p.months_to_expiry, p.lots, p.unredeemed, p.expired, p.expiry_share) for p in result.curve] == [
        (0, 3, 150, 150, Decimal("100.00")),
        (1, 3, 650, 150, Decimal("23.08")),
    ]
    # April: 80 × 150/150 = 80. May: (200 + 100) × 150/650 = 69.23 → 69.
    assert [(m.expiry_month, m.open_points, m.expected_expiry, m.expected_share) for m in result.months] == [
        (date(2026, 4, 1), 80, 80, Decimal("100.00")),
        (date(2026, 5, 1), 300, 69, Decimal("23.00")),
    ]
    assert (
        result.open_points,
        result.expected_expiry,
        result.expected_expiry_eur,
        result.expected_share,
    ) == (
        380,
        149,
        Decimal("1.49"),
        Decimal("39.21"),
    )


def test_forecast_uses_the_nearest_checkpoint_with_history_and_ignores_never_expiring_lots() -> None:
    programme: Programme = ProgrammeFactory(expiry_policy="rolling_months", expiry_months=1)
    old = member_at(programme, rome(2026, 1, 1))
    earn(old, 100, rome(2026, 1, 10))  # last day 10 February; checkpoint k=0 only
    redeem(old, 40, rome(2026, 1, 20))
    expire(programme, date(2026, 2, 11))
    # Twelve months later the same programme gives 24-month lots: k=11 has no history → k=0's 100 %.
    programme.expiry_months = 24
    programme.save(update_fields=["expiry_months"])
    new = member_at(programme, rome(2027, 1, 1))
    earn(new, 90, rome(2027, 1, 10))
    programme.expiry_policy = "none"
    programme.save(update_fields=["expiry_policy"])
    earn(new, 500, rome(2027, 1, 11))
    result = breakage_forecast(period(programme, date(2027, 1, 1), date(2027, 1, 31)))
    assert [(p.months_to_expiry, p.unredeemed, p.expired) for p in result.curve] == [(0, 60, 60)]
    assert (result.open_points, result.open_points_never_expiring, result.expected_expiry) == (590, 500, 90)
    assert [(m.expiry_month, m.expected_expiry) for m in result.months] == [(date(2029, 1, 1), 90)]


def test_period_helpers_on_a_leap_february(programme: Programme) -> None:
    leap = period(programme, date(2028, 2, 1), date(2028, 2, 29))
    assert leap.days == 29
    assert leap.halves() == ((date(2028, 2, 1), date(2028, 2, 15)), (date(2028, 2, 16), date(2028, 2, 29)))
    assert leap.previous() == (date(2028, 1, 3), date(2028, 1, 31))
    assert [m.month_end for m in liability(leap)] == [date(2028, 2, 29)]
    one_day = period(programme, date(2028, 2, 29), date(2028, 2, 29))
    assert one_day.halves() == (
        (date(2028, 2, 29), date(2028, 2, 29)),
        (date(2028, 2, 29), date(2028, 2, 29)),
    )
    # Local midnights across the DST change: 29 March 2026 lasts 23 hours in Rome.
    dst = period(programme, date(2026, 3, 29), date(2026, 3, 29))
    assert (dst.ends_at.astimezone(UTC) - dst.starts_at.astimezone(UTC)).total_seconds() == 23 * 3600
