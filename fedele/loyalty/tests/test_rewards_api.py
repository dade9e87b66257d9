"""HTTP API of the rewards area: catalogue CRUD, code pools, redemptions, scoping and errors."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.loyalty.models import PointsTransaction, Redemption, Reward, VoucherCode
from fedele.loyalty.tests.rewards_support import (
    ADDRESS,
    footprint,
    member_with,
    portal_user_for,
    reward,
    voucher,
    world,
)

pytestmark = pytest.mark.django_db

BASE = "/api/v1/loyalty"


def _post(client: Client, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json", **headers)


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    return dict(body["error"])


def test_catalogue_crud(client: Client) -> None:
    w = world()
    manager = auth_header(user_with_roles("loyalty_manager"))
    created = _post(
        client,
        f"{BASE}/programmes/{w.programme.code}/rewards",
        {
            "code": "cinema",
            "kind": "voucher",
            "name_it": "Biglietto cinema",
            "name_en": "Cinema ticket",
            "points_cost": 800,
            "cash_price": "2.50",
            "eligible_tiers": ["silver", "gold"],
        },
        manager,
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["code"], body["points_cost"], body["cash_price"], body["stock"]) == (
        "cinema",
        800,
        "2.50",
        None,
    )
    assert body["eligible_tiers"] == ["gold", "silver"]
    reward_id = body["id"]
    generated = _post(client, f"{BASE}/rewards/{reward_id}/codes", {"count": 25, "prefix": "CIN"}, manager)
    assert generated.status_code == 201
    assert generated.json() == {"generated": 25, "codes_available": 25}
    imported = _post(
        client, f"{BASE}/rewards/{reward_id}/codes/import", {"csv": "code\nUCI-1\nUCI-2\n"}, manager
    )
    assert imported.status_code == 201
    assert imported.json() == {"imported": 2, "lines": 3, "skipped_blank": 0, "codes_available": 27}
    patched = client.patch(
        f"{BASE}/rewards/{reward_id}",
        data=json.dumps({"stock": 12, "active": False}),
        content_type="application/json",
        **manager,
    )
    assert patched.status_code == 200
    assert (patched.json()["stock"], patched.json()["active"]) == (12, False)
    listed = client.get(f"{BASE}/programmes/{w.programme.code}/rewards?kind=voucher", **manager)
    assert listed.status_code == 200
    [row] = listed.json()
    assert (row["code"], row["codes_available"], row["redemptions"]) == ("cinema", 27, 0)
    assert client.get(f"{BASE}/programmes/{w.programme.code}/rewards?active=true", **manager).json() == []


def test_catalogue_errors_use_the_envelope(client: Client) -> None:
    w = world()
    manager = auth_header(user_with_roles("loyalty_manager"))
    bad = _post(
        client,
        f"{BASE}/programmes/{w.programme.code}/rewards",
        {"code": "x", "kind": "donation", "name_it": "Dono", "name_en": "Gift", "points_cost": 0},
        manager,
    )
    assert bad.status_code == 422
    error = _error(bad)
    assert error["code"] == "invalid_reward"
    assert set(error["fields"]) == {"points_cost", "charity_name"}
    unknown = _post(
        client,
        f"{BASE}/programmes/{w.programme.code}/rewards",
        {"code": "x", "kind": "physical", "name_it": "a", "name_en": "a", "points_cost": 1, "colour": "red"},
        manager,
    )
    assert unknown.status_code == 422
    assert _error(unknown)["fields"] == {"colour": ["Unknown field."]}
    missing = client.get(f"{BASE}/programmes/nope/rewards", **manager)
    assert missing.status_code == 404 and _error(missing)["code"] == "programme_not_found"
    assert client.get(f"{BASE}/rewards/not-a-uuid", **manager).status_code == 422
    agent = auth_header(user_with_roles("agent"))
    denied = _post(
        client,
        f"{BASE}/programmes/{w.programme.code}/rewards",
        {"code": "x", "kind": "physical", "name_it": "a", "name_en": "a", "points_cost": 1},
        agent,
    )
    assert denied.status_code == 403 and _error(denied)["code"] == "permission_denied"
    read_only = auth_header(user_with_roles("loyalty_manager"), scopes=("read",))
    scoped = _post(client, f"{BASE}/programmes/{w.programme.code}/rewards", {}, read_only)
    assert scoped.status_code in (403, 422)
    assert Reward.objects.count() == 0


def test_import_reports_duplicates_by_line(client: Client) -> None:
    w = world()
    item = voucher(w.programme, ["A-1"])
    manager = auth_header(user_with_roles("loyalty_manager"))
    response = _post(
        client, f"{BASE}/rewards/{item.public_id}/codes/import", {"csv": "B-1\nA-1\nB-1\n"}, manager
    )
    assert response.status_code == 422
    assert _error(response)["fields"] == {
        "line 2": ["'A-1' is already in the pool."],
        "line 3": ["Duplicate of line 1."],
    }
    assert VoucherCode.objects.count() == 1


def test_redeem_with_idempotency_key_and_replay(client: Client) -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    item = voucher(w.programme, ["ZZ1", "ZZ2"], points_cost=300)
    agent = auth_header(user_with_roles("agent"))
    url = f"{BASE}/members/{member.public_id}/redemptions"
    body = {"reward_id": str(item.public_id)}
    first = _post(client, url, body, {**agent, "HTTP_IDEMPOTENCY_KEY": "till-7-0001"})
    assert first.status_code == 201, first.content
    data = first.json()
    assert (data["state"], data["points"], data["voucher_code"], data["reservation_state"]) == (
        "fulfilled",
        300,
        "ZZ1",
        "confirmed",
    )
    again = _post(client, url, body, {**agent, "HTTP_IDEMPOTENCY_KEY": "till-7-0001"})
    assert again.status_code == 201
    assert again.json()["id"] == data["id"]
    # Another caller (another token) with the same key: the service still answers the same redemption.
    other_agent = auth_header(user_with_roles("agent"))
    third = _post(client, url, body, {**other_agent, "HTTP_IDEMPOTENCY_KEY": "till-7-0001"})
    assert third.status_code == 201 and third.json()["id"] == data["id"]
    assert Redemption.objects.count() == 1
    assert PointsTransaction.objects.filter(kind="redeem").count() == 1
    member.refresh_from_db()
    assert member.available == 700


def test_redeem_refusals(client: Client) -> None:
    w = world()
    member = member_with(w.programme, 100)
    item = reward(w.programme, points_cost=300, stock=2)
    agent = auth_header(user_with_roles("agent"))
    url = f"{BASE}/members/{member.public_id}/redemptions"
    foreign = reward(world().programme)
    before = footprint()
    no_key = _post(client, url, {"reward_id": str(item.public_id), "shipping_address": ADDRESS}, agent)
    assert no_key.status_code == 422 and _error(no_key)["code"] == "idempotency_key_required"
    poor = _post(
        client,
        url,
        {"reward_id": str(item.public_id), "shipping_address": ADDRESS},
        {**agent, "HTTP_IDEMPOTENCY_KEY": "k1"},
    )
    assert poor.status_code == 422
    assert _error(poor) == {
        "code": "insufficient_balance",
        "message": "Not enough points available.",
        "fields": {"reward": ["Not enough points available."]},
    }
    bad_address = _post(
        client,
        url,
        {"reward_id": str(item.public_id), "shipping_address": {**ADDRESS, "postcode": "1234"}},
        {**agent, "HTTP_IDEMPOTENCY_KEY": "k2"},
    )
    assert bad_address.status_code == 422
    assert _error(bad_address)["fields"] == {
        "shipping_address.postcode": ["An Italian postcode has 5 digits."]
    }
    unknown = _post(
        client, url, {"reward_id": str(foreign.public_id)}, {**agent, "HTTP_IDEMPOTENCY_KEY": "k3"}
    )
    assert unknown.status_code == 404 and _error(unknown)["code"] == "reward_not_found"
    assert footprint() == before


def test_points_plus_cash_confirm_cancel_and_ship(client: Client) -> None:
    w = world()
    member = member_with(w.programme, 2_000)
    item = reward(w.programme, points_cost=500, cash_price=Decimal("12.00"), stock=3)
    agent = auth_header(user_with_roles("agent"))
    url = f"{BASE}/members/{member.public_id}/redemptions"
    held = _post(
        client,
        url,
        {"reward_id": str(item.public_id), "shipping_address": ADDRESS, "confirm": False, "quantity": 2},
        {**agent, "HTTP_IDEMPOTENCY_KEY": "shop-1"},
    ).json()
    assert (held["state"], held["points"], held["cash_amount"]) == ("reserved", 1_000, "24.00")
    confirmed = _post(client, f"{BASE}/redemptions/{held['id']}/confirm", {}, agent)
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "awaiting_shipment"
    shipped = _post(client, f"{BASE}/redemptions/{held['id']}/ship", {"tracking": "GLS 998877"}, agent)
    assert (shipped.json()["state"], shipped.json()["tracking"]) == ("shipped", "GLS 998877")
    refused = _post(client, f"{BASE}/redemptions/{held['id']}/cancel", {"reason": "late"}, agent)
    assert refused.status_code == 409 and _error(refused)["code"] == "already_shipped"
    second = _post(
        client,
        url,
        {"reward_id": str(item.public_id), "shipping_address": ADDRESS, "confirm": False},
        {**agent, "HTTP_IDEMPOTENCY_KEY": "shop-2"},
    ).json()
    cancelled = _post(client, f"{BASE}/redemptions/{second['id']}/cancel", {"reason": "Card declined"}, agent)
    assert cancelled.status_code == 200
    assert (cancelled.json()["state"], cancelled.json()["reservation_state"]) == ("cancelled", "cancelled")
    item.refresh_from_db()
    member.refresh_from_db()
    assert (item.stock, member.available, member.reserved) == (1, 1_000, 0)


def test_redemption_list_filters_and_query_count(client: Client, django_assert_max_num_queries: Any) -> None:
    w = world()
    member = member_with(w.programme, 10_000)
    item = voucher(w.programme, [f"L{i}" for i in range(6)], points_cost=100)
    for index in range(6):
        from fedele.loyalty.services.rewards import reward_redeem

        reward_redeem(
            actor=None, member=member, reward=item, idempotency_key=f"k{index}", confirm=index % 2 == 0
        )
    manager = auth_header(user_with_roles("loyalty_manager"))
    client.get(f"{BASE}/redemptions?limit=1", **manager)  # warm the token/session caches
    with django_assert_max_num_queries(12):
        response = client.get(f"{BASE}/redemptions?limit=4&state=fulfilled,reserved", **manager)
    page = response.json()
    assert len(page["items"]) == 4 and page["next_cursor"]
    rest = client.get(
        f"{BASE}/redemptions?limit=4&state=fulfilled,reserved&cursor={page['next_cursor']}", **manager
    )
    assert len(rest.json()["items"]) == 2 and rest.json()["next_cursor"] is None
    reserved = client.get(f"{BASE}/redemptions?state=reserved&programme={w.programme.code}", **manager).json()
    assert [row["voucher_code"] for row in reserved["items"]] == ["L5", "L3", "L1"]
    bad = client.get(f"{BASE}/redemptions?state=lost", **manager)
    assert bad.status_code == 422 and _error(bad)["fields"] == {"state": ["Unknown state."]}


def test_portal_customer_sees_and_redeems_only_its_own(client: Client) -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    stranger = member_with(w.programme, 1_000)
    item = voucher(w.programme, ["P1", "P2"], points_cost=400)
    user = portal_user_for(member)
    headers = auth_header(user)
    offers = client.get(f"{BASE}/members/{member.public_id}/rewards", **headers)
    assert offers.status_code == 200
    assert [(o["reward"]["code"], o["redeemable"]) for o in offers.json()] == [(item.code, True)]
    assert client.get(f"{BASE}/members/{stranger.public_id}/rewards", **headers).status_code == 404
    own = _post(
        client,
        f"{BASE}/members/{member.public_id}/redemptions",
        {"reward_id": str(item.public_id)},
        {**headers, "HTTP_IDEMPOTENCY_KEY": "portal-1"},
    )
    assert own.status_code == 201
    theirs = _post(
        client,
        f"{BASE}/members/{stranger.public_id}/redemptions",
        {"reward_id": str(item.public_id)},
        {**headers, "HTTP_IDEMPOTENCY_KEY": "portal-2"},
    )
    assert theirs.status_code == 404
    listed = client.get(f"{BASE}/redemptions", **headers).json()["items"]
    assert [row["member_id"] for row in listed] == [str(member.public_id)]
    assert client.get(f"{BASE}/programmes/{w.programme.code}/rewards", **headers).status_code == 403
    stranger_redemption = _post(
        client,
        f"{BASE}/members/{stranger.public_id}/redemptions",
        {"reward_id": str(item.public_id)},
        {**auth_header(user_with_roles("agent")), "HTTP_IDEMPOTENCY_KEY": "s"},
    ).json()
    hidden = client.get(f"{BASE}/redemptions/{stranger_redemption['id']}", **headers)
    assert hidden.status_code == 404
