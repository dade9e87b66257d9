"""PostgreSQL: redemptions racing for the last item, the last codes, the same key, the same balance."""

from __future__ import annotations

import pytest
from django.db import connection

from fedele.loyalty.models import Member, PointsTransaction, Redemption, Reservation, Reward, VoucherCode
from fedele.loyalty.services import rewards as services
from fedele.loyalty.tests.rewards_support import (
    ADDRESS,
    assert_ledger_matches,
    member_with,
    reward,
    voucher,
    world,
)
from fedele.shared.errors import ApplicationError
from fedele.shared.testing import in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 10


def _codes(errors: list[BaseException]) -> list[str]:
    assert all(isinstance(error, ApplicationError) for error in errors), errors
    return sorted(error.code for error in errors if isinstance(error, ApplicationError))


def test_last_item_in_stock_goes_to_exactly_one_member() -> None:
    assert connection.vendor == "postgresql"
    w = world()
    members = [member_with(w.programme, 1_000) for _ in range(THREADS)]
    item = reward(w.programme, points_cost=400, stock=1)

    def redeem(index: int) -> None:
        services.reward_redeem(
            actor=None,
            member=members[index],
            reward=item,
            idempotency_key=f"k{index}",
            shipping_address=ADDRESS,
        )

    errors = in_threads(redeem, THREADS)
    assert _codes(errors) == ["out_of_stock"] * (THREADS - 1)
    assert Redemption.objects.count() == 1
    assert Reservation.objects.count() == 1
    assert Reward.objects.get(pk=item.pk).stock == 0
    winner = Redemption.objects.get().member
    for member in members:
        member.refresh_from_db()
        assert member.available == (600 if member.pk == winner.pk else 1_000)
        assert_ledger_matches(member)


def test_last_codes_are_each_issued_once() -> None:
    w = world()
    members = [member_with(w.programme, 1_000) for _ in range(THREADS)]
    item = voucher(w.programme, [f"CODE{i}" for i in range(4)], points_cost=100)

    def redeem(index: int) -> None:
        services.reward_redeem(actor=None, member=members[index], reward=item, idempotency_key=f"k{index}")

    errors = in_threads(redeem, THREADS)
    assert _codes(errors) == ["no_codes_left"] * (THREADS - 4)
    issued = list(VoucherCode.objects.filter(reward=item, state="issued").values_list("member_id", flat=True))
    assert len(issued) == len(set(issued)) == 4
    assert Redemption.objects.filter(state="fulfilled").count() == 4
    assert set(Redemption.objects.values_list("voucher__member_id", flat=True)) == set(issued)


def test_same_key_in_parallel_redeems_once() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    item = voucher(w.programme, [f"V{i}" for i in range(THREADS)], points_cost=100)
    seen: list[int] = []

    def redeem(index: int) -> None:
        redemption = services.reward_redeem(actor=None, member=member, reward=item, idempotency_key="same")
        seen.append(redemption.pk)

    errors = in_threads(redeem, THREADS)
    assert errors == []
    assert len(set(seen)) == 1 and len(seen) == THREADS
    assert Redemption.objects.count() == 1
    assert PointsTransaction.objects.filter(kind="redeem").count() == 1
    assert VoucherCode.objects.filter(state="issued").count() == 1
    member.refresh_from_db()
    assert member.available == 900
    assert_ledger_matches(member)


def test_per_member_limit_holds_under_parallel_requests() -> None:
    w = world()
    member = member_with(w.programme, 10_000)
    item = reward(w.programme, points_cost=100, per_member_limit=2, stock=None)

    def redeem(index: int) -> None:
        services.reward_redeem(
            actor=None, member=member, reward=item, idempotency_key=f"k{index}", shipping_address=ADDRESS
        )

    errors = in_threads(redeem, THREADS)
    assert _codes(errors) == ["member_limit_reached"] * (THREADS - 2)
    assert Redemption.objects.count() == 2
    member.refresh_from_db()
    assert member.available == 9_800


def test_one_balance_across_different_rewards_never_goes_negative() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    items = [reward(w.programme, points_cost=300, stock=None) for _ in range(THREADS)]

    def redeem(index: int) -> None:
        services.reward_redeem(
            actor=None,
            member=member,
            reward=items[index],
            idempotency_key=f"k{index}",
            shipping_address=ADDRESS,
        )

    errors = in_threads(redeem, THREADS)
    assert _codes(errors) == ["insufficient_balance"] * (THREADS - 3)
    member = Member.objects.get(pk=member.pk)
    assert (member.available, member.lifetime_redeemed) == (100, 900)
    assert Redemption.objects.count() == 3
    assert_ledger_matches(member)
