"""Payments API and the account statement: exact figures, scoping (portal customers see only their
own, others get 404), permissions, CSV, bank import upload, dunning queue."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.billing.models import Payment
from fedele.billing.selectors.statements import account_statement, statement_csv
from fedele.billing.services import payments, refunds, settlement
from fedele.billing.tests import payments_helpers as helpers
from fedele.customers.tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
BASE = "/api/v1/billing"


@pytest.fixture(autouse=True)
def _frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def clerk() -> dict[str, str]:
    return auth_header(user_with_roles("billing_clerk"))


def _post(path: str, body: Any, headers: dict[str, str]) -> Any:
    return Client().post(f"{BASE}{path}", json.dumps(body), content_type="application/json", **headers)


def _history():  # type: ignore[no-untyped-def]
    """Invoice 122.00 (Jan 5), payment 150.00 (Jan 20: 28.00 to credit), invoice 61.00 (Feb 5, 28.00
    of credit applied), refund 10.00 from credit? no: refund 20.00 (Mar 1) of the first payment."""
    account = helpers.account()
    with time_machine.travel(datetime(2026, 1, 5, 9, tzinfo=UTC), tick=False):
        first = helpers.finalised_invoice(account, "100.00")
    with time_machine.travel(datetime(2026, 1, 20, 9, tzinfo=UTC), tick=False):
        payment = payments.payment_record(
            account=account,
            amount=Decimal("150.00"),
            currency="EUR",
            method="bank_transfer",
            received_on=date(2026, 1, 20),
            external_id="CRO-1",
            invoice=first,
        )
    with time_machine.travel(datetime(2026, 2, 5, 9, tzinfo=UTC), tick=False):
        second = helpers.finalised_invoice(account, "50.00")
    with time_machine.travel(datetime(2026, 3, 1, 9, tzinfo=UTC), tick=False):
        refunds.refund_create(payment=payment, amount=Decimal("20.00"), reason="Goodwill")
    return account, first, second, payment


def test_statement_running_balance_exact_figures() -> None:
    account, _first, second, _payment = _history()
    second.refresh_from_db()
    assert (second.amount_credited, second.amount_due) == (Decimal("28.00"), Decimal("33.00"))
    statement = account_statement(account)
    rows = [(e.on, e.kind, e.debit, e.credit, e.balance) for e in statement.entries if e.debit or e.credit]
    assert rows == [
        (date(2026, 1, 5), "invoice", Decimal("122.00"), Decimal("0"), Decimal("122.00")),
        (date(2026, 1, 20), "payment", Decimal("0"), Decimal("150.00"), Decimal("-28.00")),
        (date(2026, 2, 5), "invoice", Decimal("61.00"), Decimal("0"), Decimal("33.00")),
        (date(2026, 3, 1), "credit_note", Decimal("0"), Decimal("20.00"), Decimal("13.00")),
        (date(2026, 3, 1), "refund", Decimal("20.00"), Decimal("0"), Decimal("33.00")),
    ]
    assert statement.balance == Decimal("33.00") == second.amount_due
    assert (statement.total_debit, statement.total_credit) == (Decimal("203.00"), Decimal("170.00"))
    info = [e.kind for e in statement.entries if not (e.debit or e.credit)]
    assert info == ["credit", "credit"]  # the overpayment credit and its use on the second invoice
    csv_text = statement_csv(statement)
    assert csv_text.splitlines()[0] == "date;kind;reference;description;debit;credit;balance"
    assert "2026-01-20;payment;CRO-1;" in csv_text and ";0,00;150,00;-28,00" in csv_text
    opening = account_statement(account, date_from=date(2026, 2, 1))
    assert opening.entries[0].kind == "opening" and opening.entries[0].balance == Decimal("-28.00")
    assert opening.balance == Decimal("33.00")


def test_record_payment_api_and_idempotent_reference(clerk: dict[str, str]) -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    body = {
        "customer_id": str(account.customer.public_id),
        "amount": "122.00",
        "received_on": "2026-03-09",
        "reference": "CRO-77",
        "invoice_id": str(invoice.public_id),
    }
    response = _post("/payments", body, clerk)
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["amount"], data["status"], data["allocations"][0]["invoice_number"]) == (
        "122.00",
        "succeeded",
        invoice.number,
    )
    assert _post("/payments", body, clerk).json()["id"] == data["id"]
    assert Payment.objects.count() == 1
    bad = _post("/payments", {**body, "reference": "CRO-78", "currency": "USD"}, clerk)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "currency_mismatch"
    unknown = _post("/payments", {**body, "extra": 1}, clerk)
    assert unknown.status_code == 422
    assert Payment.objects.count() == 1


def test_refund_api_and_viewer_cannot_write(clerk: dict[str, str]) -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    payment = payments.payment_record(
        account=account,
        amount=Decimal("122.00"),
        currency="EUR",
        method="cash",
        received_on=date(2026, 3, 9),
        external_id="R-9",
        invoice=invoice,
    )
    # a supervisor may view billing but not manage it
    viewer = auth_header(user_with_roles("supervisor"))
    assert _post(f"/payments/{payment.public_id}/refunds", {"reason": "x"}, viewer).status_code == 403
    too_much = _post(f"/payments/{payment.public_id}/refunds", {"amount": "122.01", "reason": "x"}, clerk)
    assert too_much.status_code == 422
    response = _post(
        f"/payments/{payment.public_id}/refunds", {"amount": "12.20", "reason": "Late delivery"}, clerk
    )
    assert response.status_code == 201
    assert response.json()["amount"] == "12.20"
    assert response.json()["credit_note_number"]


def test_portal_customer_sees_only_own_payments_and_statement() -> None:
    account = helpers.account()
    other = helpers.account()
    portal_user = user_with_roles("portal_customer")
    ContactFactory(customer=account.customer, portal_user=portal_user)
    mine = payments.payment_record(
        account=account,
        amount=Decimal("5.00"),
        currency="EUR",
        method="cash",
        received_on=date(2026, 3, 9),
        external_id="A",
    )
    theirs = payments.payment_record(
        account=other,
        amount=Decimal("6.00"),
        currency="EUR",
        method="cash",
        received_on=date(2026, 3, 9),
        external_id="B",
    )
    headers = auth_header(portal_user)
    client = Client()
    listed = client.get(f"{BASE}/payments", **headers).json()
    assert [item["id"] for item in listed["items"]] == [str(mine.public_id)]
    assert client.get(f"{BASE}/payments/{theirs.public_id}", **headers).status_code == 404
    assert client.get(f"{BASE}/customers/{other.customer.public_id}/statement", **headers).status_code == 404
    statement = client.get(f"{BASE}/customers/{account.customer.public_id}/statement", **headers)
    assert statement.status_code == 200
    assert statement.json()["balance"] == "-5.00"
    csv_response = client.get(f"{BASE}/customers/{account.customer.public_id}/statement.csv", **headers)
    assert csv_response["Content-Type"].startswith("text/csv")
    assert _post("/payments", {}, headers).status_code in (403, 422)


def test_payment_list_query_count_does_not_grow(clerk: dict[str, str]) -> None:
    for number in range(3):
        payments.payment_record(
            account=helpers.account(),
            amount=Decimal("1.00"),
            currency="EUR",
            method="cash",
            received_on=date(2026, 3, 9),
            external_id=f"Q-{number}",
        )
    client = Client()
    client.get(f"{BASE}/payments", **clerk)
    with CaptureQueriesContext(connection) as few:
        assert len(client.get(f"{BASE}/payments?limit=200", **clerk).json()["items"]) == 3
    for number in range(5):
        payments.payment_record(
            account=helpers.account(),
            amount=Decimal("1.00"),
            currency="EUR",
            method="cash",
            received_on=date(2026, 3, 9),
            external_id=f"P-{number}",
        )
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(f"{BASE}/payments?limit=200", **clerk).json()["items"]) == 8
    assert len(many) == len(few)


def test_bank_statement_upload_and_confirm(clerk: dict[str, str]) -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    content = f"data;importo;causale;riferimento\n02/03/2026;122,00;SALDO {invoice.number};CRO9\n".encode()
    response = Client().post(
        f"{BASE}/bank-statements", {"file": SimpleUploadedFile("s.csv", content)}, **clerk
    )
    assert response.status_code == 201, response.content
    line = response.json()["lines"][0]
    assert (line["status"], line["matched_invoice_number"]) == ("matched", invoice.number)
    confirmed = _post(f"/bank-statement-lines/{line['id']}/confirm", {}, clerk)
    assert confirmed.status_code == 201
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    bad = Client().post(
        f"{BASE}/bank-statements",
        {"file": SimpleUploadedFile("s.csv", b"data;importo;causale;riferimento\nx;y;z;\n")},
        **clerk,
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"] == {"line 2": ["date 'x' is not a date (expected dd/mm/yyyy)"]}


def test_mandate_api_validates_iban(clerk: dict[str, str]) -> None:
    account = helpers.account()
    path = f"/customers/{account.customer.public_id}/sepa-mandates"
    bad = _post(
        path,
        {"iban": "IT00X0542811101000000123456", "debtor_name": "Rossi", "signed_on": "2026-01-01"},
        clerk,
    )
    assert bad.status_code == 422
    assert "iban" in bad.json()["error"]["fields"]
    good = _post(
        path,
        {"iban": "IT60X0542811101000000123456", "debtor_name": "Rossi", "signed_on": "2026-01-01"},
        clerk,
    )
    assert good.status_code == 201
    assert good.json()["sequence"] == "FRST"
    methods = Client().get(f"{BASE}/customers/{account.customer.public_id}/payment-methods", **clerk).json()
    assert [(m["kind"], m["is_default"]) for m in methods] == [("sepa_debit", True)]


def test_dunning_cases_api_lists_queue(clerk: dict[str, str]) -> None:
    account = helpers.account()
    with time_machine.travel(datetime(2026, 1, 5, 9, tzinfo=UTC), tick=False):
        helpers.finalised_invoice(account)
    from fedele.billing.services import dunning

    dunning.cases_open(today=date(2026, 3, 10))
    data = Client().get(f"{BASE}/dunning/cases?status=open", **clerk).json()
    assert [(c["amount_due"], c["status"], c["due_date"]) for c in data["items"]] == [
        ("122.00", "open", "2026-02-04")
    ]
    assert settlement  # the module is what settles; imported for readers
