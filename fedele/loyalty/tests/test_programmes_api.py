"""API of programmes and tiers: CRUD, status, tiers, tier progress, manual tier; the error envelope."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.customers.facade import link_portal_user
from fedele.loyalty.models import Programme, Tier, TierChange
from fedele.loyalty.services.ledger import points_earn
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db
API = "/api/v1/loyalty"


def send(client: Client, method: str, url: str, data: Any, headers: dict[str, str]) -> Any:
    call = getattr(client, method)
    return call(url, data=json.dumps(data), content_type="application/json", **headers)


@pytest.fixture
def manager() -> dict[str, str]:
    return auth_header(user_with_roles("loyalty_manager"))


def assert_error(response: Any, status: int, code: str, fields: set[str] | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    if fields is not None:
        assert set(body["error"]["fields"]) == fields
    return dict(body["error"])


def test_programme_lifecycle(client: Client, manager: dict[str, str]) -> None:
    created = send(
        client,
        "post",
        f"{API}/programmes",
        {"code": "club", "name_it": "Club", "name_en": "Club", "point_value": "0.01", "pending_days": 14},
        manager,
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["code"], body["status"], body["point_value"], body["pending_days"]) == (
        "club",
        "draft",
        "0.010000",
        14,
    )
    assert body["tiers"] == []
    for tier in (
        {"code": "bronze", "name_it": "Bronzo", "name_en": "Bronze"},
        {
            "code": "silver",
            "name_it": "Argento",
            "name_en": "Silver",
            "threshold": "1000",
            "earn_multiplier": "1.25",
        },
    ):
        response = send(client, "post", f"{API}/programmes/club/tiers", tier, manager)
        assert response.status_code == 201, response.content
    assert response.json()["rank"] == 1
    assert response.json()["threshold"] == "1000.00"
    patched = send(
        client, "patch", f"{API}/programmes/club", {"expiry_months": 12, "name_en": "The Club"}, manager
    )
    assert patched.status_code == 200, patched.content
    assert (patched.json()["expiry_months"], patched.json()["name_en"]) == (12, "The Club")
    activated = send(client, "post", f"{API}/programmes/club/status", {"status": "active"}, manager)
    assert activated.json()["status"] == "active"
    fetched = client.get(f"{API}/programmes/club", **manager).json()
    assert [t["code"] for t in fetched["tiers"]] == ["bronze", "silver"]
    tier_patch = send(client, "patch", f"{API}/programmes/club/tiers/silver", {"threshold": "1500"}, manager)
    assert tier_patch.json()["threshold"] == "1500.00"
    listed = client.get(f"{API}/programmes/club/tiers", **manager).json()
    assert [(t["code"], t["rank"]) for t in listed] == [("bronze", 0), ("silver", 1)]
    deleted = client.delete(f"{API}/programmes/club/tiers/silver", **manager)
    assert deleted.status_code == 204
    assert list(Tier.objects.values_list("code", flat=True)) == ["bronze"]


def test_programme_bad_input_gives_the_envelope_and_writes_nothing(
    client: Client, manager: dict[str, str]
) -> None:
    bad = send(
        client,
        "post",
        f"{API}/programmes",
        {"code": "Bad Code", "name_it": "A", "name_en": "B", "point_value": "-1", "timezone": "Nowhere/City"},
        manager,
    )
    assert_error(bad, 422, "validation_error", {"code", "point_value", "timezone"})
    unknown = send(
        client, "post", f"{API}/programmes", {"code": "x", "name_it": "A", "name_en": "B", "foo": 1}, manager
    )
    assert_error(unknown, 422, "validation_error", {"foo"})
    assert Programme.objects.count() == 0
    assert AuditLog.objects.filter(action__startswith="loyalty.").count() == 0
    missing = client.get(f"{API}/programmes/nope", **manager)
    assert_error(missing, 404, "programme_not_found")


def test_tier_errors(client: Client, manager: dict[str, str]) -> None:
    programme = ProgrammeFactory(code="club")
    standard_tiers(programme)
    flat = send(
        client,
        "post",
        f"{API}/programmes/club/tiers",
        {"code": "plat", "name_it": "P", "name_en": "P", "threshold": "5000"},
        manager,
    )
    assert_error(flat, 422, "validation_error", {"threshold"})
    duplicate = send(
        client,
        "post",
        f"{API}/programmes/club/tiers",
        {"code": "gold", "name_it": "P", "name_en": "P", "threshold": "9000"},
        manager,
    )
    assert_error(duplicate, 422, "duplicate_code", {"code"})
    negative = send(client, "patch", f"{API}/programmes/club/tiers/gold", {"earn_multiplier": "-2"}, manager)
    assert_error(negative, 422, "validation_error", {"earn_multiplier"})
    MemberFactory(programme=programme, tier=Tier.objects.get(code="gold"))
    in_use = client.delete(f"{API}/programmes/club/tiers/gold", **manager)
    assert_error(in_use, 409, "tier_in_use")
    assert_error(client.delete(f"{API}/programmes/club/tiers/nope", **manager), 404, "tier_not_found")
    assert Tier.objects.filter(programme=programme).count() == 3
    closed = send(client, "post", f"{API}/programmes/club/status", {"status": "draft"}, manager)
    assert_error(closed, 409, "invalid_status_transition")


def test_permissions_and_scopes(client: Client) -> None:
    ProgrammeFactory(code="club")
    agent = auth_header(user_with_roles("agent"))
    assert client.get(f"{API}/programmes", **agent).status_code == 200
    denied = send(client, "patch", f"{API}/programmes/club", {"name_en": "X"}, agent)
    assert_error(denied, 403, "permission_denied")
    read_only = auth_header(user_with_roles("loyalty_manager"), scopes=("read",))
    assert_error(
        send(client, "patch", f"{API}/programmes/club", {"name_en": "X"}, read_only),
        403,
        "insufficient_scope",
    )
    portal = auth_header(user_with_roles("portal_customer"))
    assert_error(client.get(f"{API}/programmes", **portal), 403, "permission_denied")
    assert client.get(f"{API}/programmes").status_code == 401
    assert Programme.objects.get().name_en != "X"


def test_programme_list_query_count_does_not_grow(client: Client, manager: dict[str, str]) -> None:
    standard_tiers(ProgrammeFactory())
    client.get(f"{API}/programmes", **manager)
    with CaptureQueriesContext(connection) as one:
        assert len(client.get(f"{API}/programmes", **manager).json()) == 1
    for _ in range(3):
        standard_tiers(ProgrammeFactory())
    with CaptureQueriesContext(connection) as four:
        assert len(client.get(f"{API}/programmes", **manager).json()) == 4
    assert len(four) == len(one)


def test_tier_progress_and_manual_tier(client: Client, manager: dict[str, str]) -> None:
    programme = ProgrammeFactory(code="club")
    tiers = {t.code: t for t in standard_tiers(programme)}
    member = MemberFactory(programme=programme, tier=tiers["bronze"])
    with time_machine.travel(datetime(2026, 3, 1, 10, tzinfo=ZoneInfo("Europe/Rome")), tick=False):
        points_earn(actor=None, member=member, points=250, source="test", idempotency_key=None)
        progress = client.get(f"{API}/members/{member.public_id}/tier-progress", **manager)
    assert progress.status_code == 200, progress.content
    body = progress.json()
    assert body["tier"]["code"] == "bronze" and body["next_tier"]["code"] == "silver"
    assert (body["value"], body["next_threshold"], body["remaining"], body["percent"]) == (
        "250",
        "1000",
        "750",
        25,
    )
    with time_machine.travel(datetime(2026, 3, 2, 10, tzinfo=ZoneInfo("Europe/Rome")), tick=False):
        changed = send(
            client,
            "post",
            f"{API}/members/{member.public_id}/tier",
            {"tier": "gold", "reason": "Status match"},
            manager,
        )
    assert changed.status_code == 200, changed.content
    assert changed.json()["tier"]["code"] == "gold"
    assert changed.json()["tier_review_on"] == "2027-03-03"
    unknown = send(
        client, "post", f"{API}/members/{member.public_id}/tier", {"tier": "diamond", "reason": "x"}, manager
    )
    assert_error(unknown, 422, "validation_error", {"tier"})
    no_reason = send(
        client, "post", f"{API}/members/{member.public_id}/tier", {"tier": "silver", "reason": ""}, manager
    )
    assert_error(no_reason, 422, "validation_error", {"reason"})
    assert_error(
        client.get(f"{API}/members/{uuid.uuid4()}/tier-progress", **manager), 404, "member_not_found"
    )
    assert_error(client.get(f"{API}/members/not-a-uuid/tier-progress", **manager), 422, "validation_error")
    assert TierChange.objects.filter(member=member).count() == 1


def test_portal_customer_sees_only_their_own_progress(client: Client) -> None:
    programme = ProgrammeFactory(code="club")
    tiers = {t.code: t for t in standard_tiers(programme)}
    mine = MemberFactory(programme=programme, tier=tiers["bronze"])
    theirs = MemberFactory(programme=programme, tier=tiers["gold"])
    user = user_with_roles("portal_customer", email="socia@example.it")
    link_portal_user(
        customer_public_id=str(mine.customer.public_id),
        user_id=user.pk,
        email="socia@example.it",
        first_name="Sofia",
        last_name="Rossi",
        language="it",
    )
    header = auth_header(user)
    assert client.get(f"{API}/members/{mine.public_id}/tier-progress", **header).status_code == 200
    assert_error(
        client.get(f"{API}/members/{theirs.public_id}/tier-progress", **header), 404, "member_not_found"
    )
    denied = send(
        client, "post", f"{API}/members/{mine.public_id}/tier", {"tier": "gold", "reason": "please"}, header
    )
    assert_error(denied, 403, "permission_denied")
    mine.refresh_from_db()
    assert mine.tier_id == tiers["bronze"].pk
