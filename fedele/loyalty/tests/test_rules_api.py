"""API: rules and campaigns CRUD, the simulator (writes nothing) and POST /events (201 new, 200 replay),
with the error envelope, scopes and permissions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.loyalty.models import Campaign, EarningRule, PointsTransaction
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.loyalty.tests.rules_support import make_rule, row_counts

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 4, 20, 10, 0, tzinfo=UTC)
BASE = "/api/v1/loyalty"


@pytest.fixture(autouse=True)
def _frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _post(client: Client, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.post(f"{BASE}{path}", data=json.dumps(body), content_type="application/json", **headers)


def _patch(client: Client, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.patch(f"{BASE}{path}", data=json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def manager() -> dict[str, str]:
    return auth_header(user_with_roles("loyalty_manager"))


@pytest.fixture
def agent() -> dict[str, str]:
    return auth_header(user_with_roles("agent"))


def test_rule_crud_and_status(client: Client, manager: dict[str, str]) -> None:
    programme = ProgrammeFactory(code="club")
    response = _post(
        client,
        "/programmes/club/rules",
        {
            "code": "web-bonus",
            "name_en": "Web bonus",
            "event_type": "spend",
            "points_per_euro": "2",
            "conditions": [{"field": "channel", "op": "eq", "value": "web"}],
            "cap_per_member_per_day": 500,
        },
        manager,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["code"], body["status"], body["version"], body["points_per_euro"]) == (
        "web-bonus",
        "draft",
        1,
        "2",
    )
    assert body["conditions"] == [{"field": "channel", "op": "eq", "value": "web"}]
    assert body["pending"] is True and body["name_it"] == "Web bonus"
    rule_id = body["id"]
    changed = _patch(
        client, f"/rules/{rule_id}", {"fixed_points": 5, "cap_per_member_per_day": None}, manager
    )
    assert changed.status_code == 200
    assert (
        changed.json()["fixed_points"],
        changed.json()["cap_per_member_per_day"],
        changed.json()["version"],
    ) == (
        5,
        None,
        2,
    )
    active = _post(client, f"/rules/{rule_id}/status", {"status": "active"}, manager)
    assert active.json()["status"] == "active"
    listed = client.get(f"{BASE}/programmes/club/rules?status=active", **manager).json()
    assert [row["code"] for row in listed] == ["web-bonus"]
    assert client.get(f"{BASE}/rules/{rule_id}", **manager).json()["fixed_points"] == 5
    assert EarningRule.objects.get(programme=programme).version == 2


def test_rule_errors_use_the_envelope(client: Client, manager: dict[str, str], agent: dict[str, str]) -> None:
    ProgrammeFactory(code="club")
    bad = _post(
        client,
        "/programmes/club/rules",
        {
            "code": "x",
            "name_en": "X",
            "event_type": "spend",
            "conditions": [{"field": "weather", "op": "eq", "value": 1}],
        },
        manager,
    )
    assert bad.status_code == 422
    assert bad.json() == {
        "error": {
            "code": "invalid_rule",
            "message": "The earning rule is not valid.",
            "fields": {"conditions.0.field": ["Unknown field 'weather'."]},
        }
    }
    unknown_key = _post(
        client, "/programmes/club/rules", {"code": "x", "event_type": "spend", "colour": "red"}, manager
    )
    assert unknown_key.status_code == 422 and unknown_key.json()["error"]["fields"] == {
        "colour": ["Unknown field."]
    }
    missing = _post(
        client, "/programmes/nope/rules", {"code": "x", "name_en": "X", "event_type": "spend"}, manager
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "programme_not_found"
    forbidden = _post(
        client, "/programmes/club/rules", {"code": "x", "name_en": "X", "event_type": "spend"}, agent
    )
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "permission_denied"
    read_only = auth_header(user_with_roles("loyalty_manager"), scopes=("read",))
    scoped = _post(
        client, "/programmes/club/rules", {"code": "x", "name_en": "X", "event_type": "spend"}, read_only
    )
    assert scoped.status_code == 403 and scoped.json()["error"]["code"] == "insufficient_scope"
    ghost = client.get(f"{BASE}/rules/00000000-0000-0000-0000-000000000000", **manager)
    assert ghost.status_code == 404 and ghost.json()["error"]["code"] == "rule_not_found"
    assert EarningRule.objects.count() == 0


def test_campaign_crud(client: Client, manager: dict[str, str]) -> None:
    ProgrammeFactory(code="club")
    created = _post(
        client,
        "/programmes/club/campaigns",
        {
            "code": "summer",
            "name_en": "Summer",
            "name_it": "Estate",
            "starts_at": "2026-06-01T00:00:00+02:00",
            "ends_at": "2026-07-01T00:00:00+02:00",
            "holdout_percent": 20,
            "budget_points": 100000,
        },
        manager,
    )
    assert created.status_code == 201, created.content
    campaign_id = created.json()["id"]
    assert Campaign.objects.get().starts_at == datetime(2026, 5, 31, 22, 0, tzinfo=UTC)
    assert (
        client.get(f"{BASE}/campaigns/{campaign_id}", **manager).json()["starts_at"] == "2026-05-31T22:00:00Z"
    )
    inverted = _patch(client, f"/campaigns/{campaign_id}", {"ends_at": "2026-05-01T00:00:00Z"}, manager)
    assert inverted.status_code == 422
    assert inverted.json()["error"]["fields"] == {"ends_at": ["The campaign must end after it starts."]}
    assert (
        _post(client, f"/campaigns/{campaign_id}/status", {"status": "active"}, manager).json()["status"]
        == "active"
    )
    locked = _patch(client, f"/campaigns/{campaign_id}", {"holdout_percent": 30}, manager)
    assert locked.status_code == 422 and locked.json()["error"]["code"] == "holdout_locked"
    renamed = _patch(client, f"/campaigns/{campaign_id}", {"name_en": "Summer 2026"}, manager)
    assert renamed.json()["name_en"] == "Summer 2026"
    assert [row["code"] for row in client.get(f"{BASE}/programmes/club/campaigns", **manager).json()] == [
        "summer"
    ]
    assert Campaign.objects.get().holdout_percent == 20


def test_simulator_quotes_and_writes_nothing(client: Client, manager: dict[str, str]) -> None:
    programme = ProgrammeFactory(code="club", rounding="half_up")
    gold = standard_tiers(programme)[2]
    make_rule(programme, code="base", cap_per_member_per_day=100)
    draft = make_rule(programme, code="draft-bonus", status="draft", points_per_euro="0", multiplier="2")
    member = MemberFactory(programme=programme, tier=gold)
    before = row_counts()
    response = _post(
        client,
        "/programmes/club/simulate",
        {"member": member.card_number, "event_type": "spend", "amount_eur": "123.45"},
        manager,
    )
    assert response.status_code == 200, response.content
    body = response.json()
    # 123.45 → 123 (half up) × 1.5 = 184.5 → 185, trimmed to the daily cap of 100.
    assert (body["points"], body["tier_multiplier"], body["day"]) == (100, "1.50", "2026-04-20")
    assert [
        (line["rule"], line["uncapped_points"], line["points"], line["capped_by"]) for line in body["lines"]
    ] == [("base", 185, 100, "per_member_per_day")]
    with_draft = _post(
        client,
        "/programmes/club/simulate",
        {"event_type": "spend", "amount_eur": "10", "include_drafts": True},
        manager,
    ).json()
    assert [(line["rule"], line["points"]) for line in with_draft["lines"]] == [
        ("base", 10),
        ("draft-bonus", 10),
    ]
    only = _post(
        client,
        "/programmes/club/simulate",
        {"event_type": "spend", "amount_eur": "10", "rules": [str(draft.public_id)], "include_drafts": True},
        manager,
    ).json()
    assert (only["points"], only["reasons"]) == (0, ["draft-bonus:zero_points"])
    unknown = _post(client, "/programmes/club/simulate", {"member": "404", "event_type": "spend"}, manager)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "member_not_found"
    assert row_counts() == before


def test_events_endpoint_new_replay_and_errors(client: Client, agent: dict[str, str]) -> None:
    programme = ProgrammeFactory(code="club")
    make_rule(programme, code="base")
    member = MemberFactory(programme=programme)
    body = {
        "programme": "club",
        "member": member.card_number,
        "event_type": "spend",
        "external_id": "POS-1-0001",
        "amount_eur": "49.90",
        "channel": "store",
        "product_categories": ["shoes"],
        "attributes": {"store": "MI-01"},
    }
    first = _post(client, "/events", body, agent)
    assert first.status_code == 201, first.content
    data = first.json()
    txn = PointsTransaction.objects.get()
    assert (data["points"], data["transaction_id"], data["member_id"], data["source"]) == (
        49,
        str(txn.public_id),
        str(member.public_id),
        "api",
    )
    assert data["lines"][0]["rule"] == "base" and data["attributes"] == {"store": "MI-01"}
    before = row_counts()
    again = _post(client, "/events", {**body, "member": str(member.public_id)}, agent)
    assert again.status_code == 200 and again.json()["id"] == data["id"] and again.json()["points"] == 49
    assert row_counts() == before
    other = MemberFactory(programme=programme)
    reused = _post(client, "/events", {**body, "member": other.card_number}, agent)
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "external_id_reused"
    negative = _post(client, "/events", {**body, "external_id": "2", "amount_eur": "-1"}, agent)
    assert negative.status_code == 422 and "amount_eur" in negative.json()["error"]["fields"]
    no_amount = _post(client, "/events", {**body, "external_id": "3", "amount_eur": None}, agent)
    assert no_amount.status_code == 422 and no_amount.json()["error"]["code"] == "amount_required"
    ghost = _post(client, "/events", {**body, "external_id": "4", "member": "0000"}, agent)
    assert ghost.status_code == 404 and ghost.json()["error"] == {
        "code": "member_not_found",
        "message": "Member not found.",
        "fields": {},
    }
    nested = _post(client, "/events", {**body, "external_id": "5", "attributes": {"a": {"b": 1}}}, agent)
    assert nested.status_code == 422 and nested.json()["error"]["code"] == "validation_error"
    assert row_counts() == before
    analyst = auth_header(user_with_roles("analyst"))
    assert _post(client, "/events", {**body, "external_id": "6"}, analyst).status_code == 403
    listed = client.get(f"{BASE}/events?programme=club&member={member.card_number}", **agent).json()
    assert [row["external_id"] for row in listed] == ["POS-1-0001"]
    assert client.get(f"{BASE}/events/{data['id']}", **agent).json()["points"] == 49


def test_events_endpoint_query_budget(
    client: Client, agent: dict[str, str], django_assert_max_num_queries: Any
) -> None:
    programme = ProgrammeFactory(code="club")
    make_rule(programme, code="base")
    member = MemberFactory(programme=programme)
    body = {
        "programme": "club",
        "member": member.card_number,
        "event_type": "spend",
        "external_id": "a",
        "amount_eur": "5",
    }
    _post(client, "/events", body, agent)  # warms the token's caches
    with django_assert_max_num_queries(32):
        assert _post(client, "/events", {**body, "external_id": "b"}, agent).status_code == 201
    with django_assert_max_num_queries(12):
        assert _post(client, "/events", {**body, "external_id": "b"}, agent).status_code == 200
