"""Invoice pages and billing-run pages: content, actions, permissions, htmx partials."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.billing.models import BillingRun, Invoice
from fedele.billing.services.invoicing import invoice_create_draft, invoice_finalise, invoice_line_add
from fedele.billing.tests.invoicing_helpers import italian_consumer_account, monthly

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def _frozen(time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(datetime(2026, 6, 1, 9, 0, tzinfo=UTC), tick=False)


@pytest.fixture
def clerk(client: Client) -> Client:
    client.force_login(user_with_roles("billing_clerk"))
    return client


def draft(amount: str = "100") -> Invoice:
    invoice = invoice_create_draft(account=italian_consumer_account())
    invoice_line_add(invoice=invoice, description="Consulting", unit_amount=D(amount))
    invoice.refresh_from_db()
    return invoice


def test_list_shows_invoices_and_filters(clerk: Client) -> None:
    issued = invoice_finalise(invoice=draft())
    draft("5")
    page = clerk.get("/billing/invoices/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "INV-2026-000001" in html and "122.00 EUR" in html
    only_open = clerk.get(
        "/billing/invoices/?status=finalised", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="invoice-results"
    )
    body = only_open.content.decode()
    assert "<html" not in body and "INV-2026-000001" in body and "6.10" not in body
    assert str(issued.number) in clerk.get("/billing/invoices/?q=000001").content.decode()


def test_detail_finalise_credit_and_documents(clerk: Client) -> None:
    invoice = draft()
    page = clerk.get(f"/billing/invoices/{invoice.public_id}/")
    assert page.status_code == 200 and 'id="finalise-button"' in page.content.decode()
    response = clerk.post(f"/billing/invoices/{invoice.public_id}/finalise/")
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.number == "INV-2026-000001"
    response = clerk.post(
        f"/billing/invoices/{invoice.public_id}/credit-note/", {"amount": "22,00", "reason": "Sconto"}
    )
    note = Invoice.objects.get(kind="credit_note")
    assert response["Location"] == f"/billing/invoices/{note.public_id}/"
    assert note.total == D("22.00")
    html = clerk.get(f"/billing/invoices/{invoice.public_id}/").content.decode()
    assert "NC-2026-000001" in html and "100.00 EUR" in html  # amount due after the credit
    pdf = clerk.get(f"/billing/invoices/{invoice.public_id}/pdf/")
    assert (pdf.status_code, pdf.content[:5]) == (200, b"%PDF-")
    xml = clerk.get(f"/billing/invoices/{invoice.public_id}/xml/")
    assert xml.status_code == 200 and b"FPR12" in xml.content


def test_bad_credit_note_shows_the_error_and_writes_nothing(clerk: Client) -> None:
    invoice = invoice_finalise(invoice=draft())
    response = clerk.post(
        f"/billing/invoices/{invoice.public_id}/credit-note/", {"amount": "abc", "reason": "x"}, follow=True
    )
    assert "Enter an amount like 12.50." in response.content.decode()
    assert not Invoice.objects.filter(kind="credit_note").exists()


def test_void_a_draft_redirects_to_the_list(clerk: Client) -> None:
    invoice = draft()
    response = clerk.post(f"/billing/invoices/{invoice.public_id}/void/", {"reason": "typo"})
    assert response["Location"] == "/billing/invoices/"
    assert not Invoice.objects.exists()


def test_agents_can_read_but_not_act_and_portal_users_are_refused(client: Client) -> None:
    invoice = draft()
    client.force_login(user_with_roles("agent"))
    page = client.get(f"/billing/invoices/{invoice.public_id}/")
    assert page.status_code == 200 and 'id="finalise-button"' not in page.content.decode()
    assert client.post(f"/billing/invoices/{invoice.public_id}/finalise/").status_code == 403
    invoice.refresh_from_db()
    assert invoice.number is None
    client.force_login(user_with_roles("portal_customer"))
    assert client.get("/billing/invoices/").status_code == 403
    assert client.get(f"/billing/invoices/{invoice.public_id}/").status_code == 403


def test_run_now_and_live_progress(clerk: Client, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    monthly("10.00", start=date(2026, 6, 1))
    page = clerk.get("/billing/runs/")
    assert 'id="run-now-button"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = clerk.post("/billing/runs/", {"as_of": "2026-06-01"})
    run = BillingRun.objects.get()
    assert response["Location"] == f"/billing/runs/{run.public_id}/"
    assert (run.status, run.invoices_created) == ("completed", 1)
    partial = clerk.get(f"/billing/runs/{run.public_id}/", HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert "<html" not in body and 'aria-valuenow="100"' in body and "every 2s" not in body
    future = clerk.post("/billing/runs/", {"as_of": "2026-06-02"}, follow=True)
    assert "A billing run cannot be dated in the future." in future.content.decode()
    assert BillingRun.objects.count() == 1


def test_running_run_polls(clerk: Client) -> None:
    run = BillingRun.objects.create(
        as_of=date(2026, 6, 1),
        status="running",
        subscriptions_due=10,
        subscriptions_processed=4,
        created_at=datetime(2026, 6, 1, tzinfo=UTC),
    )
    body = clerk.get(f"/billing/runs/{run.public_id}/").content.decode()
    assert 'hx-trigger="every 2s"' in body and 'aria-valuenow="40"' in body


def test_agents_cannot_start_runs(client: Client) -> None:
    client.force_login(user_with_roles("agent"))
    assert 'id="run-now-button"' not in client.get("/billing/runs/").content.decode()
    assert client.post("/billing/runs/", {"as_of": "2026-06-01"}).status_code == 403
    assert not BillingRun.objects.exists()
