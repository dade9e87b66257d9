"""PostgreSQL, real threads through the portal's redeem page: the same form sent many times at once
redeems once; different forms racing for the same points never overspend."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from fedele.loyalty.models import PointsTransaction, Redemption, VoucherCode
from fedele.loyalty.tests.club_fixtures import earn, enrol, portal_customer, programme_with_tiers, voucher
from fedele.shared.testing import in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _clients(portal, count: int) -> list[Client]:
    clients = []
    for _index in range(count):
        client = Client()
        client.force_login(portal.user)
        clients.append(client)
    return clients


def test_the_same_form_sent_eight_times_at_once_redeems_once() -> None:
    programme = programme_with_tiers()
    portal = portal_customer()
    member = enrol(programme, portal.customer)
    earn(member, 1_200)
    reward = voucher(programme, cost=500, codes=5)
    key = str(uuid.uuid4())
    clients = _clients(portal, 8)
    locations: list[str] = []

    def submit(index: int) -> None:
        response = clients[index].post(f"/club/rewards/{reward.public_id}/", {"idempotency_key": key})
        assert response.status_code == 302, response.content[:300]
        locations.append(response["Location"])

    assert in_threads(submit, 8) == []

    redemption = Redemption.objects.get(member=member)
    assert locations == [f"/club/redemptions/?new={redemption.public_id}"] * 8
    member.refresh_from_db()
    assert (member.available, member.reserved, member.lifetime_redeemed) == (700, 0, 500)
    assert PointsTransaction.objects.filter(member=member, kind="redeem").count() == 1
    assert VoucherCode.objects.filter(reward=reward, state="issued").count() == 1


def test_six_different_forms_racing_for_the_points_never_overspend() -> None:
    programme = programme_with_tiers()
    portal = portal_customer()
    member = enrol(programme, portal.customer)
    earn(member, 1_200)
    reward = voucher(programme, cost=500, codes=10)
    clients = _clients(portal, 6)
    statuses: list[int] = []

    def submit(index: int) -> None:
        response = clients[index].post(
            f"/club/rewards/{reward.public_id}/", {"idempotency_key": str(uuid.uuid4())}
        )
        statuses.append(response.status_code)

    assert in_threads(submit, 6) == []

    assert sorted(statuses) == [302, 302, 422, 422, 422, 422]
    member.refresh_from_db()
    assert (member.available, member.reserved, member.lifetime_redeemed) == (200, 0, 1_000)
    assert Redemption.objects.filter(member=member).count() == 2
    assert VoucherCode.objects.filter(reward=reward, state="issued").count() == 2
    assert VoucherCode.objects.filter(reward=reward, state="available").count() == 8
