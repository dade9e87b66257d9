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
