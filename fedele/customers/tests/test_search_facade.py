"""customers.facade.search_customer_ids: the customers module's own search (``search_text``, e-mail
exactly) for other modules that filter their rows by customer key."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fedele.customers.facade import search_customer_ids
from fedele.customers.tests.factories import CompanyFactory, CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people() -> dict[str, int]:
    anna = CustomerFactory(
        number="C-2026-000101",
        first_name="Anna",
        last_name="Rossi",
        email="anna@example.it",
        phone="+393331112233",
    )
    annalisa = CustomerFactory(
        number="C-2026-000102", first_name="Annalisa", last_name="Bianchi", email="joanna@example.it"
    )
    marco = CustomerFactory(
        number="C-2026-000103", first_name="Marco", last_name="Rossi", email="marco@example.it"
    )
    acme = CompanyFactory(
        number="C-2026-000104", company_name="Rossi Forniture S.r.l.", email="acme@example.it"
    )
    return {"anna": anna.pk, "annalisa": annalisa.pk, "marco": marco.pk, "acme": acme.pk}


def test_name_words_are_all_required_in_any_order_and_case(people: dict[str, int]) -> None:
    assert search_customer_ids("rossi", 10) == [people["anna"], people["marco"], people["acme"]]
    assert search_customer_ids("ANNA", 10) == [people["anna"], people["annalisa"]]
    assert search_customer_ids("anna ros", 10) == [people["anna"]]
    assert search_customer_ids("Rossi  Anna", 10) == [people["anna"]]
    assert search_customer_ids("forniture", 10) == [people["acme"]]
    assert search_customer_ids("anna verdi", 10) == []


def test_customer_number_and_phone(people: dict[str, int]) -> None:
    assert search_customer_ids("C-2026-000103", 10) == [people["marco"]]
    assert search_customer_ids("+393331112233", 10) == [people["anna"]]
    assert search_customer_ids("c-2026-00010", 10) == [
        people["anna"],
        people["annalisa"],
        people["marco"],
        people["acme"],
    ]


def test_an_email_address_matches_exactly_in_any_case(people: dict[str, int]) -> None:
    assert search_customer_ids("ANNA@example.it", 10) == [people["anna"]]
    # "joanna@example.it" contains "anna@example.it" but is another address.
    assert search_customer_ids("anna@example.it", 10) == [people["anna"]]
    assert search_customer_ids("nobody@example.it", 10) == []


def test_limit_empty_query_and_a_single_statement(people: dict[str, int]) -> None:
    assert search_customer_ids("rossi", 2) == [people["anna"], people["marco"]]
    assert search_customer_ids("rossi", 0) == []
    with CaptureQueriesContext(connection) as queries:
        assert search_customer_ids("   ", 10) == []
    assert len(queries) == 0
    with CaptureQueriesContext(connection) as queries:
        search_customer_ids("mario rossi", 10)
    assert len(queries) == 1
    assert "JOIN" not in queries[0]["sql"].upper()


def test_an_email_finds_the_active_customer_who_holds_it_words_find_any_status() -> None:
    merged = CustomerFactory(
        first_name="Vecchio", last_name="Doppione", email="same@example.it", status="merged"
    )
    active = CustomerFactory(first_name="Nuovo", last_name="Doppione", email="same@example.it")
    assert search_customer_ids("same@example.it", 10) == [active.pk]
    assert search_customer_ids("doppione", 10) == [merged.pk, active.pk]
