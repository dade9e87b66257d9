"""Stripe: PaymentIntents for invoices, refunds, and webhook signature checks.

All calls go through ``stripe.StripeClient`` so tests plug in an HTTP client returning recorded
responses (no network) and production uses the SDK's default one with the key from the environment.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import stripe as stripe_sdk
from django.conf import settings

from fedele.billing.gateways.base import ChargeRequest, GatewayResult, ResultStatus, register
from fedele.shared.errors import ValidationFailed
from fedele.shared.money import Money


def setting(name: str) -> str:
    return str(getattr(settings, name, "") or os.environ.get(name, ""))


def to_minor_units(amount: Decimal, currency: str) -> int:
    return Money(amount, currency).minor_units


def from_minor_units(minor: int, currency: str) -> Decimal:
    return Money.from_minor_units(minor, currency.upper()).amount


def _plain(resource: Any) -> dict[str, Any]:
    result: dict[str, Any] = resource.to_dict() if hasattr(resource, "to_dict") else dict(resource)
    return result


def _result_of_intent(resource: Any) -> GatewayResult:
    intent = _plain(resource)
    currency = str(intent["currency"]).upper()
    amount = from_minor_units(int(intent["amount"]), currency)
    status = str(intent["status"])
    if status == "succeeded":
        return GatewayResult(ResultStatus.SUCCEEDED, str(intent["id"]), amount, currency, raw=dict(intent))
    error = intent.get("last_payment_error")
    if status in ("requires_payment_method", "canceled"):
        return GatewayResult(
            ResultStatus.FAILED,
            str(intent["id"]),
            amount,
            currency,
            failure_code=str((error or {}).get("decline_code") or (error or {}).get("code") or status),
            failure_reason=str((error or {}).get("message") or status.replace("_", " ")),
            raw=dict(intent),
        )
    # processing, requires_action, requires_confirmation, requires_capture: the webhook decides.
    return GatewayResult(ResultStatus.PENDING, str(intent["id"]), amount, currency, raw=dict(intent))


def _failure_from_error(
    error: stripe_sdk.StripeError, request_amount: Decimal, currency: str
) -> GatewayResult:
    body = error.json_body or {}
    detail = body.get("error", {}) if isinstance(body, dict) else {}
    intent = detail.get("payment_intent") or {}
    return GatewayResult(
        ResultStatus.FAILED,
        str(intent.get("id", "")),
        request_amount,
        currency,
        failure_code=str(detail.get("decline_code") or detail.get("code") or "stripe_error"),
        failure_reason=str(detail.get("message") or error.user_message or "The card was declined."),
        raw=dict(detail),
    )


class StripeGateway:
    name = "stripe"

    def __init__(self, client: stripe_sdk.StripeClient | None = None) -> None:
        if client is None:
            api_key = setting("STRIPE_API_KEY")
            if not api_key:
                raise ValidationFailed(
                    "Stripe is not configured: set STRIPE_API_KEY.", code="gateway_not_configured"
                )
            client = stripe_sdk.StripeClient(api_key)
        self.client = client

    def charge(self, request: ChargeRequest) -> GatewayResult:
        params: dict[str, Any] = {
            "amount": to_minor_units(request.amount, request.currency),
            "currency": request.currency.lower(),
            "confirm": True,
            "off_session": True,
            "description": f"Invoice {request.invoice_number}",
            "metadata": {
                "invoice_id": request.invoice_public_id,
                "invoice_number": request.invoice_number,
                "customer_id": request.customer_public_id,
            },
        }
        if request.method_external_id:
            params["payment_method"] = request.method_external_id
        if request.customer_external_id:
            params["customer"] = request.customer_external_id
        try:
            intent = self.client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe_sdk.CardError as error:
            return _failure_from_error(error, request.amount, request.currency)
        return _result_of_intent(intent)

    def checkout_url(
        self,
        *,
        invoice_public_id: str,
        invoice_number: str,
        customer_public_id: str,
        amount: Decimal,
        currency: str,
        customer_email: str,
        language: str,
        success_url: str,
        cancel_url: str,
    ) -> str:
        """A Stripe Checkout page where the customer pays an invoice by card. The PaymentIntent it
        creates carries the invoice in its metadata, so ``payment_intent.succeeded`` settles it
        through the webhook like any other card payment. The same invoice and amount give the same
        session (idempotency key), so a double click does not open two payments."""
        metadata = {
            "invoice_id": invoice_public_id,
            "invoice_number": invoice_number,
            "customer_id": customer_public_id,
        }
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": to_minor_units(amount, currency),
                        "product_data": {"name": f"{invoice_number}"},
                    },
                }
            ],
            "payment_intent_data": {"metadata": metadata, "description": f"Invoice {invoice_number}"},
            "metadata": metadata,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "locale": "it" if language == "it" else "en",
        }
        if customer_email:
            params["customer_email"] = customer_email
        session = self.client.v1.checkout.sessions.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": f"checkout-{invoice_public_id}-{to_minor_units(amount, currency)}"},
        )
        url = _plain(session).get("url")
        if not url:
            raise ValidationFailed("Stripe did not return a payment page.", code="gateway_error")
        return str(url)

    def confirm(self, external_id: str) -> GatewayResult:
        try:
            intent = self.client.v1.payment_intents.confirm(external_id)
        except stripe_sdk.CardError as error:
            body: dict[str, Any] = error.json_body if isinstance(error.json_body, dict) else {}
            currency = str(body.get("error", {}).get("payment_intent", {}).get("currency", "eur")).upper()
            return _failure_from_error(error, Decimal(0), currency)
        return _result_of_intent(intent)

    def refund(
        self, *, payment_external_id: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult:
        try:
            resource = self.client.v1.refunds.create(
                params={
                    "payment_intent": payment_external_id,
                    "amount": to_minor_units(amount, currency),
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe_sdk.InvalidRequestError as error:
            return GatewayResult(
                ResultStatus.FAILED,
                "",
                amount,
                currency,
                failure_code=str(error.code or "invalid_request"),
                failure_reason=str(error.user_message or error),
            )
        refund = _plain(resource)
        status = str(refund["status"])
        outcome = {
            "succeeded": ResultStatus.SUCCEEDED,
            "pending": ResultStatus.PENDING,
            "requires_action": ResultStatus.PENDING,
        }.get(status, ResultStatus.FAILED)
        return GatewayResult(
            outcome,
            str(refund["id"]),
            from_minor_units(int(refund["amount"]), currency),
            currency,
            failure_code="" if outcome != ResultStatus.FAILED else status,
            failure_reason="" if outcome != ResultStatus.FAILED else f"Stripe refund {status}.",
        )


def verified_event(payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event, after checking the Stripe-Signature header (HMAC SHA-256, constant time, with a
    5-minute tolerance). Raises ValidationFailed (400 at the endpoint) when it does not verify."""
    secret = setting("STRIPE_WEBHOOK_SECRET")
    if not secret:
        raise ValidationFailed("Stripe webhooks are not configured.", code="webhook_not_configured")
    if not signature:
        raise ValidationFailed("The Stripe-Signature header is missing.", code="invalid_signature")
    try:
        event = stripe_sdk.Webhook.construct_event(payload, signature, secret)
    except stripe_sdk.SignatureVerificationError as error:
        raise ValidationFailed("The Stripe signature does not verify.", code="invalid_signature") from error
    except ValueError as error:
        raise ValidationFailed("The webhook body is not valid JSON.", code="invalid_payload") from error
    result: dict[str, Any] = event.to_dict()
    return result


def install() -> None:
    # Registered even without a key: using it then answers "Stripe is not configured".
    register("stripe", StripeGateway)
