"""Partner API under /api/v1/loyalty/: operator CRUD, credentials and settlements; the partner-facing
endpoints with scoped tokens (a partner never sees another partner's data: 404)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.loyalty.models import Partner, PartnerSettlement, PointsEntry, PointsTransaction, Reservation
from fedele.loyalty.services.partners import partner_burn, partner_credentials_issue, partner_earn
from fedele.loyalty.services.settlements import settlement_generate, settlement_issue
from fedele.loyalty.tests.partners_fixtures import (
    at,
    coalition,
    member_with,
    partner_actor,
    partner_with_user,
)

pytestmark = pytest.mark.django_db
BASE = "/api/v1/loyalty"
D = Decimal
ALL = ["loyalty:partner:earn", "loyalty:partner:burn", "loyalty:partner:read"]


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(at(2026, 3, 10), tick=False) as traveller:
        yield traveller


def _token(partner: Partner, scopes: list[str]) -> dict[str, str]:
    plain, _token_id = partner_credentials_issue(actor=None, partner=partner, scopes=scopes)
    return {"HTTP_AUTHORIZATION": f"Bearer {plain}"}


def _post(client: Client, path: str, body: Any, headers: dict[str, str]) -> Any:
    return client.post(f"{BASE}{path}", data=json.dumps(body), content_type="application/json", **headers)


def _envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"} and error["code"] == code
    return dict(error)


@pytest.fixture
def world() -> dict[str, Any]:
    programme = coalition()
    shop, shop_user = partner_with_user(
        programme, code="shop", earn_price_per_point=D("0.012345"), burn_price_per_point=D("0.009500")
    )
    fuel, fuel_user = partner_with_user(programme, code="fuel")
    member = member_with(programme, 1_000, card="9000000000000001")
    return {
        "programme": programme,
        "shop": shop,
        "shop_user": shop_user,
        "fuel": fuel,
        "fuel_user": fuel_user,
        "member": member,
        "shop_token": _token(shop, ALL),
        "fuel_token": _token(fuel, ALL),
    }


def _ledger_rows() -> tuple[int, int, int]:
    return PointsTransaction.objects.count(), PointsEntry.objects.count(), Reservation.objects.count()


# -- operator --------------------------------------------------------------------------------------


def test_operator_creates_lists_updates_and_suspends(client: Client) -> None:
    programme = coalition(code="coal")
    staff = auth_header(user_with_roles("loyalty_manager"))
    created = _post(
        client,
        "/partners",
        {
            "programme": "coal",
            "code": "air",
            "name": "Air Fedele",
            "earn_price_per_point": "0.008",
            "burn_price_per_point": "0.0095",
            "user": {"email": "ops@air.example", "first_name": "Ada"},
        },
        staff,
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["code"], body["programme"], body["earn_price_per_point"], body["burn_price_per_point"]) == (
        "air",
        "coal",
        "0.008000",
        "0.009500",
    )
    partner_id = body["id"]
    listed = client.get(f"{BASE}/partners?programme=coal", **staff)
    assert [p["code"] for p in listed.json()] == ["air"]
    patched = client.patch(
        f"{BASE}/partners/{partner_id}",
        data=json.dumps({"burn_price_per_point": "0.01"}),
        content_type="application/json",
        **staff,
    )
    assert patched.json()["burn_price_per_point"] == "0.010000"
    suspended = _post(
        client, f"/partners/{partner_id}/status", {"status": "suspended", "reason": "audit"}, staff
    )
    assert suspended.json()["status"] == "suspended"
    users = client.get(f"{BASE}/partners/{partner_id}/users", **staff).json()
    assert [u["email"] for u in users] == ["ops@air.example"]
    assert Partner.objects.get(programme=programme).status == "suspended"


def test_operator_errors_use_the_envelope_and_change_nothing(client: Client) -> None:
    coalition(code="coal")
    staff = auth_header(user_with_roles("loyalty_manager"))
    bad = _post(client, "/partners", {"programme": "coal", "code": "Bad Code", "name": "X"}, staff)
    assert "code" in _envelope(bad, 422, "validation_error")["fields"]
    unknown = _post(client, "/partners", {"programme": "nope", "code": "x", "name": "X"}, staff)
    _envelope(unknown, 404, "programme_not_found")
    extra = _post(client, "/partners", {"programme": "coal", "code": "x", "name": "X", "colour": 1}, staff)
    _envelope(extra, 422, "validation_error")
    agent = auth_header(user_with_roles("agent"))
    forbidden = _post(client, "/partners", {"programme": "coal", "code": "x", "name": "X"}, agent)
    _envelope(forbidden, 403, "permission_denied")
    assert not Partner.objects.exists()


def test_operator_issues_credentials_that_work_on_the_partner_api(
    client: Client, world: dict[str, Any]
) -> None:
    staff = auth_header(user_with_roles("loyalty_manager"))
    shop = world["shop"]
    issued = _post(
        client, f"/partners/{shop.public_id}/credentials", {"scopes": ["loyalty:partner:read"]}, staff
    )
    assert issued.status_code == 201, issued.content
    token = issued.json()["token"]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    looked_up = client.get(f"{BASE}/partner/members/9000000000000001", **headers)
    assert looked_up.status_code == 200 and looked_up.json()["available"] == 1_000
    listed = client.get(f"{BASE}/partners/{shop.public_id}/credentials", **staff).json()
    mine = [row for row in listed if row["id"] == issued.json()["id"]]
    assert mine[0]["scopes"] == ["loyalty:partner:read"] and mine[0]["active"] is True
    assert token not in json.dumps(listed)
    revoked = client.post(
        f"{BASE}/partners/{shop.public_id}/credentials/{issued.json()['id']}/revoke", **staff
    )
    assert revoked.status_code == 204
    _envelope(client.get(f"{BASE}/partner/members/9000000000000001", **headers), 401, "not_authenticated")
    # A read/write staff token cannot use the partner endpoints, nor a partner token the operator ones.
    _envelope(client.get(f"{BASE}/partner/members/9000000000000001", **staff), 403, "insufficient_scope")
    _envelope(client.get(f"{BASE}/partners", **world["shop_token"]), 403, "insufficient_scope")


def test_operator_settlement_endpoints(client: Client, world: dict[str, Any], _frozen: Any) -> None:
    staff = auth_header(user_with_roles("loyalty_manager"))
    shop, member = world["shop"], world["member"]
    actor = partner_actor(world["shop_user"])
    partner_earn(actor=actor, partner=shop, card_number=member.card_number, points=81, external_id="E1")
    partner_burn(actor=actor, partner=shop, card_number=member.card_number, points=250, external_id="B1")
    _frozen.move_to(at(2026, 4, 2))
    generated = _post(client, f"/partners/{shop.public_id}/settlements", {"month": "2026-03"}, staff)
    assert generated.status_code == 200, generated.content
    body = generated.json()
    assert (body["state"], body["points_issued"], body["amount_due_from_partner"], body["net"]) == (
        "draft",
        81,
        "1.00",
        "-1.38",
    )
    assert body["lines"][1] == {
        "date": "2026-03-10",
        "kind": "burn",
        "count": 1,
        "points": 250,
        "amount": "2.38",
    }
    path = f"/partners/{shop.public_id}/settlements/{body['id']}"
    issued = _post(client, f"{path}/issue", {}, staff)
    assert issued.json()["state"] == "issued"
    _envelope(
        _post(client, f"/partners/{shop.public_id}/settlements", {"month": "2026-03"}, staff),
        409,
        "settlement_issued",
    )
    _envelope(
        _post(client, f"/partners/{shop.public_id}/settlements", {"month": "2026-13"}, staff),
        422,
        "invalid_period",
    )
    paid = _post(client, f"{path}/paid", {}, staff)
    assert paid.json()["state"] == "paid"
    csv = client.get(f"{BASE}{path}/csv", **staff)
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    assert csv.content.decode().splitlines()[1] == "2026-03-10;earn;1;81;1,00"
    listed = client.get(f"{BASE}/partners/{shop.public_id}/settlements", **staff).json()
    assert [(s["state"], s["net"]) for s in listed] == [("paid", "-1.38")]
    # The settlement of one partner is not reachable under another's path.
    _envelope(
        client.get(f"{BASE}/partners/{world['fuel'].public_id}/settlements/{body['id']}", **staff),
        404,
        "not_found",
    )


# -- partner-facing ----------------------------------------------------------------------------------


def test_partner_earns_idempotently_by_external_id(client: Client, world: dict[str, Any]) -> None:
    body = {"card_number": "9000000000000001", "points": 81, "external_id": "R-1", "reference": "receipt 1"}
    first = _post(client, "/partner/earn", body, world["shop_token"])
    assert first.status_code == 200, first.content
    data = first.json()
    assert (data["points"], data["partner_amount"], data["member"]["available"]) == (81, "1.00", 1_081)
    assert data["member"] == {
        "card_number": "9000000000000001",
        "initial": "M.",
        "status": "active",
        "tier_code": "",
        "tier_name": "",
        "available": 1_081,
        "currency_name": "points",  # the partner user's language (English)
    }
    again = _post(client, "/partner/earn", body, world["shop_token"])
    assert again.json()["transaction_id"] == data["transaction_id"]
    assert PointsTransaction.objects.filter(partner=world["shop"]).count() == 1
    reused = _post(client, "/partner/earn", {**body, "points": 80}, world["shop_token"])
    _envelope(reused, 409, "external_id_reused")


def test_partner_earn_with_an_offset_time(client: Client, world: dict[str, Any]) -> None:
    body = {
        "card_number": "9000000000000001",
        "points": 10,
        "external_id": "R-2",
        "occurred_at": "2026-03-09T23:30:00+01:00",
    }
    response = _post(client, "/partner/earn", body, world["shop_token"])
    assert response.status_code == 200, response.content
    txn = PointsTransaction.objects.get(public_id=response.json()["transaction_id"])
    assert txn.occurred_at == at(2026, 3, 9, 22, 30)


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/partner/earn", {"card_number": "0000", "points": 5, "external_id": "X"}, 404, "member_not_found"),
        (
            "/partner/earn",
            {"card_number": "9000000000000001", "points": -5, "external_id": "X"},
            422,
            "invalid_points",
        ),
        ("/partner/earn", {"card_number": "9000000000000001", "points": 5}, 422, "validation_error"),
        (
            "/partner/earn",
            {"card_number": "9000000000000001", "amount_eur": "x", "external_id": "X"},
            422,
            "validation_error",
        ),
        (
            "/partner/burn",
            {"card_number": "9000000000000001", "points": 1001, "external_id": "X"},
            422,
            "insufficient_balance",
        ),
        (
            "/partner/burn",
            {"card_number": "9000000000000001", "points": 0, "external_id": "X"},
            422,
            "invalid_points",
        ),
        (
            "/partner/holds",
            {"card_number": "9000000000000001", "points": 5000, "external_id": "X"},
            422,
            "insufficient_balance",
        ),
    ],
)
def test_bad_partner_requests_write_nothing(
    client: Client, world: dict[str, Any], path: str, body: dict[str, Any], status: int, code: str
) -> None:
    before = _ledger_rows()
    _envelope(_post(client, path, body, world["shop_token"]), status, code)
    assert _ledger_rows() == before
    world["member"].refresh_from_db()
    assert world["member"].available == 1_000


def test_scopes_are_enforced(client: Client, world: dict[str, Any]) -> None:
    earn_only = _token(world["shop"], ["loyalty:partner:earn"])
    before = _ledger_rows()
    burn = _post(
        client,
        "/partner/burn",
        {"card_number": "9000000000000001", "points": 5, "external_id": "B"},
        earn_only,
    )
    _envelope(burn, 403, "insufficient_scope")
    hold = _post(
        client,
        "/partner/holds",
        {"card_number": "9000000000000001", "points": 5, "external_id": "H"},
        earn_only,
    )
    _envelope(hold, 403, "insufficient_scope")
    _envelope(client.get(f"{BASE}/partner/transactions", **earn_only), 403, "insufficient_scope")
    assert _ledger_rows() == before
    earned = _post(
        client,
        "/partner/earn",
        {"card_number": "9000000000000001", "points": 5, "external_id": "E"},
        earn_only,
    )
    assert earned.status_code == 200
    read_only = _token(world["shop"], ["loyalty:partner:read"])
    _envelope(
        _post(
            client,
            f"/partner/transactions/{earned.json()['transaction_id']}/reverse",
            {"reason": "x"},
            read_only,
        ),
        403,
        "insufficient_scope",
    )


def test_a_suspended_partner_is_refused(client: Client, world: dict[str, Any]) -> None:
    world["shop"].status = "suspended"
    world["shop"].save(update_fields=["status"])
    before = _ledger_rows()
    refused = _post(
        client,
        "/partner/earn",
        {"card_number": "9000000000000001", "points": 5, "external_id": "E"},
        world["shop_token"],
    )
    _envelope(refused, 403, "partner_suspended")
    assert _ledger_rows() == before


def test_hold_confirm_cancel_and_reverse(client: Client, world: dict[str, Any]) -> None:
    token = world["shop_token"]
    held = _post(
        client,
        "/partner/holds",
        {"card_number": "9000000000000001", "points": 300, "external_id": "H1"},
        token,
    )
    assert held.status_code == 201 and held.json()["state"] == "held"
    confirmed = _post(client, f"/partner/holds/{held.json()['id']}/confirm", {}, token)
    assert (confirmed.json()["kind"], confirmed.json()["points"], confirmed.json()["partner_amount"]) == (
        "burn",
        300,
        "2.85",
    )
    other = _post(
        client,
        "/partner/holds",
        {"card_number": "9000000000000001", "points": 100, "external_id": "H2"},
        token,
    )
    cancelled = _post(client, f"/partner/holds/{other.json()['id']}/cancel", {}, token)
    assert cancelled.json()["state"] == "cancelled"
    reversed_ = _post(
        client, f"/partner/transactions/{confirmed.json()['id']}/reverse", {"reason": "returned"}, token
    )
    assert (reversed_.json()["kind"], reversed_.json()["points"], reversed_.json()["partner_amount"]) == (
        "burn_reversal",
        300,
        "2.85",
    )
    world["member"].refresh_from_db()
    assert (world["member"].available, world["member"].reserved) == (1_000, 0)


def test_a_partner_never_sees_another_partners_data(
    client: Client, world: dict[str, Any], _frozen: Any
) -> None:
    shop_token, fuel_token = world["shop_token"], world["fuel_token"]
    earned = _post(
        client,
        "/partner/earn",
        {"card_number": "9000000000000001", "points": 5, "external_id": "E"},
        shop_token,
    )
    held = _post(
        client,
        "/partner/holds",
        {"card_number": "9000000000000001", "points": 5, "external_id": "H"},
        shop_token,
    )
    transaction_id, hold_id = earned.json()["transaction_id"], held.json()["id"]
    _frozen.move_to(at(2026, 4, 2))
    settlement = settlement_issue(
        actor=None, settlement=settlement_generate(actor=None, partner=world["shop"], year=2026, month=3)
    )
    before = _ledger_rows()
    _envelope(
        _post(client, f"/partner/transactions/{transaction_id}/reverse", {"reason": "x"}, fuel_token),
        404,
        "not_found",
    )
    _envelope(_post(client, f"/partner/holds/{hold_id}/confirm", {}, fuel_token), 404, "not_found")
    _envelope(_post(client, f"/partner/holds/{hold_id}/cancel", {}, fuel_token), 404, "not_found")
    _envelope(
        client.get(f"{BASE}/partner/settlements/{settlement.public_id}", **fuel_token), 404, "not_found"
    )
    _envelope(
        client.get(f"{BASE}/partner/settlements/{settlement.public_id}/csv", **fuel_token), 404, "not_found"
    )
    assert client.get(f"{BASE}/partner/transactions", **fuel_token).json() == {
        "items": [],
        "next_cursor": None,
    }
    assert client.get(f"{BASE}/partner/settlements", **fuel_token).json() == []
    assert _ledger_rows() == before
    mine = client.get(f"{BASE}/partner/settlements", **shop_token).json()
    assert [(s["id"], s["points_issued"]) for s in mine] == [(str(settlement.public_id), 5)]
    # Partners never see drafts.
    settlement_generate(actor=None, partner=world["fuel"], year=2026, month=3)
    assert client.get(f"{BASE}/partner/settlements", **fuel_token).json() == []


def test_transactions_list_by_month_paginates_with_few_queries(
    client: Client, world: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    shop, member = world["shop"], world["member"]
    actor = partner_actor(world["shop_user"])
    for index in range(5):
        partner_earn(
            actor=actor,
            partner=shop,
            card_number=member.card_number,
            points=10 + index,
            external_id=f"E{index}",
        )
    first = PointsTransaction.objects.filter(partner=shop).order_by("id").first()
    assert first is not None
    from fedele.loyalty.services.partners import partner_reverse

    partner_reverse(actor=actor, partner=shop, transaction_to_reverse=first, reason="void")
    partner_earn(
        actor=actor,
        partner=shop,
        card_number=member.card_number,
        points=3,
        external_id="FEB",
        occurred_at=at(2026, 2, 20),
    )
    with django_assert_max_num_queries(12):
        page = client.get(f"{BASE}/partner/transactions?month=2026-03&limit=4", **world["shop_token"])
    data = page.json()
    assert [(row["kind"], row["points"]) for row in data["items"]] == [
        ("earn_reversal", 10),
        ("earn", 14),
        ("earn", 13),
        ("earn", 12),
    ]
    assert data["items"][0]["reversal_of"] == str(first.public_id)
    rest = client.get(
        f"{BASE}/partner/transactions?month=2026-03&limit=4&cursor={data['next_cursor']}",
        **world["shop_token"],
    )
    assert [(row["kind"], row["points"], row["reversed"]) for row in rest.json()["items"]] == [
        ("earn", 11, False),
        ("earn", 10, True),
    ]
    february = client.get(f"{BASE}/partner/transactions?month=2026-02", **world["shop_token"]).json()
    assert [row["points"] for row in february["items"]] == [3]
    _envelope(
        client.get(f"{BASE}/partner/transactions?month=March", **world["shop_token"]), 422, "invalid_period"
    )


def test_staff_partner_list_query_count(
    client: Client, world: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    staff = auth_header(user_with_roles("loyalty_manager"))
    for index in range(5):
        partner_with_user(world["programme"], code=f"extra-{index}")
    with django_assert_max_num_queries(8):
        response = client.get(f"{BASE}/partners", **staff)
    assert len(response.json()) == 7
    assert not PartnerSettlement.objects.exists()
