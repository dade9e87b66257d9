"""Clerk pages for quotes, orders and entitlements, and the customer's public accept page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.billing.models import Entitlement, Order, ProvisioningStep, Quote, Subscription
from fedele.billing.services.provisioning import StepSpec, register_kind
from fedele.billing.services.quote_pricing import LineInput
from fedele.billing.services.quotes import accept_token, quote_create, quote_send
from fedele.billing.tests.factories import BillingAccountFactory, ProductFactory
from fedele.billing.tests.test_orders import seat_plan
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def clerk() -> Client:
    client = Client()
    client.force_login(user_with_roles("billing_clerk"))
    return client


def _sent_quote(language: str = "it", valid_until: date = date(2026, 3, 31)) -> Quote:
    account = BillingAccountFactory(customer=CustomerFactory(language=language))
    quote = quote_create(
        account=account,
        lines=[
            LineInput(plan_version=seat_plan(), quantity=Decimal(2)),
            LineInput(product=ProductFactory(name="Installazione"), unit_amount=Decimal("99.99")),
        ],
        valid_until=valid_until,
        language=language,
    )
    return quote_send(quote=quote, to_email="cliente@example.it", accept_url="https://example.it/x")


def _editor_post(customer: str, plan_item: str, product_item: str, **extra: str) -> dict[str, str]:
    return {
        "customer": customer,
        "currency": "EUR",
        "language": "it",
        "valid_until": "2026-03-31",
        "discount_percent": "2,5",
        "notes": "Offerta riservata",
        "lines-0-item": plan_item,
        "lines-0-quantity": "2",
        "lines-0-discount_percent": "0",
        # a gap in the row numbers: a row removed in the browser
        "lines-3-item": product_item,
        "lines-3-quantity": "1",
        "lines-3-unit_amount": "99,99",
        "lines-3-discount_percent": "33.33",
        **extra,
    }


def test_quote_editor_creates_with_live_totals_and_reports_errors(clerk: Client) -> None:
    customer = CustomerFactory()
    version = seat_plan()
    product = ProductFactory(name="Installation")
    data = _editor_post(str(customer.public_id), f"plan:{version.pk}", f"product:{product.pk}")

    totals = clerk.post("/billing/quotes/totals/", data, HTTP_HX_REQUEST="true")
    assert totals.status_code == 200
    html = totals.content.decode()
    assert 'id="total-subtotal">141.66 EUR' in html
    assert 'id="total-discount">-3.54 EUR' in html
    assert 'id="total-total">138.12 EUR' in html
    assert Quote.objects.count() == 0  # previewing writes nothing

    row = clerk.get("/billing/quotes/line/?index=7&currency=EUR", HTTP_HX_REQUEST="true")
    assert 'name="lines-7-item"' in row.content.decode()
    assert f'value="plan:{version.pk}"' in row.content.decode()

    bad = clerk.post("/billing/quotes/new/", {**data, "lines-3-unit_amount": "", "valid_until": "2026-03-01"})
    assert bad.status_code == 422
    page = bad.content.decode()
    assert "is required for a product line." in page or "must be today or later." in page
    assert Quote.objects.count() == 0

    unknown = clerk.post("/billing/quotes/new/", {**data, "customer": "not-a-customer"})
    assert unknown.status_code == 422
    assert "Choose a customer." in unknown.content.decode()
    assert clerk.get("/billing/quotes/new/?customer=garbage").status_code == 200
    assert clerk.get("/billing/entitlements/?customer=garbage").status_code == 200
    assert Quote.objects.count() == 0

    created = clerk.post("/billing/quotes/new/", data)
    assert created.status_code == 302
    quote = Quote.objects.get()
    assert created["Location"] == f"/billing/quotes/{quote.public_id}/"
    assert (quote.number, quote.subtotal, quote.discount_amount, quote.total, quote.notes) == (
        "Q-2026-000001",
        Decimal("141.66"),
        Decimal("3.54"),
        Decimal("138.12"),
        "Offerta riservata",
    )
    detail = clerk.get(created["Location"]).content.decode()
    assert 'id="quote-total">138.12 EUR' in detail

    # the editor shows the saved lines (without the generated setup-fee line) and saves a change
    editor = clerk.get(f"/billing/quotes/{quote.public_id}/edit/").content.decode()
    assert editor.count('class="quote-line ') == 2
    changed = clerk.post(
        f"/billing/quotes/{quote.public_id}/edit/",
        {**data, "discount_percent": "0", "lines-0-quantity": "3"},
    )
    assert changed.status_code == 302
    quote.refresh_from_db()
    assert (quote.subtotal, quote.total) == (Decimal("154.16"), Decimal("154.16"))  # 37.50 + 50 + 66.66


def test_quote_list_filters_and_send_and_accept_on_behalf(
    clerk: Client, django_capture_on_commit_callbacks: Any
) -> None:
    sent = _sent_quote()
    draft = quote_create(
        account=BillingAccountFactory(),
        lines=[LineInput(plan_version=seat_plan())],
        valid_until=date(2026, 3, 20),
    )
    listing = clerk.get("/billing/quotes/?status=draft").content.decode()
    assert draft.number in listing and sent.number not in listing
    partial = clerk.get("/billing/quotes/?status=sent", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results")
    assert sent.number in partial.content.decode()
    assert "<html" not in partial.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = clerk.post(f"/billing/quotes/{draft.public_id}/send/", {"to_email": "buyer@example.it"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.sent_to) == ("sent", "buyer@example.it")
    link = f"http://testserver/billing/q/{accept_token(draft)}/"
    assert link in mail.outbox[-1].body
    assert link in clerk.get(f"/billing/quotes/{draft.public_id}/").content.decode()

    pdf = clerk.get(f"/billing/quotes/{draft.public_id}/pdf/?language=en")
    assert (pdf.status_code, pdf["Content-Type"]) == (200, "application/pdf")

    accepted = clerk.post(f"/billing/quotes/{sent.public_id}/accept/")
    assert accepted.status_code == 302
    sent.refresh_from_db()
    assert sent.status == "accepted"
    order = Order.objects.get(quote=sent)
    assert order.total == Decimal("174.99")  # 25.00 + 50.00 setup + 99.99
    again = clerk.post(f"/billing/quotes/{sent.public_id}/accept/", follow=True)
    assert "is accepted" in again.content.decode()
    assert Order.objects.count() == 1


def test_pages_refuse_viewers_without_billing_permission() -> None:
    quote = _sent_quote()
    client = Client()
    assert client.get("/billing/quotes/").status_code == 302  # to the login page
    client.force_login(user_with_roles("technician"))
    for url in (
        "/billing/quotes/",
        f"/billing/quotes/{quote.public_id}/",
        "/billing/orders/",
        "/billing/entitlements/",
    ):
        assert client.get(url).status_code == 403
    analyst = Client()
    analyst.force_login(user_with_roles("analyst"))
    assert analyst.get(f"/billing/quotes/{quote.public_id}/").status_code == 200
    assert analyst.post(f"/billing/quotes/{quote.public_id}/accept/").status_code == 403
    assert analyst.get("/billing/quotes/new/").status_code == 403
    quote.refresh_from_db()
    assert quote.status == "sent"


def test_order_pages_with_step_retry_and_mark_done(clerk: Client) -> None:
    register_kind(
        "test_web_manual_then_http",
        [StepSpec("survey", "manual"), StepSpec("notify", "http", {"url": "http://10.0.0.1/hook"})],
    )
    from fedele.billing.services.orders import order_create

    product = ProductFactory(name="Fibra", provisioning_kind="test_web_manual_then_http")
    order = order_create(
        account=BillingAccountFactory(), lines=[LineInput(product=product, unit_amount=Decimal(10))]
    ).order
    listing = clerk.get("/billing/orders/?status=fulfilling").content.decode()
    assert order.number in listing
    assert order.number not in clerk.get("/billing/orders/?status=completed").content.decode()
    survey, notify = ProvisioningStep.objects.order_by("position")
    page = clerk.get(f"/billing/orders/{order.public_id}/").content.decode()
    assert f"/billing/orders/steps/{survey.public_id}/complete/" in page
    assert f"/billing/orders/steps/{notify.public_id}/retry/" not in page  # not failed yet

    done = clerk.post(f"/billing/orders/steps/{survey.public_id}/complete/", {"identifier": "SV-9"})
    assert done.status_code == 302
    survey.refresh_from_db()
    notify.refresh_from_db()
    assert (survey.status, survey.result) == ("succeeded", {"identifier": "SV-9"})
    assert (notify.status, notify.attempts) == ("failed", 1)
    page = clerk.get(f"/billing/orders/{order.public_id}/").content.decode()
    assert f"/billing/orders/steps/{notify.public_id}/retry/" in page
    assert notify.last_error in page

    retried = clerk.post(f"/billing/orders/steps/{notify.public_id}/retry/", follow=True)
    notify.refresh_from_db()
    assert notify.attempts == 2
    assert "did not succeed" in retried.content.decode()
    refused = clerk.post(f"/billing/orders/steps/{survey.public_id}/complete/", follow=True)
    assert "already done" in refused.content.decode()

    entitlements = clerk.get(f"/billing/entitlements/?customer={order.account.customer.public_id}")
    assert "Fibra" in entitlements.content.decode()
    assert Entitlement.objects.get().status == "provisioning"


def test_public_page_accept_with_confirmation_in_the_customer_language() -> None:
    quote = _sent_quote(language="en")
    token = accept_token(quote)
    client = Client()  # no login
    page = client.get(f"/billing/q/{token}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"Quote {quote.number}" in html
    assert 'id="public-total">174.99 EUR' in html
    assert "Accept the quote" in html
    assert "2 × 12.50 EUR" in html and "Setup fee: Office" in html
    assert 'lang="en"' in html and "March 31, 2026" in html  # the quote's language, not the browser's
    italian = client.get(f"/billing/q/{token}/?lang=it").content.decode()
    assert '<main class="auth-main" id="main" lang="it">' in italian
    assert "31 Marzo 2026" in italian
    confirm = client.get(f"/billing/q/{token}/?lang=en&confirm=accept").content.decode()
    assert 'id="confirm-accept"' in confirm
    assert Order.objects.count() == 0  # showing the confirmation writes nothing

    accepted = client.post(f"/billing/q/{token}/accept/", {"lang": "en"})
    assert accepted.status_code == 302
    assert accepted["Location"] == f"/billing/q/{token}/done/?lang=en"
    done = client.get(accepted["Location"])
    order = Order.objects.get(quote=quote)
    assert order.number in done.content.decode()
    assert Subscription.objects.filter(account=quote.account).count() == 1
    # the link is used: the page and a second answer both say so (410), nothing more is written
    used = client.get(f"/billing/q/{token}/")
    assert used.status_code == 410
    assert "already answered" in used.content.decode()
    assert client.post(f"/billing/q/{token}/decline/").status_code == 410
    assert client.get(accepted["Location"]).status_code == 200  # the result page can be reloaded
    assert Order.objects.count() == 1
    assert AuditLog.objects.filter(action="billing.quote.accepted").count() == 1


def test_public_page_tampered_expired_and_decline() -> None:
    quote = _sent_quote(valid_until=date(2026, 3, 10))
    token = accept_token(quote)
    client = Client()
    tampered = client.get(f"/billing/q/{token[:-3]}xyz/")
    assert tampered.status_code == 400
    assert "Traceback" not in tampered.content.decode()
    assert client.post(f"/billing/q/{token[:-3]}xyz/accept/").status_code == 400
    assert client.get("/billing/q/not-a-token/done/").status_code == 400

    declined = client.post(f"/billing/q/{token}/decline/", {"note": "Troppo caro", "lang": "it"})
    assert declined.status_code == 302
    quote.refresh_from_db()
    assert (quote.status, quote.decision_note) == ("declined", "Troppo caro")
    assert Order.objects.count() == 0

    other = _sent_quote(valid_until=date(2026, 3, 10))
    other_token = accept_token(other)
    with time_machine.travel(datetime(2026, 3, 10, 23, 0, tzinfo=UTC), tick=False):  # midnight in Rome
        expired = client.get(f"/billing/q/{other_token}/?lang=en")
        assert expired.status_code == 410
        assert "This quote has expired" in expired.content.decode()
        assert client.post(f"/billing/q/{other_token}/accept/").status_code == 410
    other.refresh_from_db()
    assert other.status == "sent"
    assert Order.objects.count() == 0
