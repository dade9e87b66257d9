"""Member search goes through the customers facade (search_customer_ids): the same rows for a name, an
e-mail address, a customer number and a card number in the selector, the API (?q=) and the staff page,
and no join on the customers table in the filter."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.loyalty.models import Member
from fedele.loyalty.selectors.members import member_queryset
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.shared.errors import NotFound

pytestmark = pytest.mark.django_db
API = "/api/v1/loyalty"


@pytest.fixture
def members() -> dict[str, Member]:
    club = ProgrammeFactory(code="club")
    other = ProgrammeFactory(code="other")
    standard_tiers(club)
    standard_tiers(other)
    anna = CustomerFactory(
        number="C-2026-000501", first_name="Anna", last_name="Rossi", email="anna@example.it"
    )
    joanna = CustomerFactory(
        number="C-2026-000502", first_name="Joanna", last_name="Verdi", email="joanna@example.it"
    )
    marco = CustomerFactory(number="C-2026-000503", first_name="Marco", last_name="Rossi", email="marco@x.it")
    CustomerFactory(number="C-2026-000504", first_name="Anna", last_name="Rossi2", email="nomember@x.it")
    rows = [
        ("anna", club, anna, "9100000000000001"),
        ("joanna", club, joanna, "9100000000000002"),
        ("marco", club, marco, "9200000000000003"),
        ("marco_other", other, marco, "9200000000000004"),
    ]
    found: dict[str, Member] = {}
    for key, programme, customer, card in rows:
        found[key] = MemberFactory(programme=programme, customer=customer, card_number=card)  # type: ignore[assignment]
    return found


def _cards(rows: Any) -> list[str]:
    return sorted(member.card_number for member in rows)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rossi", ["9100000000000001", "9200000000000003", "9200000000000004"]),
        ("anna", ["9100000000000001", "9100000000000002"]),
        ("ROSSI anna", ["9100000000000001"]),
        ("anna@example.it", ["9100000000000001"]),
        ("Anna@Example.IT", ["9100000000000001"]),
        ("C-2026-000503", ["9200000000000003", "9200000000000004"]),
        ("9100 0000", ["9100000000000001", "9100000000000002"]),
        ("nobody", []),
    ],
)
def test_selector_finds_the_same_members(members: dict[str, Member], query: str, expected: list[str]) -> None:
    actor = actor_for(user_with_roles("agent"))
    assert _cards(member_queryset(actor, query=query)) == expected


def test_programme_filter_and_referral_code(members: dict[str, Member]) -> None:
    actor = actor_for(user_with_roles("agent"))
    club = members["anna"].programme
    assert _cards(member_queryset(actor, programme=club, query="rossi")) == [
        "9100000000000001",
        "9200000000000003",
    ]
    code = members["joanna"].referral_code
    assert _cards(member_queryset(actor, query=code.lower())) == ["9100000000000002"]
    with pytest.raises(NotFound):
        member_queryset(actor_for(user_with_roles("portal_customer")), query="rossi")


def test_the_member_filter_does_not_join_the_customers_table(members: dict[str, Member]) -> None:
    actor = actor_for(user_with_roles("agent"))
    with CaptureQueriesContext(connection) as queries:
        found = list(member_queryset(actor, query="rossi").values_list("card_number", flat=True))
    assert sorted(found) == ["9100000000000001", "9200000000000003", "9200000000000004"]
    assert len(queries) == 2
    customers_lookup, members_filter = (query["sql"] for query in queries)
    assert "customers_customer" in customers_lookup and "loyalty" not in customers_lookup
    assert "customers_customer" not in members_filter


def test_api_search_by_name_email_and_number(client: Client, members: dict[str, Member]) -> None:
    agent = auth_header(user_with_roles("agent"))

    def ids(query: str) -> list[str]:
        response = client.get(f"{API}/members", {"q": query, "programme": "club"}, **agent)
        assert response.status_code == 200, response.content
        return sorted(row["id"] for row in response.json()["items"])

    assert ids("rossi") == sorted([str(members["anna"].public_id), str(members["marco"].public_id)])
    assert ids("anna@example.it") == [str(members["anna"].public_id)]
    assert ids("c-2026-000502") == [str(members["joanna"].public_id)]
    assert ids("zzz") == []


def test_staff_page_search(members: dict[str, Member]) -> None:
    client = Client()
    client.force_login(user_with_roles("agent"))
    body = client.get("/loyalty/members/", {"q": "C-2026-000501"}, HTTP_HX_REQUEST="true").content.decode()
    assert body.count("data-member=") == 1 and "9100000000000001" in body
    body = client.get(
        "/loyalty/members/", {"q": "joanna@example.it"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert body.count("data-member=") == 1 and "9100000000000002" in body
