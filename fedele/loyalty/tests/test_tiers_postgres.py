"""PostgreSQL: concurrent earns upgrade a member once; a review racing an earn sees a consistent member."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection

from fedele.loyalty.models import Member, TierChange
from fedele.loyalty.services.ledger import ledger_check, points_earn
from fedele.loyalty.services.tiers import tiers_review_due
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.shared.models import OutboxEvent
from fedele.shared.testing import in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_parallel_earns_upgrade_exactly_once() -> None:
    assert connection.vendor == "postgresql"
    programme = ProgrammeFactory()
    tiers = {tier.code: tier for tier in standard_tiers(programme)}
    member = MemberFactory(programme=programme, tier=tiers["bronze"])

    def earn(index: int) -> None:
        mine = Member.objects.get(pk=member.pk)
        points_earn(actor=None, member=mine, points=250, source="test", idempotency_key=f"p{index}")

    assert in_threads(earn, 8) == []
    member.refresh_from_db()
    assert member.available == 2000
    assert member.tier_id == tiers["silver"].pk
    [change] = TierChange.objects.filter(member=member)
    assert change.reason == "upgrade" and change.metric_value >= 1000
    assert OutboxEvent.objects.filter(event_type="loyalty.tier_changed").count() == 1
    assert ledger_check() == []


def test_two_review_jobs_at_once_review_each_member_once() -> None:
    programme = ProgrammeFactory()
    tiers = {tier.code: tier for tier in standard_tiers(programme)}
    members = [MemberFactory(programme=programme, tier=tiers["gold"]) for _ in range(6)]
    Member.objects.filter(pk__in=[m.pk for m in members]).update(tier_review_on=date(2026, 1, 10))
    results: list[int] = []

    def review(_index: int) -> None:
        results.append(tiers_review_due(today=date(2026, 1, 10)))

    assert in_threads(review, 2) == []
    assert sum(results) == 6
    assert Member.objects.filter(tier=tiers["silver"]).count() == 6
    assert TierChange.objects.filter(reason="downgrade").count() == 6
    assert set(Member.objects.values_list("tier_review_on", flat=True)) == {date(2027, 1, 10)}
