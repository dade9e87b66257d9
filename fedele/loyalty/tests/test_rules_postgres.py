"""PostgreSQL with real threads: a cap across all members and a campaign budget are never exceeded,
and the same event sent concurrently earns once."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from fedele.loyalty.models import LoyaltyEvent, PointsTransaction, RuleUsage
from fedele.loyalty.services.campaigns import campaign_create, campaign_set_status
from fedele.loyalty.services.ledger import ledger_check
from fedele.loyalty.services.rules import event_record
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory
from fedele.loyalty.tests.rules_support import make_rule
from fedele.shared.testing import in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_cap_total_across_members_is_never_exceeded() -> None:
    assert connection.vendor == "postgresql"
    programme = ProgrammeFactory()
    make_rule(programme, code="pool", cap_total=250)
    members = [MemberFactory(programme=programme) for _ in range(8)]

    def earn(index: int) -> None:
        event_record(
            actor=None,
            programme=programme,
            member=members[index],
            event_type="spend",
            source="pos",
            external_id=f"r-{index}",
            amount_eur=Decimal("100.00"),
        )

    assert in_threads(earn, 8) == []
    awarded = sorted(PointsTransaction.objects.filter(kind="earn").values_list("points", flat=True))
    assert sum(awarded) == 250 and awarded == [50, 100, 100]
    assert LoyaltyEvent.objects.count() == 8
    assert RuleUsage.objects.get(rule__code="pool", member=None, day=None).points == 250
    assert ledger_check(programme=programme) == []


def test_campaign_budget_across_rules_and_members_is_never_exceeded() -> None:
    programme = ProgrammeFactory()
    campaign = campaign_create(
        actor=None,
        programme=programme,
        data={
            "code": "flash",
            "name_en": "Flash",
            "starts_at": "2020-01-01T00:00:00+00:00",
            "ends_at": "2100-01-01T00:00:00+00:00",
            "holdout_percent": 0,
            "budget_points": 330,
        },
    )
    campaign_set_status(actor=None, campaign=campaign, status="active")
    make_rule(programme, code="flash-a", points_per_euro="0", fixed_points=40, campaign="flash")
    make_rule(programme, code="flash-b", points_per_euro="0", fixed_points=60, campaign="flash")
    members = [MemberFactory(programme=programme) for _ in range(8)]

    def earn(index: int) -> None:
        event_record(
            actor=None,
            programme=programme,
            member=members[index],
            event_type="spend",
            source="pos",
            external_id=f"f-{index}",
            amount_eur=Decimal("1.00"),
        )

    assert in_threads(earn, 8) == []
    total = sum(PointsTransaction.objects.filter(kind="earn").values_list("points", flat=True))
    assert total == 330
    used = sum(
        RuleUsage.objects.filter(rule__campaign=campaign, member=None, day=None).values_list(
            "points", flat=True
        )
    )
    assert used == 330


def test_same_event_sent_concurrently_earns_once() -> None:
    programme = ProgrammeFactory()
    make_rule(programme, code="base", cap_per_member_per_day=10_000)
    member = MemberFactory(programme=programme)
    found: list[int] = []
    lock = threading.Lock()

    def earn(_index: int) -> None:
        event = event_record(
            actor=None,
            programme=programme,
            member=member,
            event_type="spend",
            source="pos",
            external_id="same",
            amount_eur=Decimal("75.00"),
        )
        with lock:
            found.append(event.pk)

    assert in_threads(earn, 10) == []
    assert len(set(found)) == 1
    assert PointsTransaction.objects.filter(kind="earn").count() == 1
    assert LoyaltyEvent.objects.count() == 1
    member.refresh_from_db()
    assert member.available == 75
    assert RuleUsage.objects.get(member=member).points == 75
