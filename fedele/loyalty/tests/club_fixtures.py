"""Builders shared by the member portal's tests: a portal login linked to its customer, a membership
enrolled through the members service and points posted through the ledger service (never by setting
balance fields)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from django.test import Client

from fedele.accounts.models import User
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.models import Customer
from fedele.customers.tests.factories import ContactFactory, CustomerFactory
from fedele.loyalty.models import Member, PointsTransaction, Programme, Reward
from fedele.loyalty.services.ledger import points_earn
from fedele.loyalty.services.members import member_enrol
from fedele.loyalty.services.rewards import voucher_codes_generate
from fedele.loyalty.tests.factories import ProgrammeFactory, RewardFactory, standard_tiers

_keys = itertools.count(1)


@dataclass
class Portal:
    user: User
    customer: Customer
    client: Client


def programme_with_tiers(**fields: object) -> Programme:
    defaults: dict[str, object] = {"name_it": "Club Amici", "name_en": "Friends Club"}
    defaults.update(fields)
    programme: Programme = ProgrammeFactory(**defaults)
    standard_tiers(programme)
    return programme


def portal_customer(*, language: str = "en", name: str = "Giulia Neri") -> Portal:
    first, last = name.split(" ", 1)
    customer: Customer = CustomerFactory(
        first_name=first, last_name=last, display_name=name, language=language
    )
    user = user_with_roles(
        "portal_customer", email=f"{first.lower()}.{customer.pk}@example.it", language=language
    )
    ContactFactory(customer=customer, portal_user=user)
    client = Client()
    client.force_login(user)
    return Portal(user=user, customer=customer, client=client)


def enrol(programme: Programme, customer: Customer, **kwargs: object) -> Member:
    return member_enrol(actor=None, programme=programme, customer_public_id=str(customer.public_id), **kwargs)


def earn(member: Member, points: int, *, at: datetime | None = None, **kwargs: object) -> PointsTransaction:
    transaction = points_earn(
        actor=None,
        member=member,
        points=points,
        source="test",
        idempotency_key=f"test-earn-{next(_keys)}",
        occurred_at=at,
        **kwargs,
    )
    member.refresh_from_db()
    return transaction


def voucher(programme: Programme, *, cost: int = 500, codes: int = 3, **fields: object) -> Reward:
    reward: Reward = RewardFactory(
        programme=programme,
        kind="voucher",
        points_cost=cost,
        name_en=fields.pop("name_en", "€5 voucher"),
        name_it=fields.pop("name_it", "Buono da 5 €"),
        **fields,
    )
    voucher_codes_generate(actor=None, reward=reward, count=codes, prefix="CLUB-", length=8)
    return reward
