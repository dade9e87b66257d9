"""Members API: enrol, list/search, balances, history, lots, postings, reservations, transfers,
reversals, refunds, liability; scopes, 404 for what the caller may not see, the error envelope and
nothing written on bad input."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.customers.tests.factories import ContactFactory, CustomerFactory
from fedele.loyalty.models import Member, PointsEntry, PointsTransaction, Reservation
from fedele.loyalty.services.ledger import ledger_check, points_earn
from fedele.loyalty.services.members import household_add, household_create
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers

pytestmark = pytest.mark.django_db
API = "/api/v1/loyalty"


def post(client: Client, url: str, data: Any, headers: dict[str, str], key: str | None = None) -> Any:
    extra = dict(headers)
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(url, data=json.dumps(data), content_type="application/json", **extra)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code, body
    return dict(body["error"])


def counts() -> tuple[int, int, int]:
    return PointsTransaction.objects.count(), PointsEntry.objects.count(), Reservation.objects.count()


@pytest.fixture
def agent() -> dict[str, str]:
    return auth_header(user_with_roles("agent"))


@pytest.fixture
def programme():
    programme = ProgrammeFactory(code="club")
    standard_tiers(programme)
    return programme


@pytest.fixture
def member(programme):
    member = MemberFactory(programme=programme)
    points_earn(actor=None, member=member, points=1000, source="t", idempotency_key="seed")
    return member


def test_enrol_then_read_the_member(client: Client, agent, programme) -> None:
    customer = CustomerFactory()
    response = post(
        client, f"{API}/members", {"programme": "club", "customer_id": str(customer.public_id)}, agent
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["programme"], body["status"], body["tier"]["code"], body["available"]) == (
        "club",
        "active",
        "bronze",
        0,
    )
    assert len(body["card_number"]) == 16
    again = post(
        client, f"{API}/members", {"programme": "club", "customer_id": str(customer.public_id)}, agent
    )
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    detail = client.get(f"{API}/members/{body['id']}", **agent)
    assert detail.status_code == 200 and detail.json()["card_number"] == body["card_number"]


def test_enrol_unknown_customer_and_unknown_field(client: Client, agent, programme) -> None:
    assert_error(
        post(client, f"{API}/members", {"programme": "club", "customer_id": str(uuid.uuid4())}, agent),
        404,
        "customer_not_found",
    )
    error = assert_error(
        post(
            client, f"{API}/members", {"programme": "club", "customer_id": str(uuid.uuid4()), "x": 1}, agent
        ),
        422,
        "validation_error",
    )
    assert "x" in error["fields"]
    assert Member.objects.count() == 0


def test_list_and_search_with_a_bounded_number_of_queries(client: Client, agent, programme) -> None:
    rossi = MemberFactory(
        programme=programme,
        customer=CustomerFactory(
            first_name="Anna", last_name="Rossi", display_name="Anna Rossi", email="anna@example.it"
        ),
    )
    for _ in range(5):
        MemberFactory(programme=programme)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(f"{API}/members?programme=club&limit=3", **agent)
    assert page.status_code == 200
    assert len(page.json()["items"]) == 3 and page.json()["next_cursor"]
    assert len(queries) <= 12
    card = str(rossi.card_number)
    by_card = client.get(f"{API}/members?q={card[:4]}%20{card[4:]}", **agent).json()["items"]
    assert [row["id"] for row in by_card] == [str(rossi.public_id)]
    by_name = client.get(f"{API}/members?q=anna%20ros", **agent).json()["items"]
    assert [row["id"] for row in by_name] == [str(rossi.public_id)]
    by_mail = client.get(f"{API}/members?q=ANNA@example.it", **agent).json()["items"]
    assert [row["id"] for row in by_mail] == [str(rossi.public_id)]
    assert_error(client.get(f"{API}/members?programme=nope", **agent), 404, "programme_not_found")


def test_earn_requires_the_idempotency_key_and_replays_it(client: Client, agent, member) -> None:
    url = f"{API}/members/{member.public_id}/earn"
    before = counts()
    assert_error(post(client, url, {"points": 10}, agent), 422, "idempotency_key_required")
    assert counts() == before
    first = post(client, url, {"points": 10, "reference": "INV-1", "amount_eur": "9.99"}, agent, key="k1")
    assert first.status_code == 201, first.content
    body = first.json()
    assert (body["kind"], body["points"], body["reference"], body["amount_eur"]) == (
        "earn",
        10,
        "INV-1",
        "9.99",
    )
    again = post(client, url, {"points": 10, "reference": "INV-1", "amount_eur": "9.99"}, agent, key="k1")
    assert again.json()["id"] == body["id"]
    member.refresh_from_db()
    assert member.available == 1010


@pytest.mark.parametrize(
    ("points", "status", "code"),
    [(0, 422, "invalid_points"), (-1, 422, "invalid_points"), (10**12, 422, "points_too_large")],
)
def test_bad_points_change_nothing(client: Client, agent, member, points, status, code) -> None:
    before = counts()
    for action in ("earn", "redeem"):
        response = post(
            client,
            f"{API}/members/{member.public_id}/{action}",
            {"points": points},
            agent,
            key=f"{action}-bad",
        )
        assert_error(response, status, code)
    assert counts() == before


def test_unknown_member_is_404_and_writes_nothing(client: Client, agent, member) -> None:
    before = counts()
    assert_error(
        post(client, f"{API}/members/{uuid.uuid4()}/earn", {"points": 5}, agent, key="x"),
        404,
        "member_not_found",
    )
    assert_error(client.get(f"{API}/members/{uuid.uuid4()}", **agent), 404, "member_not_found")
    assert_error(client.get(f"{API}/members/not-a-uuid", **agent), 422, "validation_error")
    assert counts() == before


def test_redeem_insufficient_balance_and_closed_member(client: Client, agent, member) -> None:
    url = f"{API}/members/{member.public_id}/redeem"
    before = counts()
    assert_error(post(client, url, {"points": 1001}, agent, key="r1"), 422, "insufficient_balance")
    member.status = "closed"
    member.save()
    assert_error(post(client, url, {"points": 1}, agent, key="r2"), 422, "member_not_active")
    assert counts() == before


def test_redeem_history_and_lots(client: Client, agent, member) -> None:
    redeem = post(
        client,
        f"{API}/members/{member.public_id}/redeem",
        {"points": 300, "cash_amount": "1.50"},
        agent,
        key="r",
    )
    assert redeem.status_code == 201
    history = client.get(f"{API}/members/{member.public_id}/transactions", **agent).json()
    assert [(row["kind"], row["points"]) for row in history["items"]] == [
        ("redeem", -300),
        ("reserve", 0),
        ("earn", 1000),
    ]
    assert history["items"][0]["reversible"] is True
    lots = client.get(f"{API}/members/{member.public_id}/lots", **agent).json()
    assert [(lot["points"], lot["remaining"], lot["state"]) for lot in lots] == [(1000, 700, "available")]
    page = client.get(f"{API}/members/{member.public_id}/transactions?limit=2", **agent).json()
    nxt = client.get(
        f"{API}/members/{member.public_id}/transactions?limit=2&before={page['next_before']}", **agent
    ).json()
    assert [row["kind"] for row in nxt["items"]] == ["earn"]


def test_reservation_hold_confirm_and_cancel(client: Client, agent, member) -> None:
    held = post(client, f"{API}/members/{member.public_id}/reservations", {"points": 200}, agent, key="h1")
    assert held.status_code == 201 and held.json()["state"] == "held"
    confirm = client.post(f"{API}/reservations/{held.json()['id']}/confirm", **agent)
    assert confirm.status_code == 200 and confirm.json()["kind"] == "redeem"
    other = post(
        client, f"{API}/members/{member.public_id}/reservations", {"points": 100}, agent, key="h2"
    ).json()
    cancelled = post(client, f"{API}/reservations/{other['id']}/cancel", {"reason": "changed mind"}, agent)
    assert cancelled.json()["state"] == "cancelled"
    assert_error(
        client.post(f"{API}/reservations/{other['id']}/confirm", **agent), 409, "reservation_not_held"
    )
    member.refresh_from_db()
    assert (member.available, member.reserved) == (800, 0)
    assert_error(
        client.post(f"{API}/reservations/{uuid.uuid4()}/confirm", **agent), 404, "reservation_not_found"
    )


def test_adjust_reverse_and_permissions(client: Client, agent, member) -> None:
    viewer = auth_header(user_with_roles("billing_clerk"))
    url = f"{API}/members/{member.public_id}/adjust"
    assert_error(post(client, url, {"points": 5, "reason": "x"}, viewer, key="a0"), 403, "permission_denied")
    read_only = auth_header(user_with_roles("agent"), scopes=("read",))
    assert_error(
        post(client, url, {"points": 5, "reason": "x"}, read_only, key="a0"), 403, "insufficient_scope"
    )
    adjust = post(client, url, {"points": -100, "reason": "duplicate receipt"}, agent, key="a1")
    assert adjust.status_code == 201 and adjust.json()["details"]["direction"] == "debit"
    earn = PointsTransaction.objects.get(kind="earn")
    reverse = post(client, f"{API}/transactions/{earn.public_id}/reverse", {"reason": "fraud"}, agent)
    assert reverse.status_code == 201 and reverse.json()["reversal_of"] == str(earn.public_id)
    assert_error(
        post(client, f"{API}/transactions/{earn.public_id}/reverse", {"reason": "again"}, agent),
        409,
        "already_reversed",
    )
    member.refresh_from_db()
    assert (member.available, member.debt) == (0, 100)
    assert ledger_check() == []


def test_transfer_refund_and_liability(client: Client, agent, programme, member) -> None:
    other = MemberFactory(programme=programme)
    household = household_create(actor=None, owner=member, name="Rossi")
    household_add(actor=None, household=household, member=other)
    body = {"to_member": str(other.public_id), "points": 250}
    transfer = post(client, f"{API}/members/{member.public_id}/transfer", body, agent, key="t1")
    assert transfer.status_code == 201, transfer.content
    stranger = MemberFactory(programme=programme)
    assert_error(
        post(
            client,
            f"{API}/members/{member.public_id}/transfer",
            {"to_member": str(stranger.public_id), "points": 1},
            agent,
            key="t2",
        ),
        422,
        "not_same_household",
    )
    points_earn(
        actor=None,
        member=other,
        points=100,
        source="t",
        idempotency_key="o",
        reference="ORD-9",
        amount_eur=Decimal("100"),
    )
    refund = post(
        client,
        f"{API}/programmes/club/refunds",
        {"reference": "ORD-9", "refund_eur": "40.00"},
        agent,
        key="rf",
    )
    assert refund.status_code == 201, refund.content
    assert [(row["kind"], row["points"]) for row in refund.json()] == [("adjust", 40)]
    liability = client.get(f"{API}/programmes/club/liability", **agent).json()
    assert (liability["outstanding"], liability["outstanding_eur"], liability["issued"]) == (
        1060,
        "10.60",
        1060,
    )
    assert_error(
        post(client, f"{API}/programmes/club/refunds", {"reference": "NOPE"}, agent, key="rf2"),
        404,
        "unknown_reference",
    )


def test_portal_customer_sees_only_their_own_membership(client: Client, programme, member) -> None:
    user = user_with_roles("portal_customer")
    ContactFactory(customer=member.customer, portal_user=user)
    headers = auth_header(user)
    assert client.get(f"{API}/members/{member.public_id}", **headers).status_code == 200
    other = MemberFactory(programme=programme)
    assert_error(client.get(f"{API}/members/{other.public_id}", **headers), 404, "member_not_found")
    assert_error(client.get(f"{API}/members", **headers), 404, "not_found")
    assert_error(
        post(client, f"{API}/members/{member.public_id}/earn", {"points": 5}, headers, key="p"),
        403,
        "permission_denied",
    )


def test_households_through_the_api(client: Client, agent, programme, member) -> None:
    other = MemberFactory(programme=programme)
    stranger = MemberFactory()  # another programme
    made = post(
        client, f"{API}/households", {"owner": str(member.public_id), "name": "Famiglia Rossi"}, agent
    )
    assert made.status_code == 201, made.content
    household = made.json()
    assert (household["name"], household["programme"], household["owner"]) == (
        "Famiglia Rossi",
        "club",
        str(member.public_id),
    )
    assert household["members"] == [str(member.public_id)]
    added = post(
        client, f"{API}/households/{household['id']}/members", {"member": str(other.public_id)}, agent
    )
    assert added.status_code == 200, added.content
    assert added.json()["members"] == [str(member.public_id), str(other.public_id)]
    refused = post(
        client, f"{API}/households/{household['id']}/members", {"member": str(stranger.public_id)}, agent
    )
    assert_error(refused, 422, "not_same_programme")
    assert Member.objects.get(pk=stranger.pk).household_id is None
    assert_error(client.get(f"{API}/households/{uuid.uuid4()}", **agent), 404, "household_not_found")
    left = client.delete(f"{API}/members/{other.public_id}/household", **agent)
    assert left.status_code == 200 and left.json()["household"] is None
    assert client.get(f"{API}/households/{household['id']}", **agent).json()["members"] == [
        str(member.public_id)
    ]
