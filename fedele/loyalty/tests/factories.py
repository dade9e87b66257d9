"""Factories for loyalty rows. Tests of behaviour post points through the ledger services
(fedele.loyalty.services.ledger); these build configuration rows and members with empty balances."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.utils import timezone

from fedele.customers.tests.factories import CustomerFactory
from fedele.loyalty.models import Member, Partner, Programme, Reward, Tier


class ProgrammeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Programme

    code = factory.Sequence(lambda n: f"club-{n}")
    name_it = factory.Sequence(lambda n: f"Club {n}")
    name_en = factory.Sequence(lambda n: f"Club {n}")
    status = "active"
    point_value = Decimal("0.010000")
    points_per_euro = Decimal("1")
    expiry_policy = "rolling_months"
    expiry_months = 24
    pending_days = 0


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier

    programme = factory.SubFactory(ProgrammeFactory)
    code = factory.Sequence(lambda n: f"tier-{n}")
    name_it = factory.Sequence(lambda n: f"Livello {n}")
    name_en = factory.Sequence(lambda n: f"Tier {n}")
    rank = 0
    threshold = Decimal("0")


def standard_tiers(programme: Programme) -> list[Tier]:
    """Bronze 0, Silver 1,000, Gold 5,000 qualifying points; Gold has priority support."""
    tiers = [
        TierFactory.create(programme=programme, code="bronze", name_it="Bronzo", name_en="Bronze", rank=0),
        TierFactory(
            programme=programme,
            code="silver",
            name_it="Argento",
            name_en="Silver",
            rank=1,
            threshold=Decimal("1000"),
            earn_multiplier=Decimal("1.25"),
            support_priority=1,
        ),
        TierFactory(
            programme=programme,
            code="gold",
            name_it="Oro",
            name_en="Gold",
            rank=2,
            threshold=Decimal("5000"),
            earn_multiplier=Decimal("1.50"),
            support_priority=3,
            benefits=["free_shipping", "priority_support"],
        ),
    ]
    return [tier for tier in tiers if isinstance(tier, Tier)]


class MemberFactory(factory.django.DjangoModelFactory):
    """A member with a zero balance. Give it points with ``points_earn``, never by setting fields."""

    class Meta:
        model = Member

    programme = factory.SubFactory(ProgrammeFactory)
    customer = factory.SubFactory(CustomerFactory)
    card_number = factory.Sequence(lambda n: f"9{n:015d}")
    referral_code = factory.Sequence(lambda n: f"REF{n:06d}")
    enrolled_at = factory.LazyFunction(timezone.now)


class RewardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reward

    programme = factory.SubFactory(ProgrammeFactory)
    code = factory.Sequence(lambda n: f"reward-{n}")
    kind = "physical"
    name_it = factory.Sequence(lambda n: f"Premio {n}")
    name_en = factory.Sequence(lambda n: f"Reward {n}")
    points_cost = 500


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner

    programme = factory.SubFactory(ProgrammeFactory, is_coalition=True)
    code = factory.Sequence(lambda n: f"partner-{n}")
    name = factory.Sequence(lambda n: f"Partner {n}")
