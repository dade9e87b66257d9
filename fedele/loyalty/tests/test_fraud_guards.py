"""Fraud guards on every earn: velocity (earns per hour, points per day), unusual amounts; flags once,
never block the earn."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fedele.loyalty.models import FraudFlag, Member, PointsTransaction, Programme
from fedele.loyalty.services.fraud import earn_guards
from fedele.loyalty.tests.evaluation_support import earn, member_at, rome, utc
from fedele.loyalty.tests.factories import ProgrammeFactory
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def programme() -> Programme:
    created: Programme = ProgrammeFactory(velocity_max_earns_per_hour=20, velocity_max_points_per_day=1000)
    return created


def _flags(member: Member, rule: str | None = None) -> list[FraudFlag]:
    flags = FraudFlag.objects.filter(member=member)
    if rule:
        flags = flags.filter(rule=rule)
    return list(flags.order_by("id"))


def test_the_21st_earn_in_an_hour_raises_one_flag_and_the_22nd_no_other(programme: Programme) -> None:
    member = member_at(programme, utc(2026, 3, 1, 8))
    start = utc(2026, 3, 10, 10)
    for minute in range(20):
        earn(member, 10, start + timedelta(minutes=minute))
    assert _flags(member) == []
    member.refresh_from_db()
    assert member.flagged is False
    twenty_first = earn(member, 10, start + timedelta(minutes=30))
    (flag,) = _flags(member)
    assert (flag.rule, flag.state, flag.transaction_id) == ("velocity_count", "open", twenty_first.pk)
    assert flag.details == {"earns_in_hour": 21, "limit": 20}
    earn(member, 10, start + timedelta(minutes=31))
    assert len(_flags(member)) == 1
    member.refresh_from_db()
    # Flagged, not blocked: every earn went through.
    assert (member.flagged, member.available) == (True, 220)
    assert PointsTransaction.objects.filter(member=member, kind="earn").count() == 22
    audit = AuditLog.objects.get(action="loyalty.fraud_flag_raised", object_id=str(flag.pk))
    assert audit.after is not None and audit.after["rule"] == "velocity_count"
    event = OutboxEvent.objects.get(event_type="loyalty.fraud_flag_raised")
    assert event.payload["flag_id"] == flag.pk and event.payload["member_id"] == str(member.public_id)


def test_the_hour_is_a_sliding_window_up_to_the_earn(programme: Programme) -> None:
    member = member_at(programme, utc(2026, 3, 1))
    start = utc(2026, 3, 10, 10)
    for minute in range(20):
        earn(member, 10, start + timedelta(minutes=minute))
    # Exactly one hour after the first earn: the window (10:00, 11:00] holds 19 + this one = 20.
    earn(member, 10, start + timedelta(hours=1))
    assert _flags(member) == []
    # 30 seconds later: (10:00:30, 11:00:30] holds 19 + 2 = 21.
    earn(member, 10, start + timedelta(hours=1, seconds=30))
    assert len(_flags(member, "velocity_count")) == 1
    # A new flood more than an hour after the flagged earn raises a new flag.
    burst = start + timedelta(hours=2, minutes=10)
    for second in range(21):
        earn(member, 10, burst + timedelta(seconds=second))
    assert len(_flags(member, "velocity_count")) == 2


def test_points_per_day_in_the_programme_time_zone_once_per_day(programme: Programme) -> None:
    member = member_at(programme, rome(2026, 3, 1))
    # 29 March 2026: Rome moves to summer time (the day has 23 hours).
    earn(member, 600, rome(2026, 3, 28, 23, 30))  # the day before
    earn(member, 500, rome(2026, 3, 29, 0, 30))
    earn(member, 500, rome(2026, 3, 29, 22, 0))  # 1,000 on the 29th: at the limit, not over it
    assert _flags(member) == []
    over = earn(member, 1, rome(2026, 3, 29, 23, 59))
    (flag,) = _flags(member, "velocity_points")
    assert flag.transaction_id == over.pk
    assert flag.details == {"day": "2026-03-29", "points_today": 1001, "limit": 1000}
    earn(member, 5, rome(2026, 3, 29, 23, 59))
    assert len(_flags(member, "velocity_points")) == 1
    # 00:10 on the 30th in Rome is still the 29th in UTC: a new day, a new count.
    earn(member, 999, rome(2026, 3, 30, 0, 10))
    assert len(_flags(member, "velocity_points")) == 1
    earn(member, 2, rome(2026, 3, 30, 9, 0))
    assert [f.details["day"] for f in _flags(member, "velocity_points")] == ["2026-03-29", "2026-03-30"]


def test_unusual_amount_against_the_90_day_median(programme: Programme) -> None:
    programme.velocity_max_points_per_day = 10_000_000
    programme.save(update_fields=["velocity_max_points_per_day"])
    member = member_at(programme, utc(2025, 11, 1))
    earn(member, 90, utc(2025, 11, 30))  # 91 days before 1 March: outside the window
    for day, points in ((1, 100), (2, 100), (3, 200), (4, 100)):
        earn(member, points, utc(2026, 2, day))
    # Only four earlier earns in 90 days: not enough history, even for 20 × the median.
    earn(member, 2000, utc(2026, 3, 1))
    assert _flags(member, "unusual_amount") == []
    # Five earlier earns (100, 100, 200, 100, 2000): median 100; 1,000 is not above 10×.
    earn(member, 1000, utc(2026, 3, 2))
    assert _flags(member, "unusual_amount") == []
    # Six (… 1000): median (100 + 200) / 2 = 150; 1,501 is above 1,500.
    big = earn(member, 1501, utc(2026, 3, 2, 12))
    (flag,) = _flags(member, "unusual_amount")
    assert flag.transaction_id == big.pk
    assert flag.details == {"points": 1501, "median_90_days": "150", "earns_90_days": 6}
    member.refresh_from_db()
    assert member.flagged is True


def test_guards_leave_other_kinds_and_members_alone(programme: Programme) -> None:
    member = member_at(programme, utc(2026, 3, 1))
    other = member_at(programme, utc(2026, 3, 1))
    start = utc(2026, 3, 10, 10)
    for minute in range(15):
        earn(member, 10, start + timedelta(minutes=minute))
        earn(other, 10, start + timedelta(minutes=minute))
    assert FraudFlag.objects.count() == 0  # 15 each: the count is per member
    redeem_like = PointsTransaction(kind="redeem", points=1, programme=programme, occurred_at=start)
    assert earn_guards(member, redeem_like) == []


def test_the_guard_costs_two_queries_when_nothing_is_raised(programme: Programme) -> None:
    member = member_at(programme, utc(2026, 3, 1))
    for day in range(1, 7):
        earn(member, 100, utc(2026, 3, day))
    last = earn(member, 150, utc(2026, 3, 8))
    locked = Member.objects.get(pk=member.pk)
    with CaptureQueriesContext(connection) as queries:
        assert earn_guards(locked, last) == []
    assert len(queries.captured_queries) == 2
    small = earn(member, 10, utc(2026, 3, 9))
    with CaptureQueriesContext(connection) as queries:
        assert earn_guards(locked, small) == []
    assert len(queries.captured_queries) == 1
