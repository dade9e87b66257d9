"""Stripe, offline: PaymentIntents and refunds through the SDK's pluggable HTTP client answering with
recorded responses, and webhooks signed with the real scheme (t=..., v1=HMAC-SHA256 of "t.payload")."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client

from fedele.billing.gateways import base as gateways
from fedele.billing.gateways.stripe import StripeGateway
from fedele.billing.models import GatewayEvent, Invoice, Payment, Refund
from fedele.billing.services import payment_methods, payments, refunds
from fedele.billing.tests import payments_helpers as helpers
from fedele.shared.models import OutboxEvent

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
URL = "/api/v1/billing/webhooks/stripe"


@pytest.fixture(autouse=True)
def _setup(settings: Any) -> Iterator[None]:
    settings.STRIPE_WEBHOOK_SECRET = helpers.WEBHOOK_SECRET
    with time_machine.travel(NOW, tick=False):
        yield
    gateways.register("stripe", StripeGateway)


def _event(name: str, invoice: Invoice) -> bytes:
    text = json.dumps(helpers.fixture(name))
    text = text.replace("INVOICE_ID", str(invoice.public_id)).replace("INVOICE_NUMBER", invoice.number or "")
    text = text.replace("CUSTOMER_ID", str(invoice.customer_snapshot.get("public_id", "")))
    return text.encode()


def _post(payload: bytes, headers: dict[str, str]) -> Any:
    return Client().post(URL, payload, content_type="application/json", **headers)


def _use_recorded(responses: list[tuple[int, dict[str, Any]]]) -> helpers.RecordedStripe:
    client, http = helpers.stripe_client(responses)
    gateways.register("stripe", lambda: StripeGateway(client))
    return http


def _card(account):  # type: ignore[no-untyped-def]
    return payment_methods.card_method_add(
        account=account,
        external_id="pm_1PqVisa4242",
        external_customer_id="cus_QfedeleTest",
        label="Visa 4242",
    )


def test_charge_creates_a_payment_intent_in_minor_units_with_idempotency_key() -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    _card(account)
    http = _use_recorded([(200, helpers.fixture("api_payment_intent_succeeded.json"))])
    outcome = payments.invoice_charge(invoice=invoice)
    assert outcome.status == "succeeded"
    request = http.requests[0]
    assert request["method"] == "post"
    assert request["url"].endswith("/v1/payment_intents")
    body = request["body"]
    assert "amount=12200" in body
    assert "currency=eur" in body
    assert f"metadata[invoice_id]={invoice.public_id}" in body.replace("%5B", "[").replace("%5D", "]")
    assert request["headers"]["Idempotency-Key"] == f"invoice-{invoice.public_id}-attempt-1"
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    payment = Payment.objects.get()
    assert (payment.external_id, payment.gateway, payment.amount, payment.attempt) == (
        "pi_3PqCharged0001",
        "stripe",
        Decimal("122.00"),
        1,
    )


def test_declined_card_records_a_failed_payment_and_the_next_attempt_has_a_new_key() -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    _card(account)
    http = _use_recorded(
        [
            (402, helpers.fixture("api_card_declined.json")),
            (200, helpers.fixture("api_payment_intent_succeeded.json")),
        ]
    )
    outcome = payments.invoice_charge(invoice=invoice)
    assert outcome.status == "failed"
    failed = Payment.objects.get()
    assert (failed.status, failed.failure_code, failed.external_id) == (
        "failed",
        "insufficient_funds",
        "pi_3PqDeclined0001",
    )
    assert OutboxEvent.objects.filter(event_type="billing.payment_failed").count() == 1
    assert payments.invoice_charge(invoice=invoice).status == "succeeded"
    assert http.requests[1]["headers"]["Idempotency-Key"] == f"invoice-{invoice.public_id}-attempt-2"


def test_webhook_succeeded_pays_the_invoice_and_a_replay_changes_nothing() -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    payload = _event("payment_intent_succeeded.json", invoice)
    headers = helpers.signed_headers(payload)
    response = _post(payload, headers)
    assert response.status_code == 200, response.content
    assert response.json()["processed"] is True
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("122.00"))
    replay = _post(payload, helpers.signed_headers(payload))
    assert replay.status_code == 200
    assert replay.json() == {"received": True, "processed": False, "outcome": "duplicate"}
    assert Payment.objects.count() == 1
    assert GatewayEvent.objects.count() == 1
    assert OutboxEvent.objects.filter(event_type="billing.invoice_paid").count() == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_STRIPE_SIGNATURE": "t=1,v1=deadbeef"},
        "wrong-secret",
        "too-old",
    ],
)
def test_bad_or_missing_signature_is_400_and_nothing_is_stored(headers: Any) -> None:
    invoice = helpers.finalised_invoice(helpers.account())
    payload = _event("payment_intent_succeeded.json", invoice)
    if headers == "wrong-secret":
        headers = helpers.signed_headers(payload, secret="whsec_other")
    elif headers == "too-old":
        headers = helpers.signed_headers(payload, timestamp=int(time.time()) - 3600)
    response = _post(payload, headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert GatewayEvent.objects.count() == 0
    assert Payment.objects.count() == 0


def test_tampered_body_does_not_verify() -> None:
    invoice = helpers.finalised_invoice(helpers.account())
    payload = _event("payment_intent_succeeded.json", invoice)
    headers = helpers.signed_headers(payload)
    response = _post(payload.replace(b"12200", b"99900"), headers)
    assert response.status_code == 400
    assert Payment.objects.count() == 0


def test_webhook_payment_failed_records_failure_and_publishes_event() -> None:
    invoice = helpers.finalised_invoice(helpers.account())
    payload = _event("payment_intent_payment_failed.json", invoice)
    response = _post(payload, helpers.signed_headers(payload))
    assert response.status_code == 200
    payment = Payment.objects.get()
    assert (payment.status, payment.failure_code, payment.failure_reason) == (
        "failed",
        "insufficient_funds",
        "Your card has insufficient funds.",
    )
    event = OutboxEvent.objects.get(event_type="billing.payment_failed")
    assert event.payload["invoice_id"] == str(invoice.public_id)
    invoice.refresh_from_db()
    assert invoice.status == "finalised"


def test_charge_refunded_from_the_dashboard_is_booked_once_with_a_credit_note() -> None:
    invoice = helpers.finalised_invoice(helpers.account())
    paid = _event("payment_intent_succeeded.json", invoice)
    _post(paid, helpers.signed_headers(paid))
    refunded = _event("charge_refunded.json", invoice)
    response = _post(refunded, helpers.signed_headers(refunded))
    assert response.status_code == 200, response.content
    refund = Refund.objects.get()
    assert (refund.amount, refund.external_id) == (Decimal("30.00"), "ch_3PqSucceeded0001:3000")
    assert refund.credit_note is not None and refund.credit_note.total == Decimal("30.00")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_credited) == (
        "paid",
        Decimal("92.00"),
        Decimal("30.00"),
    )
    # a different event id reporting the same refunded total books nothing more
    again = refunded.replace(b"evt_3PqRefunded0001", b"evt_3PqRefunded0002")
    assert _post(again, helpers.signed_headers(again)).json()["outcome"] == "already booked"
    assert Refund.objects.count() == 1


def test_refund_made_here_goes_through_stripe_and_the_webhook_then_changes_nothing() -> None:
    invoice = helpers.finalised_invoice(helpers.account())
    paid = _event("payment_intent_succeeded.json", invoice)
    _post(paid, helpers.signed_headers(paid))
    payment = Payment.objects.get()
    http = _use_recorded([(200, helpers.fixture("api_refund_succeeded.json"))])
    refund = refunds.refund_create(payment=payment, amount=Decimal("30.00"), reason="Service outage")
    assert refund.external_id == "re_3PqRefund0001"
    assert "amount=3000" in http.requests[0]["body"]
    assert "payment_intent=pi_3PqSucceeded0001" in http.requests[0]["body"]
    refunded = _event("charge_refunded.json", invoice)
    assert _post(refunded, helpers.signed_headers(refunded)).json()["outcome"] == "already booked"
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("30.00")
    assert Refund.objects.count() == 1
