"""Household transfers with their limits, and purchase refunds before and after maturity."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from fedele.loyalty.models import PointsEntry, PointsLot, PointsTransaction
from fedele.loyalty.services.ledger import (
    ledger_check,
    lots_mature_due,
    points_earn,
    points_redeem,
    points_transfer,
    purchase_refund,
    transaction_reverse,
)
from fedele.loyalty.services.members import household_add, household_create
from fedele.loyalty.tests.factories import MemberFactory, PartnerFactory, ProgrammeFactory
from fedele.shared.errors import NotFound, ValidationFailed

pytestmark = pytest.mark.django_db


def _balances(member) -> tuple[int, int, int, int]:
    member.refresh_from_db()
    return member.available, member.pending, member.reserved, member.debt


def _earn(member, points: int, key: str, when: datetime | None = None, **kwargs) -> PointsTransaction:
    with time_machine.travel(when or datetime(2026, 1, 15, 12, tzinfo=UTC), tick=False):
        return points_earn(
            actor=None, member=member, points=points, source="t", idempotency_key=key, **kwargs
        )


@pytest.fixture
def family():
    programme = ProgrammeFactory(
        transfer_max_points=500, transfer_max_points_per_month=800, household_max_members=3
    )
    parent = MemberFactory(programme=programme)
    child = MemberFactory(programme=programme)
    household = household_create(actor=None, owner=parent, name="Rossi")
    household_add(actor=None, household=household, member=child)
    return parent, child


def _transfer(sender, receiver, points: int, key: str, when: datetime | None = None) -> PointsTransaction:
    with time_machine.travel(when or datetime(2026, 2, 10, 12, tzinfo=UTC), tick=False):
        return points_transfer(
            actor=None, from_member=sender, to_member=receiver, points=points, idempotency_key=key
        )


# ----------------------------------------------------------------------------------------------
# Transfers


def test_transfer_keeps_each_lots_expiry(family) -> None:
    parent, child = family
    _earn(parent, 100, "a", datetime(2026, 1, 5, tzinfo=UTC))
    _earn(parent, 300, "b", datetime(2026, 1, 20, tzinfo=UTC))
    txn = _transfer(parent, child, 250, "t1")
    assert (txn.kind, txn.points, txn.member_id) == ("transfer", 250, parent.pk)
    assert txn.details["to_member"] == str(child.public_id)
    received = list(PointsLot.objects.filter(member=child).order_by("id").values_list("points", "expires_on"))
    assert received == [(100, date(2028, 1, 5)), (150, date(2028, 1, 20))]
    assert _balances(parent) == (150, 0, 0, 0)
    assert _balances(child) == (250, 0, 0, 0)
    assert _transfer(parent, child, 250, "t1").pk == txn.pk
    assert _balances(parent) == (150, 0, 0, 0)
    assert ledger_check() == []


def test_transfer_limits_per_transfer_and_per_calendar_month(family) -> None:
    parent, child = family
    _earn(parent, 2000, "a")
    with pytest.raises(ValidationFailed) as error:
        _transfer(parent, child, 501, "too-big")
    assert error.value.code == "transfer_limit_exceeded"
    _transfer(parent, child, 500, "t1", datetime(2026, 2, 1, 10, tzinfo=UTC))
    _transfer(parent, child, 300, "t2", datetime(2026, 2, 28, 20, tzinfo=UTC))
    with pytest.raises(ValidationFailed) as error:
        # 28 February 22:59 UTC is still February in Rome.
        _transfer(parent, child, 1, "t3", datetime(2026, 2, 28, 22, 59, tzinfo=UTC))
    assert error.value.code == "transfer_monthly_limit_exceeded"
    # 28 February 23:00 UTC is 1 March in Rome: a new month.
    _transfer(parent, child, 100, "t4", datetime(2026, 2, 28, 23, 0, tzinfo=UTC))
    assert _balances(parent) == (1100, 0, 0, 0)
    assert _balances(child) == (900, 0, 0, 0)
    assert ledger_check() == []


def test_transfer_outside_the_household_or_beyond_the_balance_is_refused(family) -> None:
    parent, child = family
    stranger = MemberFactory(programme=parent.programme)
    _earn(parent, 100, "a")
    before = (PointsTransaction.objects.count(), PointsEntry.objects.count())
    with pytest.raises(ValidationFailed) as error:
        _transfer(parent, stranger, 10, "x")
    assert error.value.code == "not_same_household"
    with pytest.raises(ValidationFailed) as error:
        _transfer(parent, child, 101, "y")
    assert error.value.code == "insufficient_balance"
    with pytest.raises(ValidationFailed) as error:
        _transfer(parent, parent, 1, "z")
    assert error.value.code == "same_member"
    assert (PointsTransaction.objects.count(), PointsEntry.objects.count()) == before


def test_household_is_limited_in_size(family) -> None:
    parent, _child = family
    third = MemberFactory(programme=parent.programme)
    household_add(actor=None, household=parent.household, member=third)
    with pytest.raises(ValidationFailed) as error:
        household_add(
            actor=None, household=parent.household, member=MemberFactory(programme=parent.programme)
        )
    assert error.value.code == "household_full"


# ----------------------------------------------------------------------------------------------
# Refunds


@pytest.fixture
def shopper():
    return MemberFactory(programme=ProgrammeFactory(pending_days=14))


def test_refund_within_the_return_window_cancels_the_pending_points(shopper) -> None:
    earn = _earn(shopper, 120, "inv", reference="ORD-1", amount_eur=Decimal("120.00"), pending_days=14)
    assert _balances(shopper) == (0, 120, 0, 0)
    with time_machine.travel(datetime(2026, 1, 20, tzinfo=UTC), tick=False):
        [cancel] = purchase_refund(
            actor=None, programme=shopper.programme, reference="ORD-1", refund_eur=None, idempotency_key="rf"
        )
    assert (cancel.kind, cancel.points) == ("cancel_pending", 120)
    assert sorted(PointsEntry.objects.filter(transaction=cancel).values_list("account", "points")) == [
        ("issuance", 120),
        ("member_pending", -120),
    ]
    assert PointsLot.objects.get(earn_transaction=earn).state == "cancelled"
    assert _balances(shopper) == (0, 0, 0, 0)
    assert lots_mature_due(now=datetime(2026, 3, 1, tzinfo=UTC)) == 0
    again = purchase_refund(
        actor=None, programme=shopper.programme, reference="ORD-1", refund_eur=None, idempotency_key="rf"
    )
    assert [txn.pk for txn in again] == [cancel.pk]
    assert ledger_check() == []


def test_partial_refunds_take_proportional_points_rounded_down_cumulatively(shopper) -> None:
    _earn(shopper, 100, "inv", reference="ORD-2", amount_eur=Decimal("30.00"), pending_days=14)
    with time_machine.travel(datetime(2026, 1, 16, tzinfo=UTC), tick=False):
        first = purchase_refund(
            actor=None,
            programme=shopper.programme,
            reference="ORD-2",
            refund_eur=Decimal("10.00"),
            idempotency_key="r1",
        )
        second = purchase_refund(
            actor=None,
            programme=shopper.programme,
            reference="ORD-2",
            refund_eur=Decimal("10.00"),
            idempotency_key="r2",
        )
    assert [txn.points for txn in first] == [33]  # 100 × 10/30 = 33.3 → 33
    assert [txn.points for txn in second] == [33]  # 100 × 20/30 = 66.6 → 66, minus 33
    assert _balances(shopper) == (0, 34, 0, 0)
    with time_machine.travel(datetime(2026, 1, 17, tzinfo=UTC), tick=False):
        third = purchase_refund(
            actor=None,
            programme=shopper.programme,
            reference="ORD-2",
            refund_eur=Decimal("10.00"),
            idempotency_key="r3",
        )
    assert [txn.points for txn in third] == [34]  # the whole purchase refunded: every point back
    assert _balances(shopper) == (0, 0, 0, 0)
    with pytest.raises(ValidationFailed) as error:
        purchase_refund(
            actor=None,
            programme=shopper.programme,
            reference="ORD-2",
            refund_eur=Decimal("1.00"),
            idempotency_key="r4",
        )
    assert error.value.code == "already_refunded"
    assert ledger_check() == []


def test_refund_after_maturity_is_a_negative_adjustment_and_never_a_negative_balance(shopper) -> None:
    _earn(shopper, 200, "inv", reference="ORD-3", amount_eur=Decimal("200.00"), pending_days=14)
    lots_mature_due(now=datetime(2026, 2, 1, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 2, 2, tzinfo=UTC), tick=False):
        points_redeem(actor=None, member=shopper, points=150, idempotency_key="spend", source="t")
    assert _balances(shopper) == (50, 0, 0, 0)
    with time_machine.travel(datetime(2026, 2, 3, tzinfo=UTC), tick=False):
        [adjust] = purchase_refund(
            actor=None, programme=shopper.programme, reference="ORD-3", refund_eur=None, idempotency_key="rf"
        )
    assert (adjust.kind, adjust.points, adjust.details["direction"]) == ("adjust", 200, "debit")
    assert (adjust.details["from_own_lots"], adjust.details["shortfall"]) == (50, 150)
    assert sorted(PointsEntry.objects.filter(transaction=adjust).values_list("account", "points")) == [
        ("issuance", 200),
        ("member_available", -50),
        ("member_debt", -150),
    ]
    assert _balances(shopper) == (0, 0, 0, 150)
    shopper.refresh_from_db()
    assert shopper.lifetime_earned == 0
    assert ledger_check() == []


def test_refund_after_maturity_with_the_forfeit_policy() -> None:
    shopper = MemberFactory(programme=ProgrammeFactory(pending_days=14, negative_balance_policy="forfeit"))
    _earn(shopper, 200, "inv", reference="ORD-4", amount_eur=Decimal("200.00"), pending_days=14)
    lots_mature_due(now=datetime(2026, 2, 1, tzinfo=UTC))
    points_redeem(actor=None, member=shopper, points=150, idempotency_key="spend", source="t")
    [adjust] = purchase_refund(
        actor=None, programme=shopper.programme, reference="ORD-4", refund_eur=None, idempotency_key="rf"
    )
    assert PointsEntry.objects.get(transaction=adjust, account="forfeit").points == -150
    assert _balances(shopper) == (0, 0, 0, 0)
    assert ledger_check() == []


def test_partial_refund_of_a_partner_earn_nets_the_partner_amount() -> None:
    programme = ProgrammeFactory(pending_days=0, is_coalition=True)
    partner = PartnerFactory(programme=programme, earn_price_per_point=Decimal("0.01"))
    shopper = MemberFactory(programme=programme)
    _earn(shopper, 500, "inv", reference="P-1", amount_eur=Decimal("50.00"), partner=partner)
    [adjust] = purchase_refund(
        actor=None, programme=programme, reference="P-1", refund_eur=Decimal("12.34"), idempotency_key="rf"
    )
    assert adjust.points == 123  # 500 × 12.34/50 = 123.4
    assert adjust.partner_amount == Decimal("1.23")
    assert PointsEntry.objects.get(transaction=adjust, account="partner_issuance").points == 123
    assert _balances(shopper) == (377, 0, 0, 0)
    assert ledger_check() == []


def test_refund_bad_input(shopper) -> None:
    _earn(shopper, 10, "inv", reference="ORD-5", amount_eur=Decimal("10.00"))
    before = PointsTransaction.objects.count()
    with pytest.raises(NotFound) as missing:
        purchase_refund(
            actor=None, programme=shopper.programme, reference="NOPE", refund_eur=None, idempotency_key="a"
        )
    assert missing.value.code == "unknown_reference"
    for amount in (Decimal("0"), Decimal("-1")):
        with pytest.raises(ValidationFailed) as error:
            purchase_refund(
                actor=None,
                programme=shopper.programme,
                reference="ORD-5",
                refund_eur=amount,
                idempotency_key="b",
            )
        assert error.value.code == "invalid_refund_eur"
    assert PointsTransaction.objects.count() == before


def test_reversal_after_a_partial_refund_takes_back_only_the_rest(shopper) -> None:
    earn = _earn(shopper, 100, "inv", reference="ORD-6", amount_eur=Decimal("100.00"))
    purchase_refund(
        actor=None,
        programme=shopper.programme,
        reference="ORD-6",
        refund_eur=Decimal("25.00"),
        idempotency_key="rf",
    )
    assert _balances(shopper) == (75, 0, 0, 0)
    reversal = transaction_reverse(actor=None, transaction=earn, reason="fraud")
    assert (reversal.points, reversal.details["refunded_before"]) == (75, 25)
    assert _balances(shopper) == (0, 0, 0, 0)
    shopper.refresh_from_db()
    assert shopper.lifetime_earned == 0
    assert ledger_check() == []
