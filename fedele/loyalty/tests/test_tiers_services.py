"""Tiers: immediate upgrades on earning, reviews with a soft landing, windows, manual changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.facade import routing_priority
from fedele.loyalty.models import Member, PointsTransaction, Programme, Tier, TierChange
from fedele.loyalty.selectors.tiers import qualifying_value, tier_benefits, tier_multiplier, tier_progress
from fedele.loyalty.services.ledger import points_earn, purchase_refund, transaction_reverse
from fedele.loyalty.services.tiers import tier_check_upgrade, tier_set_manual, tiers_review_due
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.shared import customer_attributes
from fedele.shared.errors import PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db
ROME = ZoneInfo("Europe/Rome")


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)  # type: ignore[misc]


def ladder(**programme_fields: object) -> tuple[Programme, dict[str, Tier]]:
    programme = ProgrammeFactory(**programme_fields)
    return programme, {tier.code: tier for tier in standard_tiers(programme)}


def new_member(programme: Programme, tier: Tier | None) -> Member:
    member: Member = MemberFactory(programme=programme, tier=tier)
    return member


def earn(member: Member, points: int, at: datetime | None = None, **extra: object) -> PointsTransaction:
    if at is None:
        return points_earn(
            actor=None, member=member, points=points, source="test", idempotency_key=None, **extra
        )  # type: ignore[arg-type]
    with time_machine.travel(at, tick=False):
        return points_earn(
            actor=None, member=member, points=points, source="test", idempotency_key=None, **extra
        )  # type: ignore[arg-type]


def tier_events(member: Member) -> list[dict[str, object]]:
    rows = OutboxEvent.objects.filter(event_type="loyalty.tier_changed", aggregate_id=str(member.public_id))
    return [row.payload for row in rows.order_by("id")]


# -- upgrades -------------------------------------------------------------------------------------


def test_upgrade_immediately_when_an_earn_crosses_silver() -> None:
    programme, tiers = ladder()
    member = new_member(programme, tiers["bronze"])
    earn(member, 999, rome(2026, 3, 10, 9, 0))
    member.refresh_from_db()
    assert member.tier_id == tiers["bronze"].pk
    assert TierChange.objects.filter(member=member).count() == 0

    earn(member, 1, rome(2026, 3, 10, 11, 15))
    member.refresh_from_db()
    assert member.tier_id == tiers["silver"].pk
    assert member.tier_since == rome(2026, 3, 10, 11, 15)
    assert member.tier_review_on == date(2027, 3, 11)
    change = TierChange.objects.get(member=member)
    assert (change.from_tier_id, change.to_tier_id, change.reason) == (
        tiers["bronze"].pk,
        tiers["silver"].pk,
        "upgrade",
    )
    assert change.metric_value == Decimal("1000.00")
    [payload] = tier_events(member)
    assert payload["from_tier"] == "bronze"
    assert payload["to_tier"] == "silver"
    assert payload["reason"] == "upgrade"
    assert payload["customer_id"] == str(member.customer.public_id)
    assert payload["programme"] == programme.code
    assert (
        AuditLog.objects.filter(action="loyalty.tier_upgrade", object_id=str(member.public_id)).count() == 1
    )


def test_one_earn_crossing_silver_and_gold_skips_to_gold() -> None:
    programme, tiers = ladder()
    member = new_member(programme, tiers["bronze"])
    earn(member, 400, rome(2026, 1, 5, 10))
    earn(member, 4600, rome(2026, 1, 6, 10))
    member.refresh_from_db()
    assert member.tier_id == tiers["gold"].pk
    [change] = TierChange.objects.filter(member=member)
    assert (change.from_tier_id, change.to_tier_id) == (tiers["bronze"].pk, tiers["gold"].pk)
    assert change.metric_value == Decimal("5000.00")
    assert [p["to_tier"] for p in tier_events(member)] == ["gold"]
    # Already at the top: more earnings change nothing.
    earn(member, 10_000, rome(2026, 1, 7, 10))
    assert TierChange.objects.filter(member=member).count() == 1


def test_member_without_tier_gets_the_highest_reached() -> None:
    programme, tiers = ladder()
    member = new_member(programme, None)
    earn(member, 1200, rome(2026, 2, 1, 10))
    member.refresh_from_db()
    assert member.tier_id == tiers["silver"].pk
    assert TierChange.objects.get(member=member).from_tier_id is None


def test_non_qualifying_points_do_not_upgrade() -> None:
    programme, tiers = ladder()
    member = new_member(programme, tiers["bronze"])
    earn(member, 6000, rome(2026, 2, 1, 10), qualifying_points=0)
    member.refresh_from_db()
    assert member.tier_id == tiers["bronze"].pk
    assert qualifying_value(member=member, at=rome(2026, 2, 2)) == Decimal("0.00")


def test_spend_metric_upgrades_to_the_cent() -> None:
    programme, tiers = ladder(tier_metric="spend")
    member = new_member(programme, tiers["bronze"])
    earn(member, 10, rome(2026, 4, 1, 10), amount_eur=Decimal("999.99"))
    member.refresh_from_db()
    assert member.tier_id == tiers["bronze"].pk
    earn(member, 1, rome(2026, 4, 1, 11), amount_eur=Decimal("0.01"))
    member.refresh_from_db()
    assert member.tier_id == tiers["silver"].pk
    assert TierChange.objects.get(member=member).metric_value == Decimal("1000.00")


def test_count_metric() -> None:
    programme = ProgrammeFactory(tier_metric="count")
    base = Tier.objects.create(programme=programme, code="base", name_it="Base", name_en="Base", rank=0)
    frequent = Tier.objects.create(
        programme=programme, code="frequent", name_it="Abituale", name_en="Frequent", rank=1, threshold=3
    )
    member = new_member(programme, base)
    for day in (1, 2):
        earn(member, 50, rome(2026, 5, day, 10), qualifying_count=1)
    member.refresh_from_db()
    assert member.tier_id == base.pk
    earn(member, 50, rome(2026, 5, 3, 10), qualifying_count=1)
    member.refresh_from_db()
    assert member.tier_id == frequent.pk


def test_upgrade_hook_is_cheap() -> None:
    programme, tiers = ladder()
    member = new_member(programme, tiers["bronze"])
    txn = earn(member, 10, rome(2026, 1, 1, 12))
    locked = Member.objects.get(pk=member.pk)
    with CaptureQueriesContext(connection) as queries:
        tier_check_upgrade(locked, txn)
    assert len(queries) == 2  # the ladder and one aggregate
    top = new_member(programme, tiers["gold"])
    txn = earn(top, 10, rome(2026, 1, 1, 12))
    locked = Member.objects.get(pk=top.pk)
    with CaptureQueriesContext(connection) as queries:
        tier_check_upgrade(locked, txn)
    assert len(queries) == 1, [
        q["sql"] for q in queries.captured_queries
    ]  # the ladder only: nothing above gold


# -- windows --------------------------------------------------------------------------------------


def test_rolling_window_edge_is_exactly_twelve_months() -> None:
    programme, tiers = ladder()
    member = new_member(programme, tiers["bronze"])
    earn(member, 300, rome(2025, 3, 10, 10, 0))
    assert qualifying_value(member=member, at=rome(2026, 3, 10, 9, 59, 59)) == Decimal("300.00")
    assert qualifying_value(member=member, at=rome(2026, 3, 10, 10, 0)) == Decimal("0.00")
    # The earn itself is inside a window that ends when it happens.
    assert qualifying_value(member=member, at=rome(2025, 3, 10, 10, 0)) == Decimal("300.00")
    assert qualifying_value(member=member, at=rome(2025, 3, 10, 9, 59)) == Decimal("0.00")


def test_rolling_window_from_a_leap_day() -> None:
    programme, tiers = ladder()
    member = new_member(programme, tiers["bronze"])
    earn(member, 1000, rome(2028, 2, 29, 12, 0))
    member.refresh_from_db()
    assert member.tier_review_on == date(2029, 3, 1)
    # 28 Feb 2029 12:00 minus twelve months is 28 Feb 2028 12:00: the leap-day earn is still in.
    assert qualifying_value(member=member, at=rome(2029, 2, 28, 12, 0)) == Decimal("1000.00")
    assert qualifying_value(member=member, at=rome(2029, 3, 1, 12, 0)) == Decimal("0.00")


def test_calendar_year_window_at_the_new_year_in_rome() -> None:
    programme, tiers = ladder(tier_window="calendar_year", timezone="Europe/Rome")
    member = new_member(programme, tiers["bronze"])
    # 31 Dec 23:30 in Rome is 22:30 UTC; 1 Jan 00:10 in Rome is still 31 Dec (23:10) in UTC.
    earn(member, 600, rome(2025, 12, 31, 23, 30))
    earn(member, 700, rome(2026, 1, 1, 0, 10))
    assert rome(2026, 1, 1, 0, 10).astimezone(UTC).day == 31
    assert qualifying_value(member=member, at=rome(2025, 12, 31, 23, 59, 59)) == Decimal("600.00")
    assert qualifying_value(member=member, at=rome(2026, 1, 1, 0, 0)) == Decimal("0.00")
    assert qualifying_value(member=member, at=rome(2026, 1, 1, 0, 10)) == Decimal("700.00")
    assert qualifying_value(member=member, at=rome(2026, 12, 31, 23, 59)) == Decimal("700.00")
    # Neither year reached silver (1,000): the two years never add up.
    member.refresh_from_db()
    assert member.tier_id == tiers["bronze"].pk


def test_calendar_year_review_date_and_review() -> None:
    programme, tiers = ladder(tier_window="calendar_year")
    member = new_member(programme, tiers["bronze"])
    earn(member, 1500, rome(2025, 12, 31, 23, 0))
    member.refresh_from_db()
    assert member.tier_id == tiers["silver"].pk
    assert member.tier_review_on == date(2027, 1, 1)
    # Nothing due before the review day.
    with time_machine.travel(rome(2026, 12, 31, 23, 0), tick=False):
        assert tiers_review_due() == 0
    # 2026 earned only 999: reviewed on 1 Jan 2027 over 2026 → bronze.
    earn(member, 999, rome(2026, 12, 31, 23, 59))
    with time_machine.travel(rome(2027, 1, 1, 0, 30), tick=False):
        assert tiers_review_due() == 1
    member.refresh_from_db()
    assert member.tier_id == tiers["bronze"].pk
    assert member.tier_review_on is None
    change = TierChange.objects.filter(member=member).first()
    assert change is not None and change.reason == "downgrade"
    assert change.metric_value == Decimal("999.00")


def test_calendar_year_retained_when_the_year_requalifies() -> None:
    programme, tiers = ladder(tier_window="calendar_year")
    member = new_member(programme, tiers["bronze"])
    earn(member, 1500, rome(2025, 6, 1, 10))
    earn(member, 1000, rome(2026, 12, 31, 23, 59))
    with time_machine.travel(rome(2027, 1, 1, 3, 0), tick=False):
        assert tiers_review_due() == 1
    member.refresh_from_db()
    assert member.tier_id == tiers["silver"].pk
    assert member.tier_review_on == date(2028, 1, 1)


# -- reviews --------------------------------------------------------------------------------------


def _gold_member() -> tuple[Programme, dict[str, Tier], Member]:
    programme, tiers = ladder()
    member = new_member(programme, tiers["bronze"])
    earn(member, 6000, rome(2025, 4, 15, 10))
    member.refresh_from_db()
    assert member.tier_id == tiers["gold"].pk
    assert member.tier_review_on == date(2026, 4, 16)
    return programme, tiers, member


def test_review_downgrades_one_tier_at_a_time() -> None:
    _programme, tiers, member = _gold_member()
    since = member.tier_since
    # A little activity, below silver, inside the window of the first review.
    earn(member, 200, rome(2025, 12, 1, 10))
    with time_machine.travel(rome(2026, 4, 15, 23, 0), tick=False):
        assert tiers_review_due() == 0
    with time_machine.travel(rome(2026, 4, 16, 2, 0), tick=False):
        assert tiers_review_due() == 1
        # Idempotent: a second run the same day does nothing more.
        assert tiers_review_due() == 0
    member.refresh_from_db()
    assert member.tier_id == tiers["silver"].pk  # soft landing: not straight to bronze
    assert member.tier_review_on == date(2027, 4, 16)
    assert member.tier_since == rome(2026, 4, 16, 2, 0)
    assert member.tier_since != since
    change = TierChange.objects.filter(member=member).first()
    assert change is not None
    assert (change.from_tier_id, change.to_tier_id, change.reason) == (
        tiers["gold"].pk,
        tiers["silver"].pk,
        "downgrade",
    )
    # The 6000 of 15 Apr 2025 left the window that ended when 16 Apr 2026 began: only 200 count.
    assert change.metric_value == Decimal("200.00")
    with time_machine.travel(rome(2027, 4, 16, 1, 0), tick=False):
        assert tiers_review_due() == 1
    member.refresh_from_db()
    assert member.tier_id == tiers["bronze"].pk
    assert member.tier_review_on is None
    assert [p["to_tier"] for p in tier_events(member)] == ["gold", "silver", "bronze"]
    assert [p["reason"] for p in tier_events(member)] == ["upgrade", "downgrade", "downgrade"]
    with time_machine.travel(rome(2028, 4, 16, 1, 0), tick=False):
        assert tiers_review_due() == 0


def test_review_retains_when_still_qualifying() -> None:
    _programme, tiers, member = _gold_member()
    since = member.tier_since
    earn(member, 5000, rome(2026, 4, 15, 23, 59))
    with time_machine.travel(rome(2026, 4, 16, 2, 0), tick=False):
        assert tiers_review_due() == 1
    member.refresh_from_db()
    assert member.tier_id == tiers["gold"].pk
    assert member.tier_since == since
    assert member.tier_review_on == date(2027, 4, 16)
    change = TierChange.objects.filter(member=member).first()
    assert change is not None and change.reason == "retained"
    assert change.from_tier_id == change.to_tier_id == tiers["gold"].pk
    assert change.metric_value == Decimal("5000.00")
    # Retaining is not a change: no TierChanged beyond the first upgrade.
    assert [p["reason"] for p in tier_events(member)] == ["upgrade"]


def test_review_with_a_late_job_moves_the_next_review_past_today() -> None:
    _programme, tiers, member = _gold_member()
    with time_machine.travel(rome(2028, 5, 1, 9, 0), tick=False):
        assert tiers_review_due() == 1
        assert tiers_review_due() == 0
    member.refresh_from_db()
    assert member.tier_id == tiers["silver"].pk
    assert member.tier_review_on == date(2029, 4, 16)


def test_review_uses_the_programme_day_not_utc() -> None:
    _gold_member()
    # 16 Apr 00:30 in Rome is still 15 Apr (22:30) in UTC: the review is due in Rome.
    with time_machine.travel(rome(2026, 4, 16, 0, 30), tick=False):
        assert tiers_review_due() == 1
    assert tiers_review_due(today=date(2026, 4, 16)) == 0


def test_refunds_and_reversals_leave_the_metric() -> None:
    programme, tiers = ladder()
    member = new_member(programme, tiers["bronze"])
    earn(member, 400, rome(2026, 1, 10, 10), reference="INV-1", amount_eur=Decimal("400.00"))
    reversed_earn = earn(member, 300, rome(2026, 1, 11, 10), reference="INV-2")
    earn(member, 100, rome(2026, 1, 12, 10))
    at = rome(2026, 2, 1)
    assert qualifying_value(member=member, at=at) == Decimal("800.00")
    with time_machine.travel(rome(2026, 1, 20, 10), tick=False):
        purchase_refund(
            actor=None,
            programme=programme,
            reference="INV-1",
            refund_eur=Decimal("100.00"),
            idempotency_key="r1",
        )
    assert qualifying_value(member=member, at=at) == Decimal("700.00")
    with time_machine.travel(rome(2026, 1, 21, 10), tick=False):
        transaction_reverse(actor=None, transaction=reversed_earn, reason="fraud")
    assert qualifying_value(member=member, at=at) == Decimal("400.00")


# -- manual changes, benefits, routing ------------------------------------------------------------


def test_manual_tier_change() -> None:
    programme, tiers = ladder()
    member = new_member(programme, tiers["bronze"])
    manager = actor_for(user_with_roles("loyalty_manager"))
    with time_machine.travel(rome(2026, 6, 1, 12), tick=False):
        result = tier_set_manual(actor=manager, member=member, tier=tiers["gold"], reason="Status match")
    assert result.tier_id == tiers["gold"].pk
    member.refresh_from_db()
    assert member.tier_review_on == date(2027, 6, 2)
    change = TierChange.objects.get(member=member)
    assert (change.reason, change.note, change.changed_by_id) == ("manual", "Status match", manager.user_id)
    assert [p["reason"] for p in tier_events(member)] == ["manual"]
    assert AuditLog.objects.filter(action="loyalty.tier_manual", actor_id=manager.user_id).count() == 1


def test_manual_tier_change_bad_input_changes_nothing() -> None:
    programme, tiers = ladder()
    _other, other_tiers = ladder()
    member = new_member(programme, tiers["bronze"])
    manager = actor_for(user_with_roles("loyalty_manager"))
    analyst = actor_for(user_with_roles("analyst"))
    with pytest.raises(PermissionDenied):
        tier_set_manual(actor=analyst, member=member, tier=tiers["gold"], reason="x")
    with pytest.raises(ValidationFailed) as wrong:
        tier_set_manual(actor=manager, member=member, tier=other_tiers["gold"], reason="x")
    assert set(wrong.value.fields) == {"tier"}
    with pytest.raises(ValidationFailed) as blank:
        tier_set_manual(actor=manager, member=member, tier=tiers["gold"], reason="   ")
    assert set(blank.value.fields) == {"reason"}
    with pytest.raises(ValidationFailed) as same:
        tier_set_manual(actor=manager, member=member, tier=tiers["bronze"], reason="x")
    assert same.value.code == "same_tier"
    member.refresh_from_db()
    assert member.tier_id == tiers["bronze"].pk
    assert TierChange.objects.count() == 0
    assert OutboxEvent.objects.filter(event_type="loyalty.tier_changed").count() == 0


def test_multiplier_benefits_and_routing_priority() -> None:
    programme, tiers = ladder()
    gold = new_member(programme, tiers["gold"])
    bronze = new_member(programme, tiers["bronze"])
    nobody = new_member(programme, None)
    assert tier_multiplier(gold) == Decimal("1.50")
    assert tier_multiplier(bronze) == Decimal("1.00")
    assert tier_multiplier(nobody) == Decimal("1")
    assert tier_benefits(gold) == ["free_shipping", "priority_support"]
    assert tier_benefits(nobody) == []
    assert routing_priority(str(gold.customer.public_id)) == 3
    assert routing_priority(str(bronze.customer.public_id)) == 0
    from fedele.customers.tests.factories import CustomerFactory

    stranger = CustomerFactory()
    assert routing_priority(str(stranger.public_id)) == 0
    assert customer_attributes.get(str(gold.customer.public_id), "loyalty_tier") == "gold"
    assert customer_attributes.get(str(stranger.public_id), "loyalty_tier") is None


# -- progress -------------------------------------------------------------------------------------


def test_progress_towards_the_next_tier() -> None:
    programme, tiers = ladder()
    member = new_member(programme, tiers["bronze"])
    earn(member, 400, rome(2026, 1, 10, 10))
    progress = tier_progress(member, at=rome(2026, 2, 1))
    assert progress.tier == tiers["bronze"]
    assert progress.next_tier == tiers["silver"]
    assert (progress.value, progress.next_threshold, progress.remaining, progress.percent) == (
        Decimal("400"),
        Decimal("1000"),
        Decimal("600"),
        40,
    )
    assert progress.review_on is None and progress.keep_threshold is None
    assert progress.metric == "qualifying_points"


def test_progress_at_the_top_and_what_keeps_the_tier() -> None:
    _programme, tiers, member = _gold_member()
    earn(member, 1234, rome(2025, 9, 1, 10))
    progress = tier_progress(member, at=rome(2025, 10, 1))
    assert progress.tier == tiers["gold"] and progress.next_tier is None and progress.is_top
    assert progress.percent == 100 and progress.remaining is None
    assert progress.review_on == date(2026, 4, 16)
    assert progress.valid_until == date(2026, 4, 15)
    # At the review the 12 months from 16 Apr 2025 00:00 count: 1234 so far (6000 were on 15 Apr).
    assert progress.keep_threshold == Decimal("5000")
    assert progress.keep_value == Decimal("1234")
    assert progress.keep_remaining == Decimal("3766")


def test_progress_keep_counts_only_the_review_window() -> None:
    _programme, _tiers, member = _gold_member()
    earn(member, 700, rome(2025, 4, 16, 0, 0))
    earn(member, 900, rome(2026, 4, 16, 0, 0))  # after the review moment: not for this review
    progress = tier_progress(member, at=rome(2026, 4, 20))
    assert progress.value == Decimal("900")  # the 12 months after 20 Apr 2025
    assert progress.keep_value == Decimal("700")  # [16 Apr 2025, 16 Apr 2026)
    assert tier_progress(member, at=rome(2025, 4, 15, 10) - timedelta(seconds=1)).value == Decimal("0")
