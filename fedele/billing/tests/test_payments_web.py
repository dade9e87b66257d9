"""Payment pages: list, record form with field errors, refund action, methods and mandates,
reconciliation upload, dunning and collections queues, statement page and CSV."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import NoReverseMatch, reverse

from fedele.accounts.tests.factories import user_with_roles
from fedele.billing.models import BankStatementLine, DunningCase, Payment
from fedele.billing.services import dunning, payments
from fedele.billing.tests import payments_helpers as helpers
from fedele.shared import navigation

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


MY_NAV = {"billing:payments", "billing:reconciliation", "billing:dunning", "billing:collections"}


@pytest.fixture(autouse=True)
def _only_resolvable_navigation(monkeypatch: pytest.MonkeyPatch) -> None:
    """These pages render the whole billing menu; an entry another area registered before its page
    exists must not fail these tests. This area's own entries must all resolve."""
    section = navigation.SECTIONS["billing"]
    resolvable = []
    for item in section.items:
        try:
            reverse(item.url_name)
        except NoReverseMatch:
            assert item.url_name not in MY_NAV
            continue
        resolvable.append(item)
    assert {item.url_name for item in resolvable} >= MY_NAV
    monkeypatch.setattr(section, "items", resolvable)


@pytest.fixture
def clerk_client() -> Client:
    client = Client()
    client.force_login(user_with_roles("billing_clerk"))
    return client


def test_record_payment_form_and_list(clerk_client: Client) -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    data = {
        "customer_id": str(account.customer.public_id),
        "invoice_number": invoice.number,
        "amount": "122.00",
        "currency": "EUR",
        "method": "bank_transfer",
        "received_on": "2026-03-09",
        "reference": "CRO-W1",
    }
    bad = clerk_client.post("/billing/payments/new/", {**data, "received_on": "2026-03-20"})
    assert bad.status_code == 422
    assert b"is-invalid" in bad.content
    assert Payment.objects.count() == 0
    response = clerk_client.post("/billing/payments/new/", data)
    assert response.status_code == 302
    payment = Payment.objects.get()
    assert response["Location"] == f"/billing/payments/{payment.public_id}/"
    listing = clerk_client.get("/billing/payments/")
    assert listing.status_code == 200
    assert b"CRO-W1" in listing.content
    refund = clerk_client.post(
        f"/billing/payments/{payment.public_id}/", {"amount": "22.00", "reason": "Goodwill"}
    )
    assert refund.status_code == 302
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("22.00")
    too_much = clerk_client.post(f"/billing/payments/{payment.public_id}/", {"amount": "500", "reason": "x"})
    assert too_much.status_code == 422


def test_methods_page_registers_mandate(clerk_client: Client) -> None:
    account = helpers.account()
    url = f"/billing/accounts/{account.customer.public_id}/payment-methods/"
    assert clerk_client.get(url).status_code == 200
    bad = clerk_client.post(url, {"iban": "IT00", "debtor_name": "Rossi", "signed_on": "2026-01-01"})
    assert bad.status_code == 422
    good = clerk_client.post(
        url, {"iban": "IT60X0542811101000000123456", "debtor_name": "Rossi", "signed_on": "2026-01-01"}
    )
    assert good.status_code == 302
    assert b"IT60X0542811101000000123456" in clerk_client.get(url).content


def test_reconciliation_upload_and_confirm(clerk_client: Client) -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    content = f"data;importo;causale;riferimento\n02/03/2026;122,00;SALDO {invoice.number};CRO9\n".encode()
    response = clerk_client.post("/billing/reconciliation/", {"file": SimpleUploadedFile("s.csv", content)})
    assert response.status_code == 302
    page = clerk_client.get("/billing/reconciliation/")
    assert (invoice.number or "").encode() in page.content
    line = BankStatementLine.objects.get()
    clerk_client.post(
        f"/billing/reconciliation/lines/{line.public_id}/", {"action": "confirm", "invoice_number": ""}
    )
    invoice.refresh_from_db()
    assert invoice.status == "paid"


def test_queues_and_statement_pages(clerk_client: Client) -> None:
    account = helpers.account()
    with time_machine.travel(datetime(2026, 1, 5, 9, tzinfo=UTC), tick=False):
        invoice = helpers.finalised_invoice(account)
    dunning.cases_open(today=date(2026, 3, 10))
    page = clerk_client.get("/billing/dunning/")
    assert page.status_code == 200 and (invoice.number or "").encode() in page.content
    assert (invoice.number or "").encode() not in clerk_client.get("/billing/collections/").content
    case = DunningCase.objects.get()
    clerk_client.post(f"/billing/dunning/{case.public_id}/close/", {"reason": "payment plan agreed"})
    case.refresh_from_db()
    assert (case.status, case.close_reason) == ("closed", "payment plan agreed")
    payments.payment_record(
        account=account,
        amount=Decimal("22.00"),
        currency="EUR",
        method="cash",
        received_on=date(2026, 3, 9),
        external_id="C-1",
    )
    statement = clerk_client.get(f"/billing/accounts/{account.customer.public_id}/statement/")
    assert statement.status_code == 200
    assert b"100.00" in statement.content
    csv_response = clerk_client.get(f"/billing/accounts/{account.customer.public_id}/statement/?format=csv")
    assert csv_response.content.decode().strip().splitlines()[-1].endswith(";100,00")


def test_viewer_cannot_record_and_portal_customer_gets_no_pages() -> None:
    viewer = Client()
    viewer.force_login(user_with_roles("supervisor"))
    assert viewer.get("/billing/payments/").status_code == 200
    assert viewer.get("/billing/payments/new/").status_code == 403
    portal = Client()
    portal.force_login(user_with_roles("portal_customer"))
    assert portal.get("/billing/payments/").status_code == 403
