"""Fraud review: manual flags, clear (nothing reversed), confirm (reversed, balance back, audit row
naming the reviewer, optional suspension); bad input and missing permissions change nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import time_machine

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.models import FraudFlag, Member, PointsTransaction, Programme
from fedele.loyalty.services.fraud import fraud_clear, fraud_confirm, fraud_flag_manual
from fedele.loyalty.tests.evaluation_support import earn, member_at, redeem, utc
from fedele.loyalty.tests.factories import ProgrammeFactory
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db
NOW = utc(2026, 3, 11, 9)


@pytest.fixture
def programme() -> Programme:
    created: Programme = ProgrammeFactory(velocity_max_earns_per_hour=2)
    return created


def _flooded(programme: Programme) -> tuple[Member, FraudFlag, list[PointsTransaction]]:
    """A member with a legitimate 50 and a flood of three 100-point earns in an hour (flagged)."""
    member = member_at(programme, utc(2026, 3, 1))
    earn(member, 50, utc(2026, 3, 5))
    flood = [earn(member, 100, utc(2026, 3, 10, 10, minute)) for minute in (0, 5, 10)]
    flag = FraudFlag.objects.get(member=member)
    assert flag.rule == "velocity_count"
    member.refresh_from_db()
    assert (member.available, member.flagged) == (350, True)
    return member, flag, flood


def _reviewer():  # type: ignore[no-untyped-def]
    user = user_with_roles("supervisor", email="reviewer@example.it")
    return user, actor_for(user)


@time_machine.travel(NOW, tick=False)
def test_confirm_reverses_the_chosen_transactions_with_an_audit_row(programme: Programme) -> None:
    member, flag, flood = _flooded(programme)
    user, reviewer = _reviewer()
    fraud_confirm(
        actor=reviewer,
        flag=flag,
        note="Card skimmed at a kiosk",
        reverse_transaction_ids=[str(row.public_id) for row in flood],
    )
    flag.refresh_from_db()
    assert (flag.state, flag.reviewed_by_id, flag.reviewed_at, flag.review_note) == (
        "confirmed",
        user.pk,
        NOW,
        "Card skimmed at a kiosk",
    )
    member.refresh_from_db()
    assert (member.available, member.flagged, member.status, member.lifetime_earned) == (
        50,
        False,
        "active",
        50,
    )
    reversals = PointsTransaction.objects.filter(member=member, kind="reverse")
    assert sorted(row.reversal_of_id for row in reversals) == sorted(row.pk for row in flood)
    assert all(row.created_by_id == user.pk for row in reversals)
    audit = AuditLog.objects.get(action="loyalty.fraud_flag_confirmed", object_id=str(flag.pk))
    assert audit.actor_id == user.pk
    assert audit.after is not None
    assert audit.after["reviewer"] == "reviewer@example.it"
    assert audit.after["reversed_transactions"] == [str(row.public_id) for row in flood]
    assert AuditLog.objects.filter(action="loyalty.transaction_reversed").count() == 3
    event = OutboxEvent.objects.get(event_type="loyalty.fraud_flag_reviewed")
    assert (event.payload["state"], event.payload["reviewer_id"]) == ("confirmed", user.pk)


@time_machine.travel(NOW, tick=False)
def test_confirm_can_suspend_and_takes_back_spent_points_as_debt(programme: Programme) -> None:
    member, flag, flood = _flooded(programme)
    redeem(member, 300, NOW - timedelta(hours=1))
    _user, reviewer = _reviewer()
    fraud_confirm(
        actor=reviewer,
        flag=flag,
        note="Confirmed",
        reverse_transaction_ids=[str(flood[0].public_id)],
        suspend=True,
    )
    member.refresh_from_db()
    # 50 left after the redemption; reversing 100 takes those 50 and records 50 owed.
    assert (member.available, member.debt, member.status) == (0, 50, "suspended")
    audit = AuditLog.objects.get(action="loyalty.fraud_flag_confirmed")
    assert audit.after is not None and audit.after["member_suspended"] is True


@time_machine.travel(NOW, tick=False)
def test_clear_reverses_nothing(programme: Programme) -> None:
    member, flag, _flood = _flooded(programme)
    user, reviewer = _reviewer()
    fraud_clear(actor=reviewer, flag=flag, note="Family party, all genuine")
    flag.refresh_from_db()
    assert (flag.state, flag.reviewed_by_id, flag.review_note) == (
        "cleared",
        user.pk,
        "Family party, all genuine",
    )
    member.refresh_from_db()
    assert (member.available, member.flagged) == (350, False)
    assert not PointsTransaction.objects.filter(member=member, kind="reverse").exists()
    assert AuditLog.objects.filter(action="loyalty.fraud_flag_cleared", actor_id=user.pk).count() == 1
    with pytest.raises(Conflict):
        fraud_clear(actor=reviewer, flag=flag, note="again")
    with pytest.raises(Conflict):
        fraud_confirm(actor=reviewer, flag=flag, note="too late", reverse_transaction_ids=[])


@time_machine.travel(NOW, tick=False)
def test_member_stays_flagged_while_another_flag_is_open(programme: Programme) -> None:
    member, flag, _flood = _flooded(programme)
    _user, reviewer = _reviewer()
    manual = fraud_flag_manual(actor=reviewer, member=member, note="Called the call centre 5 times")
    fraud_clear(actor=reviewer, flag=flag, note="genuine")
    member.refresh_from_db()
    assert member.flagged is True
    fraud_clear(actor=reviewer, flag=manual, note="genuine too")
    member.refresh_from_db()
    assert member.flagged is False


@time_machine.travel(NOW, tick=False)
def test_bad_confirmations_change_nothing(programme: Programme) -> None:
    member, flag, flood = _flooded(programme)
    stranger = member_at(programme, utc(2026, 3, 1))
    foreign = earn(stranger, 10, utc(2026, 3, 2))
    _user, reviewer = _reviewer()
    audit_rows = AuditLog.objects.count()
    transactions = PointsTransaction.objects.count()
    cases = [
        ([str(foreign.public_id)], "unknown_transaction"),
        ([str(uuid.uuid4())], "unknown_transaction"),
        (["not-a-uuid"], "unknown_transaction"),
        ([str(flood[0].public_id), str(flood[0].public_id)], "duplicate_transaction"),
    ]
    for ids, code in cases:
        with pytest.raises(ValidationFailed) as refused:
            fraud_confirm(actor=reviewer, flag=flag, note="x", reverse_transaction_ids=ids)
        assert refused.value.code == code
    with pytest.raises(ValidationFailed) as no_note:
        fraud_confirm(actor=reviewer, flag=flag, note="  ", reverse_transaction_ids=[str(flood[0].public_id)])
    assert no_note.value.code == "note_required"
    with pytest.raises(ValidationFailed):
        fraud_confirm(actor=reviewer, flag=flag, note="x" * 301, reverse_transaction_ids=[])
    # Already reversed by someone else meanwhile: refused before anything is written.
    from fedele.loyalty.services.ledger import transaction_reverse

    transaction_reverse(actor=None, transaction=flood[1], reason="by hand")
    transactions += 1
    audit_rows += 1
    with pytest.raises(ValidationFailed) as again:
        fraud_confirm(
            actor=reviewer,
            flag=flag,
            note="x",
            reverse_transaction_ids=[str(flood[0].public_id), str(flood[1].public_id)],
        )
    assert again.value.code == "already_reversed"
    flag.refresh_from_db()
    member.refresh_from_db()
    assert (flag.state, member.available) == ("open", 250)
    assert PointsTransaction.objects.count() == transactions
    assert AuditLog.objects.count() == audit_rows


@time_machine.travel(NOW, tick=False)
def test_only_reviewers_review_and_staff_may_flag(programme: Programme) -> None:
    member, flag, flood = _flooded(programme)
    agent = actor_for(user_with_roles("agent"))
    analyst = actor_for(user_with_roles("analyst"))
    for actor in (agent, analyst):
        with pytest.raises(PermissionDenied):
            fraud_clear(actor=actor, flag=flag, note="x")
        with pytest.raises(PermissionDenied):
            fraud_confirm(actor=actor, flag=flag, note="x", reverse_transaction_ids=[str(flood[0].public_id)])
    with pytest.raises(PermissionDenied):
        fraud_flag_manual(actor=analyst, member=member, note="looks odd")
    manual = fraud_flag_manual(actor=agent, member=member, note="looks odd")
    assert (manual.rule, manual.state, manual.details) == ("manual", "open", {"note": "looks odd"})
    assert AuditLog.objects.filter(action="loyalty.fraud_flag_raised", object_id=str(manual.pk)).count() == 1
    with pytest.raises(Conflict):
        fraud_flag_manual(actor=agent, member=member, note="again")
    with pytest.raises(ValidationFailed):
        fraud_flag_manual(actor=agent, member=member_at(programme, utc(2026, 3, 1)), note="")
    flag.refresh_from_db()
    assert flag.state == "open"
    assert FraudFlag.objects.count() == 2
