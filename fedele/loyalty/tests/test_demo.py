"""The loyalty demo loads through the real services, fast, consistently, and only once."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings
from faker import Faker

from fedele.loyalty import demo
from fedele.loyalty.models import (
    EarningRule,
    Member,
    Partner,
    PointsTransaction,
    Programme,
    Redemption,
    Reward,
    TierChange,
)
from fedele.loyalty.services.ledger import ledger_check
from fedele.shared.demo import DemoContext, loaders

pytestmark = pytest.mark.django_db


def _context() -> DemoContext:
    faker = Faker("it_IT")
    faker.seed_instance(7)
    return DemoContext(faker=faker, seed=7, options={"customers": 60, "subscribers": 5})


@override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend")
def test_demo_loads_six_months_of_loyalty_history_once() -> None:
    context = _context()
    registered = dict(loaders())
    assert "loyalty" in registered
    registered["accounts"](context)
    registered["customers"](context)

    started = time.monotonic()
    demo.load(context)
    seconds = time.monotonic() - started

    assert seconds < 45  # under 15 s on an idle 2-core machine; generous for a busy runner
    programme = Programme.objects.get(code="club-fedele")
    assert (programme.status, programme.name_it, programme.currency_name_it) == (
        "active",
        "Club Fedele",
        "punti",
    )
    assert (str(programme.point_value), programme.expiry_months, programme.pending_days) == (
        "0.010000",
        24,
        14,
    )
    assert list(programme.tiers.order_by("rank").values_list("code", flat=True)) == [
        "bronze",
        "silver",
        "gold",
    ]
    members = Member.objects.filter(programme=programme)
    assert members.count() == demo.MEMBERS
    assert context.counts["loyalty members"] == demo.MEMBERS
    # The portal customer is a member and climbed the ladder through real earnings.
    portal = members.get(customer__public_id=context.records["portal_customer"])
    assert portal.tier is not None and portal.tier.code in ("silver", "gold")
    assert TierChange.objects.filter(member__programme=programme, reason="upgrade").count() >= 2
    assert set(members.values_list("tier__code", flat=True)) == {"bronze", "silver", "gold"}
    kinds = set(PointsTransaction.objects.filter(programme=programme).values_list("kind", flat=True))
    assert {"earn", "mature", "redeem"} <= kinds
    assert PointsTransaction.objects.filter(programme=programme, partner__isnull=False).exists()
    assert Redemption.objects.filter(member__programme=programme).exists()
    assert EarningRule.objects.filter(programme=programme, status="active").count() == 5
    assert Reward.objects.filter(programme=programme).count() == 5
    assert Partner.objects.filter(programme=programme).count() == 2
    assert ledger_check() == []

    before = PointsTransaction.objects.count()
    demo.load(context)
    assert PointsTransaction.objects.count() == before
    assert Programme.objects.filter(code="club-fedele").count() == 1
