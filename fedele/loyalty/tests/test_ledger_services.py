"""Earn, redeem, adjust, forfeit, reverse: exact balances, entries and no side effect on bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty import hooks
from fedele.loyalty.models import PointsEntry, PointsLot, PointsTransaction, Reservation
from fedele.loyalty.services.ledger import (
    ledger_check,
    lots_mature_due,
    points_adjust,
    points_earn,
    points_forfeit,
    points_redeem,
    transaction_reverse,
)
from fedele.loyalty.tests.factories import MemberFactory, PartnerFactory, ProgrammeFactory
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, int, int, int, int]:
    return (
        PointsTransaction.objects.count(),
        PointsEntry.objects.count(),
        PointsLot.objects.count(),
        Reservation.objects.count(),
        OutboxEvent.objects.count(),
    )


def _balances(member) -> tuple[int, int, int, int]:
    member.refresh_from_db()
    return member.available, member.pending, member.reserved, member.debt


def _earn(member, points: int, key: str | None = None, **kwargs) -> PointsTransaction:
    return points_earn(actor=None, member=member, points=points, source="test", idempotency_key=key, **kwargs)


@pytest.fixture
def member():
    return MemberFactory(programme=ProgrammeFactory(pending_days=14))


def test_earn_writes_a_balanced_transaction_a_lot_the_event_and_the_audit_row(member) -> None:
    txn = _earn(member, 250, "inv-1", reference="INV-1", amount_eur=Decimal("25.004"))
    assert (txn.kind, txn.points, txn.qualifying_points, txn.amount_eur) == (
        "earn",
        250,
        250,
        Decimal("25.00"),
    )
    legs = sorted(PointsEntry.objects.filter(transaction=txn).values_list("account", "points"))
    assert legs == [("issuance", -250), ("member_available", 250)]
    lot = PointsLot.objects.get(earn_transaction=txn)
    assert (lot.points, lot.remaining, lot.state) == (250, 250, "available")
    assert member.available == 250  # the caller's instance is refreshed
    assert _balances(member) == (250, 0, 0, 0)
    member.refresh_from_db()
    assert member.lifetime_earned == 250
    event = OutboxEvent.objects.get(event_type="loyalty.points_earned")
    assert event.payload["points"] == 250 and event.payload["pending"] is False
    assert AuditLog.objects.filter(action="loyalty.points_earned", object_id=str(txn.public_id)).count() == 1
    assert ledger_check() == []


def test_same_idempotency_key_returns_the_first_transaction_and_writes_nothing(member) -> None:
    first = _earn(member, 100, "same")
    before = _counts()
    again = _earn(member, 100, "same")
    assert again.pk == first.pk
    assert _counts() == before
    assert _balances(member) == (100, 0, 0, 0)


def test_same_key_for_another_member_is_a_conflict(member) -> None:
    _earn(member, 100, "shared-key")
    other = MemberFactory(programme=member.programme)
    with pytest.raises(Conflict) as error:
        _earn(other, 100, "shared-key")
    assert error.value.code == "idempotency_key_reused"
    assert _balances(other) == (0, 0, 0, 0)


def test_pending_earn_matures_after_the_return_window(member) -> None:
    with time_machine.travel(datetime(2026, 5, 1, 9, tzinfo=UTC), tick=False):
        txn = _earn(member, 80, "pending", pending_days=14)
    lot = PointsLot.objects.get(earn_transaction=txn)
    assert (lot.state, lot.matures_at) == ("pending", datetime(2026, 5, 15, 9, tzinfo=UTC))
    assert sorted(PointsEntry.objects.filter(transaction=txn).values_list("account", "points")) == [
        ("issuance", -80),
        ("member_pending", 80),
    ]
    assert _balances(member) == (0, 80, 0, 0)
    assert lots_mature_due(now=datetime(2026, 5, 15, 8, 59, tzinfo=UTC)) == 0
    assert lots_mature_due(now=datetime(2026, 5, 15, 9, 0, tzinfo=UTC)) == 1
    assert lots_mature_due(now=datetime(2026, 5, 16, tzinfo=UTC)) == 0
    lot.refresh_from_db()
    assert (lot.state, lot.remaining) == ("available", 80)
    assert _balances(member) == (80, 0, 0, 0)
    assert ledger_check() == []


@pytest.mark.parametrize(
    ("points", "code"),
    [
        (0, "invalid_points"),
        (-5, "invalid_points"),
        (10_000_001, "points_too_large"),
        (1.5, "invalid_points"),
    ],
)
def test_bad_points_are_refused_and_nothing_is_written(member, points, code) -> None:
    before = _counts()
    with pytest.raises(ValidationFailed) as error:
        _earn(member, points, "bad")
    assert error.value.code == code
    assert "points" in error.value.fields
    assert _counts() == before
    assert _balances(member) == (0, 0, 0, 0)


def test_huge_points_up_to_the_programme_maximum_are_exact(member) -> None:
    _earn(member, 10_000_000, "max-1")
    _earn(member, 10_000_000, "max-2")
    assert _balances(member) == (20_000_000, 0, 0, 0)
    assert ledger_check() == []


@pytest.mark.parametrize("status", ["suspended", "closed"])
def test_inactive_member_cannot_earn_or_redeem(member, status) -> None:
    _earn(member, 100, "before")
    member.status = status
    member.save()
    before = _counts()
    with pytest.raises(ValidationFailed) as error:
        _earn(member, 10, "after")
    assert error.value.code == "member_not_active"
    with pytest.raises(ValidationFailed) as error:
        points_redeem(actor=None, member=member, points=10, idempotency_key="r", source="test")
    assert error.value.code == "member_not_active"
    assert _counts() == before


def test_closed_programme_refuses_earning(member) -> None:
    member.programme.status = "closed"
    member.programme.save()
    before = _counts()
    with pytest.raises(ValidationFailed) as error:
        _earn(member, 10, "x")
    assert error.value.code == "programme_not_active"
    assert _counts() == before


def test_insufficient_balance_redeem_writes_nothing(member) -> None:
    _earn(member, 99, "e")
    before = _counts()
    with pytest.raises(ValidationFailed) as error:
        points_redeem(actor=None, member=member, points=100, idempotency_key="r", source="test")
    assert error.value.code == "insufficient_balance"
    assert _counts() == before
    assert _balances(member) == (99, 0, 0, 0)


def test_pending_points_cannot_be_redeemed(member) -> None:
    _earn(member, 100, "p", pending_days=14)
    with pytest.raises(ValidationFailed) as error:
        points_redeem(actor=None, member=member, points=1, idempotency_key="r", source="test")
    assert error.value.code == "insufficient_balance"


def test_redeem_is_idempotent_and_posts_hold_and_redeem(member) -> None:
    _earn(member, 500, "e")
    redeem = points_redeem(
        actor=None,
        member=member,
        points=300,
        idempotency_key="r1",
        source="portal",
        cash_amount=Decimal("4.999"),
    )
    again = points_redeem(actor=None, member=member, points=300, idempotency_key="r1", source="portal")
    assert again.pk == redeem.pk
    assert (redeem.points, redeem.cash_amount) == (300, Decimal("5.00"))
    reservation = Reservation.objects.get()
    assert (reservation.state, reservation.final_transaction_id) == ("confirmed", redeem.pk)
    assert sorted(PointsEntry.objects.filter(transaction=redeem).values_list("account", "points")) == [
        ("member_reserved", -300),
        ("redemption", 300),
    ]
    assert _balances(member) == (200, 0, 0, 0)
    member.refresh_from_db()
    assert member.lifetime_redeemed == 300
    assert OutboxEvent.objects.filter(event_type="loyalty.points_redeemed").count() == 1
    assert ledger_check() == []


def test_partner_earn_and_burn_use_partner_accounts_and_prices() -> None:
    programme = ProgrammeFactory(is_coalition=True)
    partner = PartnerFactory(
        programme=programme, earn_price_per_point=Decimal("0.012"), burn_price_per_point=Decimal("0.0085")
    )
    member = MemberFactory(programme=programme)
    earn = _earn(member, 333, "pe", partner=partner)
    assert earn.partner_amount == Decimal("4.00")  # 333 × 0.012 = 3.996
    assert PointsEntry.objects.get(transaction=earn, account="partner_issuance").partner_id == partner.pk
    burn = points_redeem(
        actor=None, member=member, points=101, idempotency_key="pb", source="pos", partner=partner
    )
    assert burn.partner_amount == Decimal("0.86")  # 101 × 0.0085 = 0.8585
    assert PointsEntry.objects.get(transaction=burn, account="partner_redemption").points == 101
    assert ledger_check() == []


def test_earn_settles_a_debt_first(member) -> None:
    earn = _earn(member, 100, "e1")
    points_redeem(actor=None, member=member, points=70, idempotency_key="r", source="test")
    transaction_reverse(actor=None, transaction=earn, reason="fraud")
    assert _balances(member) == (0, 0, 0, 70)
    second = _earn(member, 50, "e2")
    assert _balances(member) == (0, 0, 0, 20)
    assert sorted(PointsEntry.objects.filter(transaction=second).values_list("account", "points")) == [
        ("issuance", -50),
        ("member_available", -50),
        ("member_available", 50),
        ("member_debt", 50),
    ]
    _earn(member, 30, "e3")
    assert _balances(member) == (10, 0, 0, 0)
    assert ledger_check() == []


def test_hooks_run_inside_the_transaction_and_can_roll_it_back(member) -> None:
    def refuse(_member, _txn) -> None:
        raise ValidationFailed("refused by a hook", code="hook")

    hooks.on_earn(refuse)
    try:
        before = _counts()
        with pytest.raises(ValidationFailed):
            _earn(member, 10, "hooked")
        assert _counts() == before
        assert _balances(member) == (0, 0, 0, 0)
    finally:
        hooks._after_earn.remove(refuse)


# ----------------------------------------------------------------------------------------------
# Adjust and forfeit


def test_positive_and_negative_adjustments(member) -> None:
    agent = actor_for(user_with_roles("agent"))
    credit = points_adjust(actor=agent, member=member, points=40, reason="goodwill", idempotency_key="a1")
    assert (credit.kind, credit.points, credit.details["direction"]) == ("adjust", 40, "credit")
    assert sorted(PointsEntry.objects.filter(transaction=credit).values_list("account", "points")) == [
        ("adjustment", -40),
        ("member_available", 40),
    ]
    debit = points_adjust(actor=agent, member=member, points=-15, reason="correction", idempotency_key="a2")
    assert debit.details["direction"] == "debit"
    assert _balances(member) == (25, 0, 0, 0)
    assert (
        points_adjust(actor=agent, member=member, points=-15, reason="x", idempotency_key="a2").pk == debit.pk
    )
    assert _balances(member) == (25, 0, 0, 0)
    assert ledger_check() == []


def test_adjustment_never_goes_below_zero_and_needs_a_reason_and_permission(member) -> None:
    agent = actor_for(user_with_roles("agent"))
    viewer = actor_for(user_with_roles("billing_clerk"))
    _earn(member, 10, "e")
    before = _counts()
    with pytest.raises(ValidationFailed) as error:
        points_adjust(actor=agent, member=member, points=-11, reason="too much", idempotency_key="a")
    assert error.value.code == "insufficient_balance"
    with pytest.raises(ValidationFailed) as error:
        points_adjust(actor=agent, member=member, points=5, reason="  ", idempotency_key="b")
    assert error.value.code == "reason_required"
    with pytest.raises(ValidationFailed) as error:
        points_adjust(actor=agent, member=member, points=0, reason="zero", idempotency_key="c")
    assert error.value.code == "invalid_points"
    with pytest.raises(PermissionDenied):
        points_adjust(actor=viewer, member=member, points=5, reason="no right", idempotency_key="d")
    assert _counts() == before


def test_forfeit_moves_every_available_point_to_the_forfeit_account(member) -> None:
    _earn(member, 60, "a")
    _earn(member, 40, "b")
    _earn(member, 25, "c", pending_days=14)
    forfeit = points_forfeit(actor=None, member=member, reason="subscription cancelled", idempotency_key="f")
    assert forfeit is not None
    assert (forfeit.kind, forfeit.points, forfeit.details["forfeit"]) == (
        "adjust",
        100,
        "subscription cancelled",
    )
    assert PointsEntry.objects.get(transaction=forfeit, account="forfeit").points == 100
    assert _balances(member) == (0, 25, 0, 0)
    assert points_forfeit(actor=None, member=member, reason="again", idempotency_key="f").pk == forfeit.pk
    assert points_forfeit(actor=None, member=member, reason="nothing", idempotency_key="g") is None
    assert ledger_check() == []


# ----------------------------------------------------------------------------------------------
# Reversal


def test_reverse_earn_takes_back_its_own_lot_then_others(member) -> None:
    first = _earn(member, 100, "first")
    second = _earn(member, 50, "second")
    points_redeem(actor=None, member=member, points=120, idempotency_key="r", source="test")
    # FIFO took 100 from the first lot and 20 from the second: 30 left, all on the second lot.
    reversal = transaction_reverse(actor=None, transaction=first, reason="fraud")
    assert (reversal.kind, reversal.points, reversal.reversal_of_id) == ("reverse", 100, first.pk)
    assert reversal.details["from_own_lots"] == 0
    assert reversal.details["from_other_lots"] == 30
    assert reversal.details["shortfall"] == 70
    assert _balances(member) == (0, 0, 0, 70)
    assert PointsLot.objects.get(earn_transaction=first).state == "cancelled"
    assert PointsLot.objects.get(earn_transaction=second).remaining == 0
    with pytest.raises(Conflict) as error:
        transaction_reverse(actor=None, transaction=first, reason="again")
    assert error.value.code == "already_reversed"
    assert ledger_check() == []


def test_reverse_with_forfeit_policy_writes_the_shortfall_off() -> None:
    member = MemberFactory(programme=ProgrammeFactory(negative_balance_policy="forfeit"))
    earn = _earn(member, 100, "e")
    points_redeem(actor=None, member=member, points=90, idempotency_key="r", source="test")
    reversal = transaction_reverse(actor=None, transaction=earn, reason="chargeback")
    assert sorted(PointsEntry.objects.filter(transaction=reversal).values_list("account", "points")) == [
        ("forfeit", -90),
        ("issuance", 100),
        ("member_available", -10),
    ]
    assert _balances(member) == (0, 0, 0, 0)
    assert ledger_check() == []


def test_reverse_pending_earn_cancels_its_lot(member) -> None:
    earn = _earn(member, 30, "p", pending_days=14)
    transaction_reverse(actor=None, transaction=earn, reason="error")
    lot = PointsLot.objects.get(earn_transaction=earn)
    assert (lot.state, lot.remaining) == ("cancelled", 0)
    assert _balances(member) == (0, 0, 0, 0)
    member.refresh_from_db()
    assert member.lifetime_earned == 0
    assert ledger_check() == []


def test_reverse_redeem_gives_the_points_back_with_the_consumed_lots_expiry(member) -> None:
    with time_machine.travel(datetime(2026, 1, 10, tzinfo=UTC), tick=False):
        _earn(member, 30, "jan")
    with time_machine.travel(datetime(2026, 6, 10, tzinfo=UTC), tick=False):
        _earn(member, 50, "jun")
        redeem = points_redeem(actor=None, member=member, points=60, idempotency_key="r", source="test")
        transaction_reverse(actor=None, transaction=redeem, reason="order cancelled")
    new_lots = list(
        PointsLot.objects.filter(earn_transaction__kind="reverse")
        .order_by("id")
        .values_list("points", "expires_on")
    )
    assert [(points, str(day)) for points, day in new_lots] == [(30, "2028-01-10"), (30, "2028-06-10")]
    assert _balances(member) == (80, 0, 0, 0)
    member.refresh_from_db()
    assert member.lifetime_redeemed == 0
    assert ledger_check() == []


def test_only_earn_adjust_credit_and_redeem_are_reversible(member) -> None:
    agent = actor_for(user_with_roles("agent"))
    _earn(member, 10, "e")
    debit = points_adjust(actor=agent, member=member, points=-5, reason="x", idempotency_key="d")
    with pytest.raises(ValidationFailed) as error:
        transaction_reverse(actor=agent, transaction=debit, reason="no")
    assert error.value.code == "not_reversible"
    viewer = actor_for(user_with_roles("billing_clerk"))
    earn = PointsTransaction.objects.get(kind="earn")
    with pytest.raises(PermissionDenied):
        transaction_reverse(actor=viewer, transaction=earn, reason="no")
    assert not PointsTransaction.objects.filter(kind="reverse").exists()
