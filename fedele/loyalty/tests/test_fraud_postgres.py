"""PostgreSQL: the earn guard under concurrent earns (real threads, real row locks) raises one flag, and
two reviewers confirming the same flag at once reverse each transaction once."""

from __future__ import annotations

import pytest
import time_machine
from django.db import connection

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.models import FraudFlag, Member, PointsTransaction
from fedele.loyalty.services.fraud import fraud_confirm
from fedele.loyalty.services.ledger import ledger_check, points_earn
from fedele.loyalty.tests.evaluation_support import member_at, utc
from fedele.loyalty.tests.factories import ProgrammeFactory
from fedele.shared.errors import Conflict
from fedele.shared.testing import in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
NOW = utc(2026, 3, 10, 10)


def test_concurrent_earns_raise_exactly_one_velocity_flag() -> None:
    assert connection.vendor == "postgresql"
    programme = ProgrammeFactory(velocity_max_earns_per_hour=20, velocity_max_points_per_day=10_000_000)
    member = member_at(programme, utc(2026, 3, 1))

    def work(index: int) -> None:
        fresh = Member.objects.get(pk=member.pk)
        points_earn(actor=None, member=fresh, points=10, source="pos", idempotency_key=f"burst-{index}")

    assert in_threads(work, 30) == []
    assert PointsTransaction.objects.filter(member=member, kind="earn").count() == 30
    flags = FraudFlag.objects.filter(member=member)
    assert [(flag.rule, flag.details["earns_in_hour"]) for flag in flags] == [("velocity_count", 21)]
    member.refresh_from_db()
    assert (member.available, member.flagged) == (300, True)
    assert ledger_check() == []


def test_two_reviewers_confirming_at_once_reverse_once() -> None:
    programme = ProgrammeFactory(velocity_max_earns_per_hour=1)
    member = member_at(programme, utc(2026, 3, 1))
    with time_machine.travel(NOW, tick=False):
        first = points_earn(actor=None, member=member, points=100, source="pos", idempotency_key="a")
        second = points_earn(actor=None, member=member, points=100, source="pos", idempotency_key="b")
    flag = FraudFlag.objects.get(member=member)
    reviewers = [actor_for(user_with_roles("supervisor")) for _ in range(2)]
    outcomes: list[str] = []

    def work(index: int) -> None:
        try:
            fraud_confirm(
                actor=reviewers[index],
                flag=FraudFlag.objects.get(pk=flag.pk),
                note=f"reviewer {index}",
                reverse_transaction_ids=[str(first.public_id), str(second.public_id)],
            )
            outcomes.append("confirmed")
        except Conflict:
            outcomes.append("conflict")

    assert in_threads(work, 2) == []
    assert sorted(outcomes) == ["confirmed", "conflict"]
    assert PointsTransaction.objects.filter(member=member, kind="reverse").count() == 2
    member.refresh_from_db()
    assert (member.available, member.flagged) == (0, False)
    assert ledger_check() == []
