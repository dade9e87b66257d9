"""API of the customer data operations: import, duplicates, merge, personal-data export, erasure."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from fedele.accounts.tests.factories import OrganisationFactory, auth_header, user_with_roles
from fedele.customers.models import Customer, CustomerImport
from fedele.customers.tests.factories import ContactFactory, CustomerFactory
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db

CSV = (
    "nome;cognome;email;cap;città\n"
    "Mario;Rossi;mario@example.it;00184;Roma\n"
    "Anna;Verdi;not-an-email;00184;Roma\n"
    "Luca;Bianchi;luca@example.it;123;Roma\n"
)


def post_json(client: Client, path: str, body: object, headers: dict[str, str]):
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


def upload(client: Client, headers: dict[str, str], content: bytes = CSV.encode(), name: str = "clienti.csv"):
    return client.post(
        "/api/v1/customers/imports",
        {"file": SimpleUploadedFile(name, content, content_type="text/csv")},
        **headers,
    )


@pytest.fixture
def admin_headers():
    return auth_header(user_with_roles("admin"))


def counts() -> tuple[int, int, int]:
    return Customer.objects.count(), AuditLog.objects.count(), OutboxEvent.objects.count()


# --- import ----------------------------------------------------------------------------------------


def test_upload_returns_the_preview_with_rows_and_errors_per_line(client, admin_headers):
    response = upload(client, admin_headers)

    assert response.status_code == 201, response.content
    body = response.json()
    customer_import = CustomerImport.objects.get()
    assert body["id"] == str(customer_import.public_id)
    assert (body["filename"], body["status"]) == ("clienti.csv", "previewed")
    assert (body["total_rows"], body["valid_rows"], body["invalid_rows"], body["created_count"]) == (
        3,
        1,
        2,
        0,
    )
    assert body["committed_at"] is None
    assert [(row["line"], row["valid"], row["errors"]) for row in body["rows"]] == [
        (2, True, {}),
        (3, False, {"email": ["'not-an-email' is not a valid e-mail address."]}),
        (4, False, {"postal_code": ["An Italian postal code (CAP) has five digits."]}),
    ]
    assert body["rows"][0]["values"] == {
        "first_name": "Mario",
        "last_name": "Rossi",
        "email": "mario@example.it",
        "postal_code": "00184",
        "city": "Roma",
    }
    fetched = client.get(f"/api/v1/customers/imports/{body['id']}", **admin_headers)
    assert fetched.status_code == 200 and fetched.json()["total_rows"] == 3


def test_commit_all_or_nothing_fails_with_the_bad_lines_then_valid_rows_commits_once(client, admin_headers):
    import_id = upload(client, admin_headers).json()["id"]
    path = f"/api/v1/customers/imports/{import_id}/commit"
    before = counts()

    refused = post_json(client, path, {"mode": "all_or_nothing"}, admin_headers)

    assert refused.status_code == 422
    assert refused.json() == {
        "error": {
            "code": "invalid_rows",
            "message": "2 rows are not valid (line 3, 4); nothing was imported.",
            "fields": {
                "line_3.email": ["'not-an-email' is not a valid e-mail address."],
                "line_4.postal_code": ["An Italian postal code (CAP) has five digits."],
            },
        }
    }
    assert counts() == before

    committed = post_json(client, path, {"mode": "valid_rows"}, admin_headers)
    assert committed.status_code == 200
    body = committed.json()
    assert (body["status"], body["created_count"]) == ("committed", 1)
    assert body["rows"][0]["customer_number"] == "C-000001"
    assert list(Customer.objects.values_list("email", flat=True)) == ["mario@example.it"]

    after_commit = counts()
    again = post_json(client, path, {"mode": "valid_rows"}, admin_headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "import_already_committed"
    assert counts() == after_commit


def test_import_input_errors_use_the_envelope(client, admin_headers):
    bad_file = upload(client, admin_headers, b"colore\nblu\n")
    assert bad_file.status_code == 422
    assert bad_file.json()["error"] == {
        "code": "unknown_columns",
        "message": "Some column headers are not known; rename or remove them and upload the file again.",
        "fields": {"columns": ["Unknown column 'colore' (column A)."]},
    }
    empty = upload(client, admin_headers, b"")
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_file"
    missing = client.post("/api/v1/customers/imports", {}, **admin_headers)
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "validation_error"
    with override_settings(FEDELE_MAX_UPLOAD_BYTES=50):
        too_big = upload(client, admin_headers)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    import_id = upload(client, admin_headers).json()["id"]
    bad_mode = post_json(
        client, f"/api/v1/customers/imports/{import_id}/commit", {"mode": "everything"}, admin_headers
    )
    assert bad_mode.status_code == 422 and "mode" in bad_mode.json()["error"]["fields"]
    unknown = post_json(
        client,
        "/api/v1/customers/imports/00000000-0000-0000-0000-000000000000/commit",
        {"mode": "valid_rows"},
        admin_headers,
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert Customer.objects.count() == 0


def test_import_needs_the_permission_the_write_scope_and_authentication(client):
    agent = upload(client, auth_header(user_with_roles("agent")))
    assert agent.status_code == 403 and agent.json()["error"]["code"] == "permission_denied"
    read_only = upload(client, auth_header(user_with_roles("admin"), scopes=("read",)))
    assert read_only.status_code == 403 and read_only.json()["error"]["code"] == "insufficient_scope"
    anonymous = upload(client, {})
    assert anonymous.status_code == 401
    assert CustomerImport.objects.count() == 0


# --- duplicates and merge -----------------------------------------------------------------------------


def test_duplicates_and_merge(client, admin_headers):
    survivor = CustomerFactory(first_name="Mario", last_name="Rossi", city="Roma", phone="")
    duplicate = CustomerFactory(first_name="Mario", last_name="Rossi", city="Roma", phone="+390612345678")
    ContactFactory(customer=duplicate)

    response = client.get(f"/api/v1/customers/{survivor.public_id}/duplicates", **admin_headers)

    assert response.status_code == 200
    body = response.json()
    assert [(c["customer"]["id"], c["score"], c["reasons"]) for c in body] == [
        (str(duplicate.public_id), 25, ["similar name in the same city"])
    ]
    assert body[0]["customer"]["number"] == duplicate.number

    merged = post_json(
        client,
        f"/api/v1/customers/{survivor.public_id}/merge",
        {"duplicate_id": str(duplicate.public_id)},
        admin_headers,
    )
    assert merged.status_code == 200
    assert (merged.json()["id"], merged.json()["phone"]) == (str(survivor.public_id), "+390612345678")
    assert survivor.contacts.count() == 1
    duplicate.refresh_from_db()
    assert duplicate.status == "merged"

    again = post_json(
        client,
        f"/api/v1/customers/{survivor.public_id}/merge",
        {"duplicate_id": str(duplicate.public_id)},
        admin_headers,
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "customer_not_active"
    itself = post_json(
        client,
        f"/api/v1/customers/{survivor.public_id}/merge",
        {"duplicate_id": str(survivor.public_id)},
        admin_headers,
    )
    assert itself.status_code == 422
    assert itself.json()["error"] == {
        "code": "self_merge",
        "message": "A customer cannot be merged into itself.",
        "fields": {"duplicate_id": ["Choose another customer."]},
    }
    malformed = post_json(
        client, f"/api/v1/customers/{survivor.public_id}/merge", {"duplicate_id": "nope"}, admin_headers
    )
    assert malformed.status_code == 422 and "duplicate_id" in malformed.json()["error"]["fields"]
    extra = post_json(
        client,
        f"/api/v1/customers/{survivor.public_id}/merge",
        {"duplicate_id": str(duplicate.public_id), "force": True},
        admin_headers,
    )
    assert extra.status_code == 422 and extra.json()["error"]["fields"] == {"force": ["Unknown field."]}


# --- GDPR -----------------------------------------------------------------------------------------------


def test_personal_data_export_is_a_zip(client, admin_headers):
    customer = CustomerFactory(number="C-000777", email="mario@example.it")

    response = client.get(f"/api/v1/customers/{customer.public_id}/personal-data", **admin_headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="personal-data-C-000777.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == ["customer.json", "README.txt"]
        document = json.loads(archive.read("customer.json"))
    assert (document["customer"]["number"], document["customer"]["email"]) == ("C-000777", "mario@example.it")
    assert AuditLog.objects.filter(
        action="customer.personal_data_exported", object_id=str(customer.public_id)
    ).exists()


def test_erase_then_erase_again_and_missing_reason(client, admin_headers):
    customer = CustomerFactory(number="C-000778", email="mario@example.it")
    path = f"/api/v1/customers/{customer.public_id}/erase"

    no_reason = post_json(client, path, {}, admin_headers)
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["error"]["fields"]
    blank = post_json(client, path, {"reason": "   "}, admin_headers)
    assert blank.status_code == 422
    customer.refresh_from_db()
    assert customer.status == "active"

    erased = post_json(client, path, {"reason": "Request of 2 March"}, admin_headers)
    assert erased.status_code == 200
    assert (erased.json()["status"], erased.json()["display_name"], erased.json()["email"]) == (
        "erased",
        "Erased customer C-000778",
        "",
    )
    again = post_json(client, path, {"reason": "Request of 2 March"}, admin_headers)
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "already_erased",
        "message": "This customer's personal data has already been erased.",
        "fields": {},
    }


def test_agents_are_forbidden_from_gdpr_and_merge(client):
    customer = CustomerFactory()
    other = CustomerFactory()
    headers = auth_header(user_with_roles("agent"))
    assert client.get(f"/api/v1/customers/{customer.public_id}/personal-data", **headers).status_code == 403
    assert (
        post_json(
            client, f"/api/v1/customers/{customer.public_id}/erase", {"reason": "x"}, headers
        ).status_code
        == 403
    )
    assert client.get(f"/api/v1/customers/{customer.public_id}/duplicates", **headers).status_code == 403
    merge = post_json(
        client,
        f"/api/v1/customers/{customer.public_id}/merge",
        {"duplicate_id": str(other.public_id)},
        headers,
    )
    assert merge.status_code == 403
    assert Customer.objects.filter(status="active").count() == 2


def _others_customer_requests(client: Client, headers: dict[str, str], customer: Customer, other: Customer):
    base = f"/api/v1/customers/{customer.public_id}"
    return {
        "duplicates": client.get(f"{base}/duplicates", **headers),
        "merge": post_json(client, f"{base}/merge", {"duplicate_id": str(other.public_id)}, headers),
        "personal-data": client.get(f"{base}/personal-data", **headers),
        "erase": post_json(client, f"{base}/erase", {"reason": "curious"}, headers),
    }


def test_a_portal_customer_gets_404_for_a_customer_that_is_not_theirs(client):
    portal_user = user_with_roles("portal_customer")
    own = CustomerFactory()
    ContactFactory(customer=own, portal_user=portal_user)
    stranger = CustomerFactory()
    headers = auth_header(portal_user)
    before = counts()

    responses = _others_customer_requests(client, headers, stranger, own)

    assert {name: r.status_code for name, r in responses.items()} == dict.fromkeys(responses, 404)
    assert {r.json()["error"]["code"] for r in responses.values()} == {"not_found"}
    assert counts() == before
    stranger.refresh_from_db()
    assert stranger.status == "active"
    own_erase = post_json(client, f"/api/v1/customers/{own.public_id}/erase", {"reason": "x"}, headers)
    assert own_erase.status_code == 403


def test_a_partner_gets_404_for_another_organisations_customer(client):
    organisation, other_organisation = OrganisationFactory(), OrganisationFactory()
    partner = user_with_roles("partner", organisation=organisation)
    own = CustomerFactory(managed_by=organisation)
    foreign = CustomerFactory(managed_by=other_organisation)
    headers = auth_header(partner)
    before = counts()

    responses = _others_customer_requests(client, headers, foreign, own)

    assert {name: r.status_code for name, r in responses.items()} == dict.fromkeys(responses, 404)
    assert counts() == before


def test_an_upload_retried_with_the_same_idempotency_key_makes_one_preview(client, admin_headers):
    headers = {**admin_headers, "HTTP_IDEMPOTENCY_KEY": "upload-1"}
    first = upload(client, headers)
    second = upload(client, headers)

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] == second.json()["id"]
    assert CustomerImport.objects.count() == 1
