"""The customer list is written straight to JSON for speed; it must still match its OpenAPI schema."""

from __future__ import annotations

import pytest
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.customers.api import CustomerOut, CustomerPage
from fedele.customers.tests.factories import CompanyFactory, CustomerFactory


@pytest.mark.django_db
def test_list_page_validates_against_the_schema_and_matches_the_detail_view(client: Client) -> None:
    headers = auth_header(user_with_roles("agent"))
    person = CustomerFactory(birth_date="1985-12-10")
    CompanyFactory()
    response = client.get("/api/v1/customers?ordering=number", **headers)
    assert response.status_code == 200
    page = CustomerPage.model_validate(response.json())
    assert len(page.items) == 2 and page.next_cursor is None
    detail = client.get(f"/api/v1/customers/{person.public_id}", **headers).json()
    assert response.json()["items"][0] == detail  # same fields, same JSON formats
    assert set(detail) == set(CustomerOut.model_fields)
    assert detail["birth_date"] == "1985-12-10"


@pytest.mark.django_db
def test_portal_customer_home_shows_only_their_own_record(client: Client) -> None:
    from fedele.accounts.tests.factories import DEFAULT_PASSWORD
    from fedele.customers.tests.factories import ContactFactory

    portal = user_with_roles("portal_customer")
    own = CustomerFactory(
        first_name="Ivo", last_name="Conte", display_name="Ivo Conte", email="ivo@example.it"
    )
    ContactFactory(customer=own, portal_user=portal)
    other = CustomerFactory(first_name="Eva", last_name="Altri", display_name="Eva Altri")
    assert client.login(username=portal.email, password=DEFAULT_PASSWORD)
    page = client.get("/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="portal-customer-card"' in body
    assert "Ivo Conte" in body and str(own.number) in body and "ivo@example.it" in body
    assert "Eva Altri" not in body and str(other.number) not in body
    assert client.get(f"/customers/{own.public_id}/").status_code == 200
    assert client.get(f"/customers/{other.public_id}/").status_code == 404


@pytest.mark.django_db
def test_staff_home_has_no_portal_card(client: Client) -> None:
    from fedele.accounts.tests.factories import DEFAULT_PASSWORD

    agent = user_with_roles("agent")
    assert client.login(username=agent.email, password=DEFAULT_PASSWORD)
    body = client.get("/").content.decode()
    assert 'id="portal-customer-card"' not in body
