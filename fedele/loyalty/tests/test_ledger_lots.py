"""Lots: first-expiring-first consumption, expiry dates (rolling, month end, leap day, end of year,
DST) and the expiry job."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from fedele.loyalty.models import Account, PointsEntry, PointsLot, PointsTransaction, TransactionKind
from fedele.loyalty.services.ledger import (
    ledger_check,
    liability,
    lots_expire_due,
    points_earn,
    points_redeem,
)
from fedele.loyalty.services.ledger_core import add_months, lot_expiry
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory
from fedele.shared.models import OutboxEvent

pytestmark = pytest.mark.django_db


def _at(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=UTC)


def _earn(member, points: int, key: str, when: datetime) -> PointsTransaction:
    with time_machine.travel(when, tick=False):
        return points_earn(actor=None, member=member, points=points, source="test", idempotency_key=key)


@pytest.fixture
def monthly():
    """Points expire one month after they are earned: March and June lots are easy to make."""
    return ProgrammeFactory(expiry_policy="rolling_months", expiry_months=1)


def test_redeem_empties_the_march_lot_first_and_expiry_takes_nothing_more(monthly) -> None:
    member = MemberFactory(programme=monthly)
    _earn(member, 100, "earn-feb", _at(2026, 2, 20))  # expires 20 March
    _earn(member, 50, "earn-may", _at(2026, 5, 10))  # expires 10 June
    march, june = PointsLot.objects.filter(member=member).order_by("id")
    assert (march.expires_on, june.expires_on) == (date(2026, 3, 20), date(2026, 6, 10))

    with time_machine.travel(_at(2026, 3, 1), tick=False):
        redeem = points_redeem(
            actor=None, member=member, points=120, idempotency_key="redeem-1", source="test"
        )
    march.refresh_from_db()
    june.refresh_from_db()
    assert (march.remaining, march.state) == (0, "spent")
    assert (june.remaining, june.state) == (30, "available")
    assert redeem.kind == TransactionKind.REDEEM and redeem.points == 120
    member.refresh_from_db()
    assert (member.available, member.reserved, member.lifetime_redeemed) == (30, 0, 120)

    transactions_before = PointsTransaction.objects.count()
    assert lots_expire_due(today=date(2026, 4, 1), programme=monthly) == 0
    assert PointsTransaction.objects.count() == transactions_before
    member.refresh_from_db()
    assert (member.available, member.lifetime_expired) == (30, 0)
    assert ledger_check() == []


def test_expiry_on_1_april_takes_exactly_what_is_left_in_the_march_lot(monthly) -> None:
    member = MemberFactory(programme=monthly)
    _earn(member, 100, "earn-feb", _at(2026, 2, 20))
    _earn(member, 50, "earn-may", _at(2026, 5, 10))
    with time_machine.travel(_at(2026, 3, 1), tick=False):
        points_redeem(actor=None, member=member, points=80, idempotency_key="redeem-1", source="test")

    with time_machine.travel(_at(2026, 4, 1, 3), tick=False):
        assert lots_expire_due(today=date(2026, 4, 1)) == 1
        assert lots_expire_due(today=date(2026, 4, 1)) == 0  # idempotent

    march, june = PointsLot.objects.filter(member=member).order_by("id")
    assert (march.remaining, march.state) == (0, "expired")
    assert (june.remaining, june.state) == (50, "available")
    expire = PointsTransaction.objects.get(kind=TransactionKind.EXPIRE)
    assert (expire.member_id, expire.points) == (member.pk, 20)
    legs = sorted(PointsEntry.objects.filter(transaction=expire).values_list("account", "points", "lot_id"))
    assert legs == [("expiry", 20, None), ("member_available", -20, march.pk)]
    member.refresh_from_db()
    assert (member.available, member.lifetime_expired) == (50, 20)
    event = OutboxEvent.objects.get(event_type="loyalty.points_expired")
    assert event.payload["points"] == 20 and event.payload["expired_on"] == "2026-04-01"
    assert event.payload["member_id"] == str(member.public_id)
    figures = liability(programme=monthly)
    assert (figures.outstanding, figures.expired, figures.issued, figures.redeemed) == (50, 20, 150, 80)
    assert figures.outstanding_eur == Decimal("0.50")
    assert ledger_check() == []


def test_lot_expiring_today_is_still_usable_and_expires_tomorrow(monthly) -> None:
    member = MemberFactory(programme=monthly)
    _earn(member, 10, "k", _at(2026, 2, 20))
    assert lots_expire_due(today=date(2026, 3, 20), programme=monthly) == 0
    assert lots_expire_due(today=date(2026, 3, 21), programme=monthly) == 1
    member.refresh_from_db()
    assert member.available == 0
    assert ledger_check() == []


@pytest.mark.parametrize(
    ("earned", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2028, 2, 29), 48, date(2032, 2, 29)),
        (date(2026, 3, 31), 24, date(2028, 3, 31)),
        (date(2026, 8, 31), 1, date(2026, 9, 30)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2026, 5, 10), 0, date(2026, 5, 10)),
    ],
)
def test_add_months_clamps_to_the_month_end(earned: date, months: int, expected: date) -> None:
    assert add_months(earned, months) == expected


def test_leap_day_earn_expires_on_28_february_the_next_year() -> None:
    programme = ProgrammeFactory(expiry_policy="rolling_months", expiry_months=12)
    member = MemberFactory(programme=programme)
    _earn(member, 100, "leap", _at(2028, 2, 29))
    lot = PointsLot.objects.get(member=member)
    assert lot.expires_on == date(2029, 2, 28)
    assert lots_expire_due(today=date(2029, 2, 28), programme=programme) == 0
    assert lots_expire_due(today=date(2029, 3, 1), programme=programme) == 1


def test_end_of_year_policy_expires_on_31_december_of_year_n() -> None:
    programme = ProgrammeFactory(expiry_policy="end_of_year", expiry_years=1)
    member = MemberFactory(programme=programme)
    _earn(member, 10, "a", _at(2026, 1, 1))
    _earn(member, 20, "b", _at(2026, 12, 31))
    assert list(
        PointsLot.objects.filter(member=member).order_by("id").values_list("expires_on", flat=True)
    ) == [
        date(2027, 12, 31),
        date(2027, 12, 31),
    ]
    assert lots_expire_due(today=date(2027, 12, 31), programme=programme) == 0
    assert lots_expire_due(today=date(2028, 1, 1), programme=programme) == 2
    expire = PointsTransaction.objects.get(kind="expire")
    assert expire.points == 30  # one transaction per member and run


def test_never_expiring_points_are_consumed_last() -> None:
    programme = ProgrammeFactory(expiry_policy="none")
    member = MemberFactory(programme=programme)
    _earn(member, 40, "forever", _at(2026, 1, 1))
    programme.expiry_policy = "rolling_months"
    programme.expiry_months = 6
    programme.save()
    member.refresh_from_db()
    _earn(member, 40, "six-months", _at(2026, 2, 1))
    forever, dated = PointsLot.objects.filter(member=member).order_by("id")
    assert (forever.expires_on, dated.expires_on) == (None, date(2026, 8, 1))
    with time_machine.travel(_at(2026, 3, 1), tick=False):
        points_redeem(actor=None, member=member, points=50, idempotency_key="r", source="test")
    forever.refresh_from_db()
    dated.refresh_from_db()
    assert (dated.remaining, forever.remaining) == (0, 30)
    assert lots_expire_due(today=date(2099, 1, 1), programme=programme) == 0
    assert ledger_check() == []


def test_earn_day_is_the_programme_day_not_the_utc_day() -> None:
    """23:30 UTC on 31 January is already 1 February in Rome: the lot expires on 1 March."""
    programme = ProgrammeFactory(expiry_policy="rolling_months", expiry_months=1, timezone="Europe/Rome")
    assert lot_expiry(programme, datetime(2026, 1, 31, 23, 30, tzinfo=UTC)) == date(2026, 3, 1)
    assert lot_expiry(programme, datetime(2026, 1, 31, 22, 59, tzinfo=UTC)) == date(2026, 2, 28)


def test_expiry_day_boundary_in_rome_across_the_spring_dst_change() -> None:
    """The lot's last day is Sunday 29 March 2026, when Rome moves to summer time (UTC+2) at 01:00
    UTC: the day ends at local midnight, 22:00 UTC, not at midnight UTC nor at 23:00 UTC."""
    programme = ProgrammeFactory(expiry_policy="rolling_months", expiry_months=2, timezone="Europe/Rome")
    member = MemberFactory(programme=programme)
    _earn(member, 70, "dst", _at(2026, 1, 29, 12))
    lot = PointsLot.objects.get(member=member)
    assert lot.expires_on == date(2026, 3, 29)
    with time_machine.travel(datetime(2026, 3, 29, 21, 59, tzinfo=UTC), tick=False):
        assert lots_expire_due(programme=programme) == 0
    with time_machine.travel(datetime(2026, 3, 29, 22, 0, tzinfo=UTC), tick=False):
        assert lots_expire_due(programme=programme) == 1
    lot.refresh_from_db()
    assert (lot.state, lot.remaining) == ("expired", 0)


def test_expiry_day_boundary_in_rome_across_the_autumn_dst_change() -> None:
    """Rome leaves summer time on 25 October 2026: 24 October ends at 22:00 UTC (UTC+2)."""
    programme = ProgrammeFactory(expiry_policy="rolling_months", expiry_months=1, timezone="Europe/Rome")
    member = MemberFactory(programme=programme)
    _earn(member, 5, "autumn", _at(2026, 9, 24, 12))
    assert PointsLot.objects.get(member=member).expires_on == date(2026, 10, 24)
    with time_machine.travel(datetime(2026, 10, 24, 21, 59, tzinfo=UTC), tick=False):
        assert lots_expire_due(programme=programme) == 0
    with time_machine.travel(datetime(2026, 10, 24, 22, 0, tzinfo=UTC), tick=False):
        assert lots_expire_due(programme=programme) == 1
    assert PointsEntry.objects.filter(account=Account.EXPIRY).get().points == 5
    assert ledger_check() == []
