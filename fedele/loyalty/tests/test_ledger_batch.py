"""Batch earns (points_earn_many): the same rows as one-by-one earns, all or nothing, idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from fedele.loyalty.models import FraudFlag, Member, PointsEntry, PointsLot, PointsTransaction, TierChange
from fedele.loyalty.services.ledger import (
    ledger_check,
    points_earn,
    points_redeem,
    transaction_reverse,
)
from fedele.loyalty.services.ledger_batch import EarnItem, points_earn_many
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.shared.errors import ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def _counts() -> tuple[int, int, int, int, int]:
    return (
        PointsTransaction.objects.count(),
        PointsEntry.objects.count(),
        PointsLot.objects.count(),
        AuditLog.objects.filter(action="loyalty.points_earned").count(),
        OutboxEvent.objects.filter(event_type="loyalty.points_earned").count(),
    )


@time_machine.travel(NOW, tick=False)
def test_batch_posts_every_earn_with_its_lot_entries_audit_and_event() -> None:
    programme = ProgrammeFactory()
    anna, bruno = MemberFactory(programme=programme), MemberFactory(programme=programme)
    posted = points_earn_many(
        actor=None,
        source="partner-file",
        items=[
            EarnItem(member=anna, points=100, idempotency_key="f1:1", reference="R-1"),
            EarnItem(member=bruno, points=50, idempotency_key="f1:2"),
            EarnItem(member=anna, points=25, idempotency_key="f1:3"),
        ],
    )
    assert [(row.member_id, row.points, row.kind, row.source) for row in posted] == [
        (anna.pk, 100, "earn", "partner-file"),
        (bruno.pk, 50, "earn", "partner-file"),
        (anna.pk, 25, "earn", "partner-file"),
    ]
    anna.refresh_from_db()
    bruno.refresh_from_db()
    assert (anna.available, anna.lifetime_earned, bruno.available) == (125, 125, 50)
    assert _counts() == (3, 6, 3, 3, 3)
    lot = PointsLot.objects.get(earn_transaction=posted[0])
    # 24 months rolling expiry from the programme factory.
    assert (lot.points, lot.remaining, lot.state, str(lot.expires_on)) == (
        100,
        100,
        "available",
        "2028-03-10",
    )
    assert ledger_check(programme=programme) == []


@time_machine.travel(NOW, tick=False)
def test_replayed_batch_returns_the_first_transactions_and_writes_nothing() -> None:
    member = MemberFactory()
    items = [EarnItem(member=member, points=10, idempotency_key=f"k{i}") for i in range(3)]
    first = points_earn_many(actor=None, source="pos", items=items)
    before = _counts()
    again = points_earn_many(
        actor=None, source="pos", items=[*items, EarnItem(member=member, points=7, idempotency_key="k3")]
    )
    assert [row.pk for row in again[:3]] == [row.pk for row in first]
    assert again[3].points == 7
    member.refresh_from_db()
    assert member.available == 37
    assert _counts() == (before[0] + 1, before[1] + 2, before[2] + 1, before[3] + 1, before[4] + 1)


@pytest.mark.parametrize(
    ("bad", "code", "field"),
    [
        ({"points": -5}, "invalid_points", "items[1].points"),
        ({"points": 0}, "invalid_points", "items[1].points"),
        ({"points": 10**12}, "points_too_large", "items[1].points"),
        ({"idempotency_key": "a"}, "duplicate_key_in_batch", "items[1].idempotency_key"),
        ({"idempotency_key": ""}, "idempotency_key_required", "items[1].idempotency_key"),
    ],
)
def test_one_bad_item_refuses_the_whole_batch(bad: dict[str, object], code: str, field: str) -> None:
    member = MemberFactory()
    second = {"member": member, "points": 10, "idempotency_key": "b", **bad}
    with pytest.raises(ValidationFailed) as raised:
        points_earn_many(
            actor=None,
            source="pos",
            items=[EarnItem(member=member, points=10, idempotency_key="a"), EarnItem(**second)],  # type: ignore[arg-type]
        )
    assert raised.value.code == code
    assert field in raised.value.fields
    assert _counts() == (0, 0, 0, 0, 0)
    member.refresh_from_db()
    assert member.available == 0


def test_batch_size_and_programme_are_checked() -> None:
    with pytest.raises(ValidationFailed) as raised:
        points_earn_many(actor=None, source="pos", items=[])
    assert raised.value.code == "invalid_batch_size"
    one, other = MemberFactory(), MemberFactory()
    with pytest.raises(ValidationFailed) as raised:
        points_earn_many(
            actor=None,
            source="pos",
            items=[
                EarnItem(member=one, points=1, idempotency_key="x"),
                EarnItem(member=other, points=1, idempotency_key="y"),
            ],
        )
    assert raised.value.code == "mixed_programmes"
    assert _counts() == (0, 0, 0, 0, 0)


@time_machine.travel(NOW, tick=False)
def test_a_member_with_debt_settles_it_first_and_the_ledger_stays_balanced() -> None:
    programme = ProgrammeFactory(negative_balance_policy="debt")
    member = MemberFactory(programme=programme)
    earned = points_earn(actor=None, member=member, points=100, source="t", idempotency_key="e1")
    points_redeem(actor=None, member=member, points=80, idempotency_key="r1", source="t")
    transaction_reverse(actor=None, transaction=earned, reason="fraud")
    member.refresh_from_db()
    assert (member.available, member.debt) == (0, 80)
    points_earn_many(
        actor=None, source="pos", items=[EarnItem(member=member, points=50, idempotency_key="b1")]
    )
    member.refresh_from_db()
    assert (member.available, member.debt) == (0, 30)
    points_earn_many(
        actor=None, source="pos", items=[EarnItem(member=member, points=50, idempotency_key="b2")]
    )
    member.refresh_from_db()
    assert (member.available, member.debt) == (20, 0)
    assert ledger_check(programme=programme) == []


@time_machine.travel(NOW, tick=False)
def test_pending_batch_and_tier_upgrade_through_the_hooks() -> None:
    programme = ProgrammeFactory()
    tiers = standard_tiers(programme)
    member = MemberFactory(programme=programme, tier=tiers[0])
    points_earn_many(
        actor=None,
        source="pos",
        pending_days=14,
        items=[
            EarnItem(member=member, points=600, idempotency_key="p1"),
            EarnItem(member=member, points=600, idempotency_key="p2"),
        ],
    )
    member.refresh_from_db()
    assert (member.available, member.pending) == (0, 1200)
    assert member.tier_id == tiers[1].pk  # 1,200 qualifying points reach Silver at once
    assert TierChange.objects.filter(member=member, reason="upgrade").count() == 1
    assert ledger_check(programme=programme) == []


@time_machine.travel(NOW, tick=False)
def test_batch_hooks_flag_velocity_and_unusual_amounts_once() -> None:
    programme = ProgrammeFactory(velocity_max_earns_per_hour=8)
    fast, steady, calm = (MemberFactory(programme=programme) for _ in range(3))
    for index in range(5):
        points_earn(actor=None, member=steady, points=10, source="t", idempotency_key=f"s{index}")
    points_earn_many(
        actor=None,
        source="pos",
        items=[
            *(EarnItem(member=fast, points=5, idempotency_key=f"f{i}") for i in range(10)),
            EarnItem(member=steady, points=200, idempotency_key="big"),
            EarnItem(member=calm, points=200, idempotency_key="calm"),
        ],
    )
    flags = sorted(FraudFlag.objects.values_list("member_id", "rule"))
    assert flags == sorted([(fast.pk, "velocity_count"), (steady.pk, "unusual_amount")])
    flagged = dict(Member.objects.filter(programme=programme).values_list("pk", "flagged"))
    assert flagged == {fast.pk: True, steady.pk: True, calm.pk: False}


@time_machine.travel(NOW, tick=False)
def test_batch_upgrades_each_member_to_the_tier_it_reaches() -> None:
    programme = ProgrammeFactory()
    bronze = standard_tiers(programme)[0]
    anna, bruno, carla = (MemberFactory(programme=programme, tier=bronze) for _ in range(3))
    points_earn_many(
        actor=None,
        source="pos",
        items=[
            EarnItem(member=anna, points=1500, idempotency_key="a"),
            EarnItem(member=bruno, points=6000, idempotency_key="b"),
            EarnItem(member=carla, points=999, idempotency_key="c"),
        ],
    )
    tiers = dict(Member.objects.filter(programme=programme).values_list("pk", "tier__code"))
    assert tiers == {anna.pk: "silver", bruno.pk: "gold", carla.pk: "bronze"}
    assert TierChange.objects.filter(reason="upgrade").count() == 2
