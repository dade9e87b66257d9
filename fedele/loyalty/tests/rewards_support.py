"""Test helpers of the rewards area: a programme with tiers, members with points (earned through the
ledger service, never by setting balances), staff and portal actors, and ledger read-outs."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from fedele.accounts.contracts import Actor
from fedele.accounts.facade import actor_for
from fedele.accounts.models import User
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import ContactFactory
from fedele.loyalty.models import (
    Account,
    Member,
    PointsEntry,
    PointsTransaction,
    Programme,
    Redemption,
    Reservation,
    Reward,
    Tier,
    VoucherCode,
)
from fedele.loyalty.services import ledger
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, RewardFactory, standard_tiers
from fedele.shared.models import AuditLog

_keys = itertools.count(1)

ADDRESS = {
    "name": "Mario Rossi",
    "street": "Via Roma 1",
    "city": "Roma",
    "postcode": "00184",
    "country": "IT",
}


@dataclass
class World:
    programme: Programme
    bronze: Tier
    silver: Tier
    gold: Tier


def world(**programme_fields: Any) -> World:
    programme = ProgrammeFactory(**programme_fields)
    bronze, silver, gold = standard_tiers(programme)
    return World(programme, bronze, silver, gold)


def member_with(
    programme: Programme, points: int = 0, *, tier: Tier | None = None, status: str = "active", **fields: Any
) -> Member:
    member: Member = MemberFactory(programme=programme, **fields)
    if points:
        ledger.points_earn(
            actor=None, member=member, points=points, source="test", idempotency_key=f"seed-{next(_keys)}"
        )
    # Tier hooks may move the member on earning: the test decides the tier (and the status).
    Member.objects.filter(pk=member.pk).update(tier=tier, status=status)
    member.refresh_from_db()
    return member


def reward(programme: Programme, **fields: Any) -> Reward:
    created: Reward = RewardFactory(programme=programme, **fields)
    return created


def voucher(programme: Programme, codes: list[str], **fields: Any) -> Reward:
    item = reward(programme, kind="voucher", **fields)
    VoucherCode.objects.bulk_create([VoucherCode(reward=item, code=code) for code in codes])
    return item


def staff(*roles: str) -> Actor:
    return actor_for(user_with_roles(*(roles or ("loyalty_manager",))))


def portal_user_for(member: Member) -> User:
    user = user_with_roles("portal_customer")
    ContactFactory(customer=member.customer, portal_user=user, email=user.email)
    return user


def portal_actor(member: Member) -> Actor:
    return actor_for(portal_user_for(member))


@dataclass(frozen=True)
class Footprint:
    """Everything a redemption can write: compare before/after to prove nothing was written."""

    transactions: int
    entries: int
    reservations: int
    redemptions: int
    codes: dict[str, int]
    stocks: dict[int, int | None]
    audit_rows: int
    balances: dict[int, tuple[int, int]]


def footprint() -> Footprint:
    codes: dict[str, int] = {}
    for state in VoucherCode.objects.values_list("state", flat=True):
        codes[state] = codes.get(state, 0) + 1
    return Footprint(
        transactions=PointsTransaction.objects.count(),
        entries=PointsEntry.objects.count(),
        reservations=Reservation.objects.count(),
        redemptions=Redemption.objects.count(),
        codes=codes,
        stocks=dict(Reward.objects.values_list("pk", "stock")),
        audit_rows=AuditLog.objects.count(),
        balances={m.pk: (m.available, m.reserved) for m in Member.objects.all()},
    )


def ledger_sum(member: Member, account: str) -> int:
    total = PointsEntry.objects.filter(member=member, account=account).aggregate(total=Sum("points"))["total"]
    return int(total or 0)


def assert_ledger_matches(member: Member) -> None:
    member.refresh_from_db()
    assert member.available == ledger_sum(member, Account.MEMBER_AVAILABLE)
    assert member.reserved == ledger_sum(member, Account.MEMBER_RESERVED)


def money(text: str) -> Decimal:
    return Decimal(text)
