"""find_customers_by_emails answers, for every address, what find_customer_by_email answers."""

from __future__ import annotations

import pytest

from fedele.customers import facade
from fedele.customers.tests.factories import ContactFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def test_batch_lookup_matches_the_one_by_one_lookup(django_assert_max_num_queries) -> None:
    own = CustomerFactory(email="anna@example.it")
    CustomerFactory(email="anna@example.it", status="closed")  # a closed record with the same address
    company = CustomerFactory(email="ufficio@ditta.it")
    ContactFactory(customer=company, email="mario@ditta.it")
    closed = CustomerFactory(email="chiuso@example.it", status="closed")
    ContactFactory(customer=closed, email="ex@example.it")
    ContactFactory(customer=own, email="ufficio@ditta.it")  # the customer's own address wins
    asked = [
        "anna@example.it",
        " ANNA@Example.IT ",
        "mario@ditta.it",
        "ufficio@ditta.it",
        "chiuso@example.it",
        "ex@example.it",
        "nobody@example.it",
        "not an address",
        "",
    ]
    with django_assert_max_num_queries(2):
        found = facade.find_customers_by_emails(asked)
    assert {email: summary.customer_id for email, summary in found.items()} == {
        "anna@example.it": own.pk,
        " ANNA@Example.IT ": own.pk,
        "mario@ditta.it": company.pk,
        "ufficio@ditta.it": company.pk,
    }
    for email in asked:
        single = facade.find_customer_by_email(email)
        assert (single.customer_id if single else None) == (
            found[email].customer_id if email in found else None
        )
    assert facade.find_customers_by_emails([]) == {}
