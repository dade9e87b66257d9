"""Fraud API: the review queue, one flag with the member's transactions, manual flags, clear and
confirm; permissions, scopes and the error envelope; a list with a fixed number of queries."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.loyalty.models import FraudFlag, Member, PointsTransaction, Programme
from fedele.loyalty.tests.evaluation_support import earn, member_at, utc
from fedele.loyalty.tests.factories import ProgrammeFactory
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db
FLAGS = "/api/v1/loyalty/fraud/flags"


def _flooded(programme: Programme) -> tuple[Member, list[PointsTransaction]]:
    member = member_at(programme, utc(2026, 3, 1))
    flood = [earn(member, 100, utc(2026, 3, 10, 10, minute)) for minute in range(3)]
    return member, flood


@pytest.fixture
def programme() -> Programme:
    created: Programme = ProgrammeFactory(code="club-fraud", velocity_max_earns_per_hour=2)
    return created


@pytest.fixture
def reviewer() -> dict[str, str]:
    return auth_header(user_with_roles("supervisor", email="boss@example.it"))


def test_queue_lists_open_flags_with_a_fixed_number_of_queries(
    client: Client, programme: Programme, reviewer: dict[str, str]
) -> None:
    members = [_flooded(programme)[0] for _ in range(3)]
    response = client.get(FLAGS, **reviewer)
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["card_number"] for item in items] == [m.card_number for m in reversed(members)]
    assert items[0]["rule"] == "velocity_count"
    assert items[0]["details"] == {"earns_in_hour": 3, "limit": 2}
    assert items[0]["transaction"]["points"] == 100 and items[0]["transaction"]["reversed"] is False
    with CaptureQueriesContext(connection) as few:
        client.get(FLAGS, **reviewer)
    for _ in range(3):
        _flooded(programme)
    with CaptureQueriesContext(connection) as more:
        assert len(client.get(FLAGS, **reviewer).json()["items"]) == 6
    assert len(more.captured_queries) == len(few.captured_queries)
    filtered = client.get(FLAGS, {"rule": "manual"}, **reviewer).json()
    assert filtered["items"] == []
    page = client.get(FLAGS, {"limit": 4}, **reviewer).json()
    assert len(page["items"]) == 4 and page["next_cursor"]
    rest = client.get(FLAGS, {"limit": 4, "cursor": page["next_cursor"]}, **reviewer).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None


def test_detail_confirm_and_clear(client: Client, programme: Programme, reviewer: dict[str, str]) -> None:
    member, flood = _flooded(programme)
    flag = FraudFlag.objects.get(member=member)
    detail = client.get(f"{FLAGS}/{flag.public_id}", **reviewer).json()
    assert (detail["member_flagged"], detail["member_status"]) == (True, "active")
    assert [row["id"] for row in detail["recent_transactions"]] == [
        str(row.public_id) for row in reversed(flood)
    ]
    confirmed = client.post(
        f"{FLAGS}/{flag.public_id}/confirm",
        {"note": "stolen card", "reverse_transaction_ids": [str(flood[2].public_id)], "suspend": True},
        content_type="application/json",
        **reviewer,
    )
    assert confirmed.status_code == 200, confirmed.content
    body = confirmed.json()
    assert (body["state"], body["member_flagged"], body["member_status"]) == ("confirmed", False, "suspended")
    assert body["transaction"]["reversed"] is True
    assert [row["kind"] for row in body["recent_transactions"]][:1] == ["reverse"]
    member.refresh_from_db()
    assert member.available == 200
    assert AuditLog.objects.filter(action="loyalty.fraud_flag_confirmed").count() == 1
    again = client.post(
        f"{FLAGS}/{flag.public_id}/clear", {"note": "x"}, content_type="application/json", **reviewer
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "flag_already_reviewed")

    other, _flood = _flooded(programme)
    other_flag = FraudFlag.objects.get(member=other)
    cleared = client.post(
        f"{FLAGS}/{other_flag.public_id}/clear", {"note": "ok"}, content_type="application/json", **reviewer
    )
    assert cleared.status_code == 200
    assert cleared.json()["state"] == "cleared"
    other.refresh_from_db()
    assert (other.available, other.flagged) == (300, False)


def test_manual_flag_by_an_agent_and_errors(
    client: Client, programme: Programme, reviewer: dict[str, str]
) -> None:
    member = member_at(programme, utc(2026, 3, 1))
    agent = auth_header(user_with_roles("agent"))
    created = client.post(
        FLAGS,
        {"member_id": str(member.public_id), "note": "asked for 3 cards"},
        content_type="application/json",
        **agent,
    )
    assert created.status_code == 201, created.content
    assert (created.json()["rule"], created.json()["recent_transactions"]) == ("manual", [])
    twice = client.post(
        FLAGS, {"member_id": str(member.public_id), "note": "again"}, content_type="application/json", **agent
    )
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "already_flagged")
    unknown = client.post(
        FLAGS, {"member_id": str(uuid.uuid4()), "note": "x"}, content_type="application/json", **agent
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "member_not_found")
    extra = client.post(
        FLAGS,
        {"member_id": str(member.public_id), "note": "x", "evil": 1},
        content_type="application/json",
        **agent,
    )
    assert extra.status_code == 422
    assert extra.json()["error"]["fields"] == {"evil": ["Unknown field."]}
    # The agent may flag but not review.
    assert client.get(FLAGS, **agent).status_code == 403
    flag = FraudFlag.objects.get(member=member)
    refused = client.post(
        f"{FLAGS}/{flag.public_id}/clear", {"note": "x"}, content_type="application/json", **agent
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "permission_denied")
    read_only = auth_header(user_with_roles("supervisor"), scopes=("read",))
    no_scope = client.post(
        f"{FLAGS}/{flag.public_id}/clear", {"note": "x"}, content_type="application/json", **read_only
    )
    assert (no_scope.status_code, no_scope.json()["error"]["code"]) == (403, "insufficient_scope")
    foreign = earn(member_at(programme, utc(2026, 3, 1)), 10, utc(2026, 3, 2))
    bad = client.post(
        f"{FLAGS}/{flag.public_id}/confirm",
        {"note": "x", "reverse_transaction_ids": [str(foreign.public_id)]},
        content_type="application/json",
        **reviewer,
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "unknown_transaction"
    assert list(bad.json()["error"]["fields"]) == ["reverse_transaction_ids"]
    # Flags are addressed by public id only: an unknown one is 404, an integer key is not an id at all.
    missing = client.get(f"{FLAGS}/{uuid.uuid4()}", **reviewer)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "flag_not_found")
    assert client.get(f"{FLAGS}/{flag.pk}", **reviewer).status_code == 422
    assert FraudFlag.objects.get(pk=flag.pk).state == "open"


def test_flags_are_identified_by_public_id_in_payloads_and_schema(
    client: Client, programme: Programme, reviewer: dict[str, str]
) -> None:
    member, _flood = _flooded(programme)
    flag = FraudFlag.objects.get(member=member)
    listed = client.get(FLAGS, **reviewer).json()["items"]
    assert [item["id"] for item in listed] == [str(flag.public_id)]
    detail = client.get(f"{FLAGS}/{flag.public_id}", **reviewer).json()
    assert detail["id"] == str(flag.public_id)
    cleared = client.post(
        f"{FLAGS}/{flag.public_id}/clear", {"note": "genuine"}, content_type="application/json", **reviewer
    )
    assert (cleared.status_code, cleared.json()["id"], cleared.json()["state"]) == (
        200,
        str(flag.public_id),
        "cleared",
    )
    schema = client.get("/api/v1/openapi.json").json()
    flag_out = schema["components"]["schemas"]["FlagOut"]["properties"]["id"]
    assert (flag_out["type"], flag_out["format"]) == ("string", "uuid")
    parameters = schema["paths"]["/api/v1/loyalty/fraud/flags/{flag_id}"]["get"]["parameters"]
    assert [(p["name"], p["in"], p["schema"]["format"]) for p in parameters] == [("flag_id", "path", "uuid")]
