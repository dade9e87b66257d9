"""Helpers for the payments, refunds, reconciliation and dunning tests: real finalised invoices (made
through the invoicing service), a fake Stripe HTTP client replaying recorded responses, and Stripe
webhook signing with the real scheme."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import stripe

from fedele.billing.models import BillingAccount, Invoice
from fedele.billing.services import invoicing
from fedele.billing.tests.factories import BillingAccountFactory

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
WEBHOOK_SECRET = "whsec_test_fedele"


def account(**fields: Any) -> BillingAccount:
    result: BillingAccount = BillingAccountFactory(**fields)
    return result


def finalised_invoice(
    billing_account: BillingAccount, net: str = "100.00", *, vat_rate: str = "22"
) -> Invoice:
    """A finalised invoice of one line: net 100.00 at 22% is a total of 122.00."""
    draft = invoicing.invoice_create_draft(account=billing_account)
    invoicing.invoice_line_add(
        invoice=draft,
        description="Service",
        unit_amount=Decimal(net),
        vat_rate=Decimal(vat_rate),
        vat_nature="" if Decimal(vat_rate) else "N2.2",
    )
    return invoicing.invoice_finalise(invoice=draft)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def signed_headers(
    payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """Stripe's scheme: t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload" with the endpoint secret>."""
    moment = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{moment}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"HTTP_STRIPE_SIGNATURE": f"t={moment},v1={signature}"}


class RecordedStripe(stripe.HTTPClient):
    """Answers the SDK's requests from recorded responses, in order, and remembers what was asked."""

    name = "recorded"

    def __init__(self, responses: list[tuple[int, Mapping[str, Any]]]) -> None:
        super().__init__()
        self.responses = list(responses)
        self.requests: list[dict[str, Any]] = []

    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None, **_: Any
    ) -> tuple[str, int, Mapping[str, str]]:
        self.requests.append(
            {"method": method, "url": url, "headers": dict(headers or {}), "body": post_data or ""}
        )
        status, body = self.responses.pop(0)
        return json.dumps(body), status, {"request-id": f"req_{len(self.requests)}"}

    def close(self) -> None:
        return None


def stripe_client(
    responses: list[tuple[int, Mapping[str, Any]]],
) -> tuple[stripe.StripeClient, RecordedStripe]:
    http = RecordedStripe(responses)
    return stripe.StripeClient("sk_test_fedele", http_client=http, max_network_retries=0), http
