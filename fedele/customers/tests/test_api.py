"""Customers API: CRUD of customers, contacts and consent; bad input changes nothing; cursor pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.customers.contracts import TimelineAppend
from fedele.customers.models import ConsentRecord, Contact, Customer, TimelineEntry
from fedele.customers.tests.factories import (
    CompanyFactory,
    ContactFactory,
    CustomerFactory,
    valid_italian_vat,
)
from fedele.shared import events
from fedele.shared.events import publish
from fedele.shared.models import AuditLog, OutboxEvent
from fedele.shared.pagination import _encode

START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
PERSON = {
    "kind": "person",
    "first_name": "Mario",
    "last_name": "Rossi",
    "email": "Mario.Rossi@Example.IT",
    "phone": "06 1234 5678",
    "fiscal_code": "rssmra85t10a562s",
    "city": "Roma",
    "province": "rm",
    "postal_code": "00184",
    "birth_date": "1985-12-10",
}


def _json(client: Client, method: str, path: str, body: Any, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return getattr(client, method)(path, raw, content_type="application/json", **headers)


def _counts() -> dict[str, int]:
    return {
        "customers": Customer.objects.count(),
        "contacts": Contact.objects.count(),
        "consents": ConsentRecord.objects.count(),
        "audit": AuditLog.objects.exclude(action="api_token.created").count(),
        "outbox": OutboxEvent.objects.count(),
    }


@pytest.fixture
def agent_headers() -> dict[str, str]:
    return auth_header(user_with_roles("agent"))


def _assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


# --- customers ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_a_person_normalises_every_field(
    client: Client, agent_headers: dict[str, str], time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    response = _json(client, "post", "/api/v1/customers", PERSON, agent_headers)
    assert response.status_code == 201, response.content
    body = response.json()
    customer = Customer.objects.get()
    assert body == {
        "id": str(customer.public_id),
        "number": "C-000001",
        "kind": "person",
        "display_name": "Mario Rossi",
        "first_name": "Mario",
        "last_name": "Rossi",
        "company_name": "",
        "fiscal_code": "RSSMRA85T10A562S",
        "vat_number": "",
        "email": "mario.rossi@example.it",
        "pec": "",
        "sdi_code": "",
        "phone": "+390612345678",
        "language": "it",
        "segment": "consumer",
        "street": "",
        "postal_code": "00184",
        "city": "Roma",
        "province": "RM",
        "country": "IT",
        "birth_date": "1985-12-10",
        "status": "active",
        "created_at": "2026-03-10T09:00:00Z",
        "updated_at": "2026-03-10T09:00:00Z",
    }
    assert (
        customer.search_text
        == "c-000001 mario rossi mario.rossi@example.it +390612345678 rssmra85t10a562s roma"
    )
    audit = AuditLog.objects.get(action="customer.created")
    assert audit.after is not None
    assert audit.after["source"] == "api" and audit.after["phone"] == "+390612345678"
    event = OutboxEvent.objects.get()
    assert (event.event_type, event.payload) == (
        "customers.CustomerCreated",
        {
            "customer_id": str(customer.public_id),
            "number": "C-000001",
            "kind": "person",
            "segment": "consumer",
        },
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+39 06 1234 5678", "+390612345678"),
        ("0039 333 123 4567", "+393331234567"),
        ("333-123-4567", "+393331234567"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_is_stored_as_e164(
    client: Client, agent_headers: dict[str, str], raw: str, expected: str
) -> None:
    response = _json(
        client, "post", "/api/v1/customers", {"kind": "person", "last_name": "X", "phone": raw}, agent_headers
    )
    assert response.status_code == 201, response.content
    assert response.json()["phone"] == expected


@pytest.mark.django_db
def test_create_a_company_with_vat(client: Client, agent_headers: dict[str, str]) -> None:
    vat = valid_italian_vat(1234)
    response = _json(
        client,
        "post",
        "/api/v1/customers",
        {
            "kind": "company",
            "company_name": "Acme S.p.A.",
            "vat_number": vat[2:],
            "segment": "enterprise",
            "sdi_code": "abc1234",
        },
        agent_headers,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["display_name"], body["vat_number"], body["sdi_code"], body["segment"]) == (
        "Acme S.p.A.",
        vat,
        "ABC1234",
        "enterprise",
    )


BAD_INPUTS = [
    (
        {**PERSON, "vat_number": "IT12345678901"},
        422,
        "validation_error",
        {"vat_number": ["'IT12345678901' is not a valid VAT number."]},
    ),
    (
        {**PERSON, "vat_number": "US123"},
        422,
        "validation_error",
        {"vat_number": ["'US123' does not start with an EU country code."]},
    ),
    (
        {**PERSON, "fiscal_code": "RSSMRA85T10A562X"},
        422,
        "validation_error",
        {"fiscal_code": ["'RSSMRA85T10A562X' is not a valid Italian fiscal code."]},
    ),
    ({**PERSON, "phone": "12"}, 422, "validation_error", {"phone": ["'12' is not a valid phone number."]}),
    (
        {**PERSON, "phone": "call me"},
        422,
        "validation_error",
        {"phone": ["'call me' is not a phone number."]},
    ),
    (
        {**PERSON, "email": "not-an-email"},
        422,
        "validation_error",
        {"email": ["'not-an-email' is not a valid e-mail address."]},
    ),
    (
        {**PERSON, "postal_code": "1234"},
        422,
        "validation_error",
        {"postal_code": ["An Italian postal code (CAP) has five digits."]},
    ),
    (
        {**PERSON, "birth_date": "2999-01-01"},
        422,
        "validation_error",
        {"birth_date": ["The birth date is in the future."]},
    ),
    ({"kind": "person"}, 422, "validation_error", {"last_name": ["A person needs a first or last name."]}),
    (
        {"kind": "company", "company_name": "No VAT S.r.l."},
        422,
        "validation_error",
        {"vat_number": ["An Italian company needs a VAT number or fiscal code."]},
    ),
    ({**PERSON, "nickname": "Super Mario"}, 422, "validation_error", {"nickname": ["Unknown field."]}),
    ({**PERSON, "first_name": 5}, 422, "validation_error", None),
    ({**PERSON, "birth_date": "yesterday"}, 422, "validation_error", None),
    ({**PERSON, "kind": "alien"}, 422, "validation_error", None),
    ({**PERSON, "segment": ["consumer"]}, 422, "validation_error", None),
    ({k: v for k, v in PERSON.items() if k != "kind"}, 422, "validation_error", None),
    ([PERSON], 422, "validation_error", None),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "status", "code", "fields"), BAD_INPUTS)
def test_bad_customer_input_is_refused_and_writes_nothing(
    client: Client, agent_headers: dict[str, str], body: Any, status: int, code: str, fields: Any
) -> None:
    before = _counts()
    response = _json(client, "post", "/api/v1/customers", body, agent_headers)
    error = _assert_envelope(response, status, code)
    if fields is not None:
        assert error["fields"] == fields
    else:
        assert error["fields"]
    assert _counts() == before


@pytest.mark.django_db
def test_missing_kind_names_the_field(client: Client, agent_headers: dict[str, str]) -> None:
    response = _json(client, "post", "/api/v1/customers", {"last_name": "Rossi"}, agent_headers)
    error = _assert_envelope(response, 422, "validation_error")
    assert list(error["fields"]) == ["kind"]


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ['{"kind": "person", ', "not json at all", b"\xff\xfe"])
def test_malformed_json_is_400(client: Client, agent_headers: dict[str, str], raw: Any) -> None:
    before = _counts()
    response = _json(client, "post", "/api/v1/customers", raw, agent_headers)
    _assert_envelope(response, 400, "malformed_json")
    assert _counts() == before


@pytest.mark.django_db
def test_duplicate_email_is_409_case_insensitively(client: Client, agent_headers: dict[str, str]) -> None:
    assert _json(client, "post", "/api/v1/customers", PERSON, agent_headers).status_code == 201
    before = _counts()
    other = {**PERSON, "email": "MARIO.ROSSI@example.it", "fiscal_code": "", "first_name": "Other"}
    response = _json(client, "post", "/api/v1/customers", other, agent_headers)
    error = _assert_envelope(response, 409, "duplicate_email")
    assert error["fields"] == {"email": ["Already used by another customer."]}
    assert _counts() == before
    # Changing another customer to the same address is refused the same way.
    second = _json(
        client,
        "post",
        "/api/v1/customers",
        {"kind": "person", "last_name": "B", "email": "b@example.it"},
        agent_headers,
    )
    response = _json(
        client,
        "patch",
        f"/api/v1/customers/{second.json()['id']}",
        {"email": "Mario.ROSSI@example.it"},
        agent_headers,
    )
    _assert_envelope(response, 409, "duplicate_email")
    assert Customer.objects.get(public_id=second.json()["id"]).email == "b@example.it"


@pytest.mark.django_db
def test_oversized_body_is_413_and_writes_nothing(
    client: Client, agent_headers: dict[str, str], settings
) -> None:
    settings.FEDELE_MAX_BODY_BYTES = 2048
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    before = _counts()
    response = _json(client, "post", "/api/v1/customers", {**PERSON, "notes": "n" * 5000}, agent_headers)
    _assert_envelope(response, 413, "payload_too_large")
    assert _counts() == before


@pytest.mark.django_db
def test_get_unknown_or_malformed_id(client: Client, agent_headers: dict[str, str]) -> None:
    response = client.get("/api/v1/customers/00000000-0000-0000-0000-000000000000", **agent_headers)
    _assert_envelope(response, 404, "not_found")
    response = client.get("/api/v1/customers/not-a-uuid", **agent_headers)
    assert response.status_code in (404, 422)
    assert "error" in response.json()


@pytest.mark.django_db
def test_get_records_a_pii_view(client: Client, agent_headers: dict[str, str]) -> None:
    customer = CustomerFactory()
    response = client.get(f"/api/v1/customers/{customer.public_id}", **agent_headers)
    assert response.status_code == 200
    assert response.json()["number"] == customer.number
    assert (
        AuditLog.objects.filter(action="customer.pii_viewed", object_id=str(customer.public_id)).count() == 1
    )


@pytest.mark.django_db
def test_patch_changes_fields_and_audits_only_what_changed(
    client: Client, agent_headers: dict[str, str], time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    created = _json(client, "post", "/api/v1/customers", PERSON, agent_headers).json()
    time_machine.move_to(START + timedelta(hours=1), tick=False)
    response = _json(
        client,
        "patch",
        f"/api/v1/customers/{created['id']}",
        {
            "city": "Milano",
            "province": "MI",
            "postal_code": "20121",
            "phone": "06 1234 5678",
            "first_name": "Mario",
        },
        agent_headers,
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["city"], body["province"], body["postal_code"], body["updated_at"]) == (
        "Milano",
        "MI",
        "20121",
        "2026-03-10T10:00:00Z",
    )
    audit = AuditLog.objects.get(action="customer.updated")
    assert audit.before == {"city": "Roma", "postal_code": "00184", "province": "RM"}
    assert audit.after == {"city": "Milano", "postal_code": "20121", "province": "MI"}
    event = OutboxEvent.objects.get(event_type="customers.CustomerUpdated")
    assert event.payload["changed_fields"] == ["postal_code", "city", "province"]

    # Nothing changed: no audit row, no event.
    before = _counts()
    response = _json(client, "patch", f"/api/v1/customers/{created['id']}", {"city": "Milano"}, agent_headers)
    assert response.status_code == 200
    assert _counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({"kind": None}, "kind"),
        ({"last_name": None}, "last_name"),
        ({"first_name": "", "last_name": ""}, "last_name"),
        ({"unknown": 1}, "unknown"),
        ({"vat_number": "IT00000000000"}, "vat_number"),
    ],
)
def test_bad_patch_writes_nothing(
    client: Client, agent_headers: dict[str, str], body: dict[str, Any], field: str
) -> None:
    customer = CustomerFactory()
    before = (_counts(), Customer.objects.values().get(pk=customer.pk))
    response = _json(client, "patch", f"/api/v1/customers/{customer.public_id}", body, agent_headers)
    error = _assert_envelope(response, 422, "validation_error")
    assert field in error["fields"]
    assert (_counts(), Customer.objects.values().get(pk=customer.pk)) == before


@pytest.mark.django_db
def test_analyst_can_read_but_not_write(client: Client) -> None:
    headers = auth_header(user_with_roles("analyst"))
    customer = CustomerFactory()
    assert client.get(f"/api/v1/customers/{customer.public_id}", **headers).status_code == 200
    before = _counts()
    _assert_envelope(_json(client, "post", "/api/v1/customers", PERSON, headers), 403, "permission_denied")
    _assert_envelope(
        _json(client, "patch", f"/api/v1/customers/{customer.public_id}", {"city": "X"}, headers),
        403,
        "permission_denied",
    )
    assert _counts() == before


# --- contacts ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_contact_crud_keeps_one_primary(client: Client, agent_headers: dict[str, str]) -> None:
    customer = CompanyFactory()
    base = f"/api/v1/customers/{customer.public_id}/contacts"
    first = _json(
        client,
        "post",
        base,
        {"first_name": "Luca", "last_name": "Verdi", "mobile": "333 123 4567"},
        agent_headers,
    )
    assert first.status_code == 201, first.content
    assert first.json() == {
        "id": first.json()["id"],
        "customer_id": str(customer.public_id),
        "first_name": "Luca",
        "last_name": "Verdi",
        "job_title": "",
        "email": "",
        "phone": "",
        "mobile": "+393331234567",
        "language": "it",
        "is_primary": True,  # the first contact is primary
    }
    second = _json(
        client,
        "post",
        base,
        {"last_name": "Bianchi", "email": "Anna@Example.it", "is_primary": True},
        agent_headers,
    )
    assert second.status_code == 201
    assert second.json()["email"] == "anna@example.it"
    listed = client.get(base, **agent_headers).json()
    assert [(c["last_name"], c["is_primary"]) for c in listed] == [("Bianchi", True), ("Verdi", False)]

    response = _json(
        client,
        "patch",
        f"/api/v1/contacts/{first.json()['id']}",
        {"job_title": "CFO", "is_primary": True},
        agent_headers,
    )
    assert response.status_code == 200
    assert (response.json()["job_title"], response.json()["is_primary"]) == ("CFO", True)
    assert Contact.objects.filter(customer=customer, is_primary=True).count() == 1

    response = client.delete(f"/api/v1/contacts/{first.json()['id']}", **agent_headers)
    assert response.status_code == 204
    survivor = Contact.objects.get(customer=customer)
    assert survivor.is_primary
    assert (
        AuditLog.objects.filter(action__startswith="contact.").values_list("action", flat=True).count() == 4
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "fields"),
    [
        ({"first_name": "A", "phone": "12"}, 422, {"phone": ["'12' is not a valid phone number."]}),
        ({"first_name": "A", "email": "nope"}, 422, {"email": ["'nope' is not a valid e-mail address."]}),
        ({}, 422, {"last_name": ["A contact needs a name or an e-mail address."]}),
        ({"first_name": "A", "role": "boss"}, 422, {"role": ["Unknown field."]}),
        ({"first_name": "A", "is_primary": "maybe"}, 422, None),
    ],
)
def test_bad_contact_input_writes_nothing(
    client: Client, agent_headers: dict[str, str], body: dict[str, Any], status: int, fields: Any
) -> None:
    customer = CustomerFactory()
    before = _counts()
    response = _json(client, "post", f"/api/v1/customers/{customer.public_id}/contacts", body, agent_headers)
    error = _assert_envelope(response, status, "validation_error")
    if fields is not None:
        assert error["fields"] == fields
    assert _counts() == before


@pytest.mark.django_db
def test_contact_with_a_portal_login_cannot_be_deleted(client: Client, agent_headers: dict[str, str]) -> None:
    contact = ContactFactory(portal_user=user_with_roles("portal_customer"))
    before = _counts()
    response = client.delete(f"/api/v1/contacts/{contact.public_id}", **agent_headers)
    _assert_envelope(response, 409, "contact_has_login")
    assert _counts() == before


# --- consent ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_consent_is_appended_and_the_latest_is_in_force(
    client: Client, agent_headers: dict[str, str], time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    customer = CustomerFactory()
    contact = ContactFactory(customer=customer)
    path = f"/api/v1/customers/{customer.public_id}/consents"
    granted = _json(
        client,
        "post",
        path,
        {
            "channel": "email",
            "purpose": "marketing",
            "granted": True,
            "source": "web form",
            "contact_id": str(contact.public_id),
        },
        agent_headers,
    )
    assert granted.status_code == 201, granted.content
    assert granted.json() == {
        "id": granted.json()["id"],
        "channel": "email",
        "purpose": "marketing",
        "granted": True,
        "source": "web form",
        "evidence": "",
        "recorded_at": "2026-03-10T09:00:00Z",
    }
    time_machine.move_to(START + timedelta(days=1), tick=False)
    withdrawn = _json(
        client, "post", path, {"channel": "email", "purpose": "marketing", "granted": False}, agent_headers
    )
    assert withdrawn.status_code == 201
    history = client.get(path, **agent_headers).json()
    assert [(c["granted"], c["source"]) for c in history] == [(False, "api"), (True, "web form")]
    assert OutboxEvent.objects.filter(event_type="customers.ConsentChanged").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "pigeon", "purpose": "marketing", "granted": True}, "channel"),
        ({"channel": "email", "purpose": "fun", "granted": True}, "purpose"),
        ({"channel": "email", "purpose": "marketing"}, "granted"),
        ({"channel": "email", "purpose": "marketing", "granted": True, "source": ""}, "source"),
        (
            {
                "channel": "email",
                "purpose": "marketing",
                "granted": True,
                "contact_id": "00000000-0000-0000-0000-000000000000",
            },
            "contact_id",
        ),
    ],
)
def test_bad_consent_writes_nothing(
    client: Client, agent_headers: dict[str, str], body: dict[str, Any], field: str
) -> None:
    customer = CustomerFactory()
    before = _counts()
    response = _json(client, "post", f"/api/v1/customers/{customer.public_id}/consents", body, agent_headers)
    error = _assert_envelope(response, 422, "validation_error")
    assert field in error["fields"]
    assert _counts() == before


# --- list and cursor pagination -------------------------------------------------------------------


ORDERINGS = {
    "name": lambda c: (c.display_name, c.pk),
    "created_at": lambda c: (c.created_at, c.pk),
    "number": lambda c: (c.number, c.pk),
    "city": lambda c: (c.city, c.pk),
}


def _many_customers() -> list[Customer]:
    customers: list[Customer] = []
    for index in range(23):
        first = ["Anna", "Bruno", "Carla"][index % 3]
        last = ["Neri", "Neri", "Bianchi", "Zeta"][index % 4]
        customers.append(
            CustomerFactory(
                first_name=first,
                last_name=last,
                display_name=f"{first} {last}",
                city=["Roma", "Milano", "", "Bari"][index % 4],
                created_at=START + timedelta(minutes=index % 5),  # ties on purpose
            )
        )
    return customers


@pytest.mark.django_db
@pytest.mark.parametrize("ordering", [*ORDERINGS, *(f"-{o}" for o in ORDERINGS)])
def test_cursor_walks_every_row_once_in_order(
    client: Client, agent_headers: dict[str, str], ordering: str
) -> None:
    customers = _many_customers()
    CustomerFactory(status="merged")  # not listed by default
    key = ORDERINGS[ordering.lstrip("-")]
    expected = [str(c.public_id) for c in sorted(customers, key=key, reverse=ordering.startswith("-"))]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = f"/api/v1/customers?ordering={ordering}&limit=5" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(query, **agent_headers)
        assert response.status_code == 200, response.content
        page = response.json()
        seen.extend(item["id"] for item in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    assert seen == expected


@pytest.mark.django_db
def test_cursor_is_stable_when_rows_are_added_between_pages(
    client: Client, agent_headers: dict[str, str]
) -> None:
    customers = [CustomerFactory(created_at=START + timedelta(minutes=i)) for i in range(6)]
    first = client.get("/api/v1/customers?ordering=created_at&limit=3", **agent_headers).json()
    CustomerFactory(created_at=START - timedelta(days=1))  # lands before the cursor
    second = client.get(
        f"/api/v1/customers?ordering=created_at&limit=3&cursor={first['next_cursor']}", **agent_headers
    ).json()
    assert [i["id"] for i in first["items"] + second["items"]] == [str(c.public_id) for c in customers]
    assert second["next_cursor"] is None


@pytest.mark.django_db
def test_filters(client: Client, agent_headers: dict[str, str]) -> None:
    CustomerFactory(first_name="Anna", last_name="Neri", display_name="Anna Neri", city="Roma")
    CompanyFactory(
        company_name="Neri S.r.l.", display_name="Neri S.r.l.", city="Milano", search_text="neri srl milano"
    )
    CustomerFactory(first_name="Bruno", last_name="Bianchi", display_name="Bruno Bianchi", city="roma")

    def names(query: str) -> list[str]:
        response = client.get(f"/api/v1/customers?{query}", **agent_headers)
        assert response.status_code == 200, response.content
        return [c["display_name"] for c in response.json()["items"]]

    assert names("search=neri") == ["Anna Neri", "Neri S.r.l."]
    assert names("kind=company") == ["Neri S.r.l."]
    assert names("city=ROMA") == ["Anna Neri", "Bruno Bianchi"]
    assert names("segment=small_business") == ["Neri S.r.l."]
    assert names("status=merged") == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "e30",  # {}
        _encode({"o": "-name", "v": "x", "id": 1}),  # another ordering's cursor
        _encode({"o": "created_at", "v": "not a date", "id": 1}),
        _encode({"o": "created_at", "v": [1, 2], "id": 1}),
        _encode({"o": "created_at", "v": "2026-01-01T00:00:00+00:00", "id": "abc"}),
        "W10",  # []
    ],
)
def test_invalid_cursor_is_422(client: Client, agent_headers: dict[str, str], cursor: str) -> None:
    CustomerFactory()
    response = client.get(f"/api/v1/customers?ordering=created_at&cursor={cursor}", **agent_headers)
    error = _assert_envelope(response, 422, "invalid_cursor")
    assert error["fields"] == {"cursor": ["Invalid."]}


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["ordering=email", "limit=0", "limit=201", "limit=ten", "segment=vip"])
def test_invalid_list_parameters_are_422(client: Client, agent_headers: dict[str, str], query: str) -> None:
    response = client.get(f"/api/v1/customers?{query}", **agent_headers)
    _assert_envelope(response, 422, "validation_error")


@pytest.mark.django_db
def test_list_query_count_is_bounded_and_independent_of_page_size(
    client: Client, agent_headers: dict[str, str], django_assert_max_num_queries
) -> None:
    for _ in range(60):
        ContactFactory()  # customers with contacts: nothing may be fetched per row
    client.get("/api/v1/customers?limit=1", **agent_headers)  # warm up: token last_used_at
    counted = {}
    for limit in (5, 50):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/api/v1/customers?limit={limit}", **agent_headers)
        assert response.status_code == 200
        assert len(response.json()["items"]) == limit
        counted[limit] = len(queries)
    assert counted[5] == counted[50]
    with django_assert_max_num_queries(8):
        client.get("/api/v1/customers?limit=200", **agent_headers)


# --- timeline ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_customer_created_adds_a_timeline_entry(
    client: Client, agent_headers: dict[str, str], django_capture_on_commit_callbacks, time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        created = _json(client, "post", "/api/v1/customers", PERSON, agent_headers).json()
    response = client.get(f"/api/v1/customers/{created['id']}/timeline", **agent_headers)
    assert response.status_code == 200
    entries = response.json()
    assert [(e["module"], e["kind"], e["title"], e["occurred_at"]) for e in entries] == [
        ("customers", "customer.created", "Customer created", "2026-03-10T09:00:00Z")
    ]


@pytest.mark.django_db
def test_timeline_append_from_another_module_is_written_once(
    client: Client, agent_headers: dict[str, str], django_capture_on_commit_callbacks
) -> None:
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        row = publish(
            TimelineAppend(
                customer_public_id=str(customer.public_id),
                module="billing",
                kind="invoice.paid",
                title="Invoice INV-2026-000001 paid",
                occurred_at=START,
                summary="€ 122,00",
                link="/billing/invoices/1",
                data={"amount": "122.00"},
            ),
            aggregate_type="invoice",
            aggregate_id="INV-2026-000001",
        )
    assert events.dispatch(row.event_id) is True  # delivered again
    OutboxEvent.objects.filter(pk=row.pk).update(dispatched_at=None)
    assert events.dispatch(row.event_id) is True  # and again, as a sweep after a crash would
    entry = TimelineEntry.objects.get()
    assert (
        entry.module,
        entry.kind,
        entry.title,
        entry.summary,
        entry.link,
        entry.data,
        entry.occurred_at,
    ) == (
        "billing",
        "invoice.paid",
        "Invoice INV-2026-000001 paid",
        "€ 122,00",
        "/billing/invoices/1",
        {"amount": "122.00"},
        START,
    )
    assert entry.source_event_id == row.event_id
    listed = client.get(
        f"/api/v1/customers/{customer.public_id}/timeline?module=billing", **agent_headers
    ).json()
    assert [e["title"] for e in listed] == ["Invoice INV-2026-000001 paid"]
    assert (
        client.get(f"/api/v1/customers/{customer.public_id}/timeline?module=loyalty", **agent_headers).json()
        == []
    )


@pytest.mark.django_db
def test_nul_characters_are_refused_not_a_server_error(client: Client, agent_headers: dict[str, str]) -> None:
    before = _counts()
    response = _json(
        client, "post", "/api/v1/customers", {**PERSON, "first_name": "Ma\u0000rio"}, agent_headers
    )
    error = _assert_envelope(response, 422, "validation_error")
    assert error["fields"] == {"first_name": ["Value error, NUL characters are not allowed."]}
    response = client.get("/api/v1/customers?search=ma%00rio", **agent_headers)
    error = _assert_envelope(response, 422, "validation_error")
    assert error["fields"] == {"search": ["NUL characters are not allowed."]}
    assert _counts() == before
