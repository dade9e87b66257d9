"""No IDOR: portal customers and partners reach only their own customers; anything else is a 404
with the envelope, and nothing changes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from fedele.accounts.models import User
from fedele.accounts.tests.factories import OrganisationFactory, auth_header, user_with_roles
from fedele.customers.models import ConsentRecord, Contact, Customer
from fedele.customers.tests.factories import ContactFactory, CustomerFactory
from fedele.shared.models import AuditLog, OutboxEvent

NOT_FOUND = {"error": {"code": "not_found", "message": "Customer not found.", "fields": {}}}


def _json(client: Client, method: str, path: str, body: Any, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return getattr(client, method)(path, json.dumps(body), content_type="application/json", **headers)


def _state() -> tuple[Any, ...]:
    return (
        list(Customer.objects.order_by("id").values()),
        list(Contact.objects.order_by("id").values()),
        ConsentRecord.objects.count(),
        AuditLog.objects.exclude(action="api_token.created").count(),
        OutboxEvent.objects.count(),
    )


def _attempts(
    client: Client, headers: dict[str, str], target: Customer, target_contact: Contact
) -> dict[str, Any]:
    base = f"/api/v1/customers/{target.public_id}"
    return {
        "read": client.get(base, **headers),
        "patch": _json(client, "patch", base, {"city": "Hacked"}, headers),
        "list contacts": client.get(f"{base}/contacts", **headers),
        "add contact": _json(client, "post", f"{base}/contacts", {"first_name": "Eve"}, headers),
        "consent": _json(
            client,
            "post",
            f"{base}/consents",
            {"channel": "email", "purpose": "marketing", "granted": True},
            headers,
        ),
        "consent history": client.get(f"{base}/consents", **headers),
        "timeline": client.get(f"{base}/timeline", **headers),
        "patch contact": _json(
            client, "patch", f"/api/v1/contacts/{target_contact.public_id}", {"first_name": "Eve"}, headers
        ),
        "delete contact": client.delete(f"/api/v1/contacts/{target_contact.public_id}", **headers),
    }


def _assert_all_hidden(responses: dict[str, Any]) -> None:
    assert {name: r.status_code for name, r in responses.items()} == dict.fromkeys(responses, 404)
    for name, response in responses.items():
        body = response.json()
        assert body["error"]["code"] == "not_found", name
        assert set(body["error"]) == {"code", "message", "fields"}


@pytest.fixture
def portal() -> tuple[User, Customer, Customer, Contact]:
    user = user_with_roles("portal_customer")
    own: Customer = CustomerFactory()
    ContactFactory(customer=own, portal_user=user)
    other: Customer = CustomerFactory()
    other_contact: Contact = ContactFactory(customer=other)
    return user, own, other, other_contact


@pytest.mark.django_db
def test_portal_customer_cannot_reach_another_customer(
    client: Client, portal: tuple[User, Customer, Customer, Contact]
) -> None:
    user, _own, other, other_contact = portal
    headers = auth_header(user)
    before = _state()
    responses = _attempts(client, headers, other, other_contact)
    _assert_all_hidden(responses)
    assert responses["read"].json() == NOT_FOUND
    assert _state() == before
    listed = client.get("/api/v1/customers", **headers).json()
    assert str(other.public_id) not in [c["id"] for c in listed["items"]]


@pytest.mark.django_db
def test_portal_customer_sees_and_consents_for_their_own(
    client: Client, portal: tuple[User, Customer, Customer, Contact]
) -> None:
    user, own, _other, _ = portal
    headers = auth_header(user)
    assert client.get(f"/api/v1/customers/{own.public_id}", **headers).status_code == 200
    assert [c["id"] for c in client.get("/api/v1/customers", **headers).json()["items"]] == [
        str(own.public_id)
    ]
    contacts = client.get(f"/api/v1/customers/{own.public_id}/contacts", **headers)
    assert contacts.status_code == 200 and len(contacts.json()) == 1
    response = _json(
        client,
        "post",
        f"/api/v1/customers/{own.public_id}/consents",
        {"channel": "sms", "purpose": "marketing", "granted": False, "source": "portal"},
        headers,
    )
    assert response.status_code == 201
    assert ConsentRecord.objects.get().customer_id == own.pk
    # Visible but not theirs to edit: 403, not 404, and nothing changes.
    before = _state()
    response = _json(client, "patch", f"/api/v1/customers/{own.public_id}", {"city": "X"}, headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert _state() == before


@pytest.mark.django_db
def test_partner_sees_only_customers_their_organisation_manages(client: Client) -> None:
    organisation, other_organisation = OrganisationFactory(), OrganisationFactory()
    partner = user_with_roles("partner", organisation=organisation)
    own = CustomerFactory(managed_by=organisation)
    ContactFactory(customer=own)
    foreign = CustomerFactory(managed_by=other_organisation)
    foreign_contact = ContactFactory(customer=foreign)
    unmanaged = CustomerFactory()
    unmanaged_contact = ContactFactory(customer=unmanaged)
    headers = auth_header(partner)
    before = _state()
    _assert_all_hidden(_attempts(client, headers, foreign, foreign_contact))
    _assert_all_hidden(_attempts(client, headers, unmanaged, unmanaged_contact))
    assert _state() == before

    assert client.get(f"/api/v1/customers/{own.public_id}", **headers).status_code == 200
    assert client.get(f"/api/v1/customers/{own.public_id}/contacts", **headers).status_code == 200
    assert [c["id"] for c in client.get("/api/v1/customers", **headers).json()["items"]] == [
        str(own.public_id)
    ]
    # A partner's new customer is managed by the partner's organisation.
    created = _json(client, "post", "/api/v1/customers", {"kind": "person", "last_name": "Nuovo"}, headers)
    assert created.status_code == 201
    assert Customer.objects.get(public_id=created.json()["id"]).managed_by_id == organisation.pk


@pytest.mark.django_db
def test_partner_without_organisation_sees_nothing(client: Client) -> None:
    partner = user_with_roles("partner")
    CustomerFactory()
    assert client.get("/api/v1/customers", **auth_header(partner)).json()["items"] == []


@pytest.mark.django_db
def test_staff_without_customer_permissions_sees_none(client: Client) -> None:
    staff = user_with_roles(is_staff=True)  # no role at all
    customer = CustomerFactory()
    contact = ContactFactory(customer=customer)
    headers = auth_header(staff)
    assert client.get("/api/v1/customers", **headers).json() == {"items": [], "next_cursor": None}
    before = _state()
    _assert_all_hidden(_attempts(client, headers, customer, contact))
    assert _state() == before


@pytest.mark.django_db
def test_unknown_ids_look_the_same_as_foreign_ones(
    client: Client, portal: tuple[User, Customer, Customer, Contact]
) -> None:
    user, _own, other, _ = portal
    headers = auth_header(user)
    foreign = client.get(f"/api/v1/customers/{other.public_id}", **headers)
    missing = client.get("/api/v1/customers/00000000-0000-0000-0000-000000000000", **headers)
    assert (foreign.status_code, foreign.content) == (missing.status_code, missing.content)
