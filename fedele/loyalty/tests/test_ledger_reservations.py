"""Reservations: hold, confirm, cancel, time-out; a release restores the very lots the hold took."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.models import PointsEntry, PointsLot, PointsTransaction, Reservation
from fedele.loyalty.services.ledger import (
    ledger_check,
    lots_expire_due,
    points_earn,
    reservation_confirm,
    reservation_hold,
    reservation_release,
    reservations_expire_due,
)
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, RewardFactory
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed

pytestmark = pytest.mark.django_db
START = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _balances(member) -> tuple[int, int, int]:
    member.refresh_from_db()
    return member.available, member.reserved, member.lifetime_redeemed


@pytest.fixture
def member():
    programme = ProgrammeFactory(expiry_policy="rolling_months", expiry_months=1, reservation_minutes=15)
    member = MemberFactory(programme=programme)
    with time_machine.travel(datetime(2026, 2, 10, tzinfo=UTC), tick=False):
        points_earn(actor=None, member=member, points=100, source="t", idempotency_key="feb")  # → 10 Mar
    with time_machine.travel(datetime(2026, 2, 20, tzinfo=UTC), tick=False):
        points_earn(actor=None, member=member, points=100, source="t", idempotency_key="feb2")  # → 20 Mar
    return member


def _hold(member, points: int, key: str = "h1", actor=None, **kwargs) -> Reservation:
    with time_machine.travel(START, tick=False):
        return reservation_hold(
            actor=actor, member=member, points=points, idempotency_key=key, source="t", **kwargs
        )


def test_hold_moves_points_to_reserved_lot_by_lot(member) -> None:
    reservation = _hold(member, 150)
    assert (reservation.state, reservation.points) == ("held", 150)
    assert reservation.expires_at == START + timedelta(minutes=15)
    legs = list(
        PointsEntry.objects.filter(transaction=reservation.hold_transaction)
        .order_by("id")
        .values_list("account", "points")
    )
    assert legs == [
        ("member_available", -100),
        ("member_reserved", 100),
        ("member_available", -50),
        ("member_reserved", 50),
    ]
    assert _balances(member) == (50, 150, 0)
    assert list(PointsLot.objects.order_by("id").values_list("remaining", "state")) == [
        (0, "spent"),
        (50, "available"),
    ]
    assert _hold(member, 150).pk == reservation.pk  # same key, same reservation
    assert ledger_check() == []


def test_confirm_redeems_once(member) -> None:
    reward = RewardFactory(programme=member.programme)
    reservation = _hold(member, 120, reward=reward, cash_amount=Decimal("2.50"))
    with time_machine.travel(START + timedelta(minutes=5), tick=False):
        redeem = reservation_confirm(actor=None, reservation=reservation)
        assert reservation_confirm(actor=None, reservation=reservation).pk == redeem.pk
    reservation.refresh_from_db()
    assert (reservation.state, reservation.final_transaction_id) == ("confirmed", redeem.pk)
    assert (redeem.points, redeem.cash_amount, redeem.details["reward"]) == (
        120,
        Decimal("2.50"),
        reward.code,
    )
    assert _balances(member) == (80, 0, 120)
    assert ledger_check() == []


def test_release_restores_the_same_lots(member) -> None:
    reservation = _hold(member, 150)
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        release = reservation_release(actor=None, reservation=reservation, reason="customer changed mind")
        assert reservation_release(actor=None, reservation=reservation, reason="again") is None
    assert release is not None and release.kind == "release"
    assert list(PointsLot.objects.order_by("id").values_list("remaining", "state")) == [
        (100, "available"),
        (100, "available"),
    ]
    reservation.refresh_from_db()
    assert reservation.state == "cancelled"
    assert _balances(member) == (200, 0, 0)
    with pytest.raises(Conflict) as error:
        reservation_confirm(actor=None, reservation=reservation)
    assert error.value.code == "reservation_not_held"
    assert ledger_check() == []


def test_timeout_releases_and_confirm_after_the_hold_time_is_refused(member) -> None:
    reservation = _hold(member, 30)
    with time_machine.travel(START + timedelta(minutes=15, seconds=1), tick=False):
        with pytest.raises(Conflict):
            reservation_confirm(actor=None, reservation=reservation)
        assert reservations_expire_due() == 1
        assert reservations_expire_due() == 0
    reservation.refresh_from_db()
    assert reservation.state == "expired"
    assert _balances(member) == (200, 0, 0)
    assert ledger_check() == []


def test_reservation_within_its_time_is_not_released(member) -> None:
    _hold(member, 30)
    assert reservations_expire_due(now=START + timedelta(minutes=14)) == 0
    assert _balances(member) == (170, 30, 0)


def test_points_of_a_lot_that_expired_while_held_go_to_expiry(member) -> None:
    reservation = _hold(member, 120, minutes=60 * 24 * 20)
    lots_expire_due(today=date(2026, 3, 11), programme=member.programme)  # the first lot ran out on 10 Mar
    assert _balances(member) == (80, 120, 0)
    with time_machine.travel(datetime(2026, 3, 12, 9, tzinfo=UTC), tick=False):
        release = reservation_release(actor=None, reservation=reservation, reason="cancelled")
    assert release is not None and release.details["expired"] == 100
    first, second = PointsLot.objects.order_by("id")
    assert (first.remaining, first.state) == (0, "expired")
    assert (second.remaining, second.state) == (100, "available")
    member.refresh_from_db()
    assert (member.available, member.reserved, member.lifetime_expired) == (100, 0, 100)
    assert ledger_check() == []


def test_hold_validation_writes_nothing(member) -> None:
    before = (PointsTransaction.objects.count(), Reservation.objects.count())
    for kwargs, code in [
        ({"points": 201}, "insufficient_balance"),
        ({"points": 0}, "invalid_points"),
        ({"points": 10, "minutes": 0}, "invalid_minutes"),
        ({"points": 10, "cash_amount": Decimal("-1")}, "invalid_cash_amount"),
        ({"points": 10, "reward": RewardFactory()}, "reward_not_in_programme"),
    ]:
        with pytest.raises(ValidationFailed) as error:
            _hold(member, key="bad", **kwargs)
        assert error.value.code == code
    with pytest.raises(ValidationFailed) as error:
        reservation_hold(actor=None, member=member, points=10, idempotency_key="", source="t")
    assert error.value.code == "idempotency_key_required"
    assert (PointsTransaction.objects.count(), Reservation.objects.count()) == before


def test_portal_customer_may_hold_only_for_their_own_membership(member) -> None:
    stranger = actor_for(user_with_roles("portal_customer"))
    with pytest.raises(PermissionDenied):
        _hold(member, 10, actor=stranger)
    assert not Reservation.objects.exists()
