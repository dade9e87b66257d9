"""Invoices API: scoping (portal sees own issued invoices only), writes, documents, billing runs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.billing.models import BillingRun, Invoice
from fedele.billing.services.invoicing import invoice_create_draft, invoice_finalise, invoice_line_add
from fedele.billing.tests.invoicing_helpers import italian_consumer_account, monthly
from fedele.customers.tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
D = Decimal
BASE = "/api/v1/billing"


@pytest.fixture(autouse=True)
def _frozen(time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(datetime(2026, 5, 4, 9, 0, tzinfo=UTC), tick=False)


@pytest.fixture
def clerk() -> dict[str, str]:
    return auth_header(user_with_roles("billing_clerk"))


def post(client: Client, path: str, body: Any, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(f"{BASE}{path}", data=json.dumps(body), content_type="application/json", **headers)


def issued_invoice(account=None, amount: str = "100") -> Invoice:  # type: ignore[no-untyped-def]
    invoice = invoice_create_draft(account=account or italian_consumer_account())
    invoice_line_add(invoice=invoice, description="Service", unit_amount=D(amount))
    return invoice_finalise(invoice=invoice)


def test_create_draft_add_line_finalise_and_download(client: Client, clerk: dict[str, str]) -> None:
    account = italian_consumer_account()
    response = post(
        client,
        "/invoices",
        {
            "customer_id": str(account.customer.public_id),
            "lines": [{"description": "Setup", "unit_amount": "80.00"}],
        },
        clerk,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["number"], body["total"]) == ("draft", None, "97.60")
    invoice_id = body["id"]
    response = post(
        client,
        f"/invoices/{invoice_id}/lines",
        {"description": "Book", "unit_amount": "10", "vat_rate": "4"},
        clerk,
    )
    assert response.status_code == 201
    assert [row["vat_rate"] for row in response.json()["tax_summaries"]] == ["22.00", "4.00"]
    assert response.json()["total"] == "108.00"
    response = post(client, f"/invoices/{invoice_id}/finalise", {}, clerk)
    assert response.status_code == 200
    assert (response.json()["number"], response.json()["status"], response.json()["due_date"]) == (
        "INV-2026-000001",
        "finalised",
        "2026-06-03",
    )
    pdf = client.get(f"{BASE}/invoices/{invoice_id}/pdf?language=en", **clerk)
    assert (pdf.status_code, pdf["Content-Type"], pdf.content[:5]) == (200, "application/pdf", b"%PDF-")
    xml = client.get(f"{BASE}/invoices/{invoice_id}/xml", **clerk)
    assert xml.status_code == 200 and b"<Numero>INV-2026-000001</Numero>" in xml.content


def test_bad_draft_input_writes_nothing(client: Client, clerk: dict[str, str]) -> None:
    account = italian_consumer_account()
    response = post(
        client,
        "/invoices",
        {
            "customer_id": str(account.customer.public_id),
            "lines": [{"description": "x", "unit_amount": "1", "bogus": 1}],
        },
        clerk,
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"lines.0.bogus": ["Unknown field."]}
    response = post(client, "/invoices", {"customer_id": "00000000-0000-0000-0000-000000000000"}, clerk)
    assert response.status_code == 404
    assert Invoice.objects.count() == 0


def test_void_and_credit_note(client: Client, clerk: dict[str, str]) -> None:
    invoice = issued_invoice()
    response = post(
        client, f"/invoices/{invoice.public_id}/credit-notes", {"amount": "12.20", "reason": "Outage"}, clerk
    )
    assert response.status_code == 201
    assert (response.json()["number"], response.json()["total"], response.json()["credit_note_for"]) == (
        "NC-2026-000001",
        "12.20",
        "INV-2026-000001",
    )
    too_much = post(
        client, f"/invoices/{invoice.public_id}/credit-notes", {"amount": "200", "reason": "x"}, clerk
    )
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "credit_exceeds_invoice"
    other = issued_invoice()
    response = post(client, f"/invoices/{other.public_id}/void", {"reason": "Duplicate"}, clerk)
    assert (response.status_code, response.json()["status"]) == (200, "void")
    again = post(client, f"/invoices/{other.public_id}/void", {"reason": "Duplicate"}, clerk)
    assert again.status_code == 409
    assert Invoice.objects.filter(kind="credit_note").count() == 2


def test_list_filters_and_query_count(client: Client, clerk: dict[str, str]) -> None:
    first = issued_invoice()
    issued_invoice()
    invoice_create_draft(account=italian_consumer_account())
    response = client.get(f"{BASE}/invoices?status=finalised", **clerk)
    assert [row["number"] for row in response.json()["items"]] == ["INV-2026-000002", "INV-2026-000001"]
    customer = first.customer_snapshot["public_id"]
    response = client.get(f"{BASE}/invoices?customer={customer}", **clerk)
    assert [row["number"] for row in response.json()["items"]] == ["INV-2026-000001"]
    response = client.get(f"{BASE}/invoices?issued_from=2026-05-05", **clerk)
    assert response.json()["items"] == []
    bad = client.get(f"{BASE}/invoices?issued_from=2026-05-05&issued_to=2026-05-01", **clerk)
    assert bad.status_code == 422
    page = client.get(f"{BASE}/invoices?limit=1", **clerk)
    assert page.json()["next_cursor"]
    for _ in range(5):
        issued_invoice()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{BASE}/invoices?limit=50", **clerk)
    assert len(response.json()["items"]) == 8
    assert len(queries) <= 8, [q["sql"] for q in queries.captured_queries]


def test_portal_customer_sees_only_own_issued_invoices(client: Client) -> None:
    account = italian_consumer_account()
    own = issued_invoice(account)
    draft = invoice_create_draft(account=account)
    foreign = issued_invoice()
    user = user_with_roles("portal_customer")
    ContactFactory(customer=account.customer, portal_user_id=user.pk)
    headers = auth_header(user)
    response = client.get(f"{BASE}/invoices", **headers)
    assert [row["id"] for row in response.json()["items"]] == [str(own.public_id)]
    assert client.get(f"{BASE}/invoices/{own.public_id}", **headers).status_code == 200
    assert client.get(f"{BASE}/invoices/{own.public_id}/pdf", **headers).status_code == 200
    assert client.get(f"{BASE}/invoices/{foreign.public_id}", **headers).status_code == 404
    assert client.get(f"{BASE}/invoices/{foreign.public_id}/pdf", **headers).status_code == 404
    assert client.get(f"{BASE}/invoices/{draft.public_id}", **headers).status_code == 404
    assert post(client, f"/invoices/{own.public_id}/void", {"reason": "x"}, headers).status_code == 403
    assert client.get(f"{BASE}/billing-runs", **headers).status_code == 403


def test_read_only_token_and_agent_cannot_write(client: Client) -> None:
    invoice = issued_invoice()
    agent = auth_header(user_with_roles("agent"))
    assert client.get(f"{BASE}/invoices/{invoice.public_id}", **agent).status_code == 200
    assert post(client, f"/invoices/{invoice.public_id}/void", {"reason": "x"}, agent).status_code == 403
    reader = auth_header(user_with_roles("billing_clerk"), scopes=("read",))
    assert post(client, f"/invoices/{invoice.public_id}/void", {"reason": "x"}, reader).status_code == 403
    assert Invoice.objects.get(pk=invoice.pk).status == "finalised"


def test_billing_run_start_and_progress(
    client: Client, clerk: dict[str, str], django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    monthly("10.00", start=date(2026, 5, 1))
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "/billing-runs", {"as_of": "2026-05-04"}, clerk)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["as_of"], body["subscriptions_due"]) == ("2026-05-04", 1)
    # the run executes after commit (eagerly here); its progress is read back from the detail
    detail = client.get(f"{BASE}/billing-runs/{body['id']}", **clerk).json()
    assert (
        detail["status"],
        detail["subscriptions_processed"],
        detail["invoices_created"],
        detail["progress_percent"],
    ) == (
        "completed",
        1,
        1,
        100,
    )
    assert [row["id"] for row in client.get(f"{BASE}/billing-runs", **clerk).json()] == [body["id"]]
    future = post(client, "/billing-runs", {"as_of": "2026-05-05"}, clerk)
    assert future.status_code == 422
    agent = auth_header(user_with_roles("agent"))
    assert post(client, "/billing-runs", {"as_of": "2026-05-04"}, agent).status_code == 403
    assert BillingRun.objects.count() == 1
