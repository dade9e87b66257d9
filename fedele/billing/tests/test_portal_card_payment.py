"""Portal card payment through Stripe Checkout (recorded API response, no network): the customer is
sent to Stripe's page for the amount due, and the signed webhook then settles the invoice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.test import Client

from fedele.billing.gateways import base as gateways
from fedele.billing.gateways.stripe import StripeGateway
from fedele.billing.models import Invoice
from fedele.billing.tests import payments_helpers as helpers
from fedele.billing.tests.factories import BillingAccountFactory
from fedele.billing.tests.test_portal import finalised_invoice, portal_login

pytestmark = pytest.mark.django_db
SESSION = {
    "id": "cs_test_a1b2c3",
    "object": "checkout.session",
    "mode": "payment",
    "status": "open",
    "url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
}


@pytest.fixture
def stripe_http(settings: Any) -> Iterator[helpers.RecordedStripe]:
    settings.STRIPE_API_KEY = "sk_test_fedele"
    settings.STRIPE_WEBHOOK_SECRET = helpers.WEBHOOK_SECRET
    client, http = helpers.stripe_client([(200, SESSION)])
    gateways.register("stripe", lambda: StripeGateway(client))
    yield http
    gateways.register("stripe", StripeGateway)


def test_pay_by_card_goes_to_stripe_for_the_amount_due_and_the_webhook_settles_it(
    client: Client, stripe_http: helpers.RecordedStripe
) -> None:
    account = BillingAccountFactory()
    invoice = finalised_invoice(account, "100.00")  # 122.00 with VAT
    portal_login(client, account)
    page = client.get(f"/billing/my/invoices/{invoice.public_id}/").content.decode()
    assert 'id="pay-by-card"' in page
    response = client.post(f"/billing/my/invoices/{invoice.public_id}/pay/")
    assert (response.status_code, response["Location"]) == (302, SESSION["url"])
    request = stripe_http.requests[0]
    sent = parse_qs(request["body"])
    assert request["url"].endswith("/v1/checkout/sessions")
    assert sent["line_items[0][price_data][unit_amount]"] == ["12200"]
    assert sent["line_items[0][price_data][currency]"] == ["eur"]
    assert sent["payment_intent_data[metadata][invoice_id]"] == [str(invoice.public_id)]
    assert request["headers"]["Idempotency-Key"] == f"checkout-{invoice.public_id}-12200"
    # Stripe then calls the webhook for the PaymentIntent the session created.
    event = json.dumps(helpers.fixture("payment_intent_succeeded.json"))
    event = event.replace("INVOICE_ID", str(invoice.public_id)).replace(
        "INVOICE_NUMBER", invoice.number or ""
    )
    payload = event.replace("CUSTOMER_ID", str(account.customer.public_id)).encode()
    delivered = Client().post(
        "/api/v1/billing/webhooks/stripe",
        payload,
        content_type="application/json",
        **helpers.signed_headers(payload),
    )
    assert delivered.status_code == 200
    invoice = Invoice.objects.get(pk=invoice.pk)
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("122.00"))


def test_no_card_payment_for_someone_elses_or_a_paid_invoice(
    client: Client, stripe_http: helpers.RecordedStripe
) -> None:
    mine = BillingAccountFactory()
    portal_login(client, mine)
    theirs = finalised_invoice(BillingAccountFactory(), "10.00")
    assert client.post(f"/billing/my/invoices/{theirs.public_id}/pay/").status_code == 404
    paid = finalised_invoice(mine, "10.00")
    Invoice.objects.filter(pk=paid.pk).update(status="paid", amount_paid=Decimal("12.20"))
    assert 'id="pay-by-card"' not in client.get(f"/billing/my/invoices/{paid.public_id}/").content.decode()
    response = client.post(f"/billing/my/invoices/{paid.public_id}/pay/")
    assert response.status_code == 302 and "checkout.stripe.com" not in response["Location"]
    assert stripe_http.requests == []


def test_without_stripe_only_bank_transfer_is_offered(client: Client, settings: Any) -> None:
    settings.STRIPE_API_KEY = ""
    account = BillingAccountFactory()
    invoice = finalised_invoice(account, "10.00")
    portal_login(client, account)
    page = client.get(f"/billing/my/invoices/{invoice.public_id}/").content.decode()
    assert 'id="pay-by-card"' not in page and 'data-field="iban"' in page
