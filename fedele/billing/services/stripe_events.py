"""Stripe webhook events, after their signature has been checked (see gateways/stripe.py).

Each event is stored once (GatewayEvent unique on gateway + event id) in the same transaction as its
effect: a replayed or concurrently delivered event finds the row and changes nothing, and an event
whose handling crashed is rolled back whole so Stripe's retry can apply it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from fedele.billing.gateways.stripe import from_minor_units
from fedele.billing.models import GatewayEvent, Invoice, Payment
from fedele.billing.models.payments import Gateway, MethodKind
from fedele.billing.services import payments, refunds
from fedele.shared import clock
from fedele.shared.errors import ApplicationError


def _invoice_of(intent: Mapping[str, Any]) -> Invoice | None:
    invoice_id = (intent.get("metadata") or {}).get("invoice_id")
    if not invoice_id:
        return None
    try:
        return Invoice.objects.select_related("account").filter(public_id=invoice_id).first()
    except (ValueError, TypeError, ApplicationError):
        return None
    except Exception:
        return None


def _intent_succeeded(intent: Mapping[str, Any]) -> str:
    payment = Payment.objects.filter(gateway=Gateway.STRIPE, external_id=str(intent["id"])).first()
    if payment is not None:
        if payment.status == Payment.Status.SUCCEEDED:
            return "already succeeded"
        payments.payment_succeed(payment=payment)
        return f"payment {payment.public_id} succeeded"
    invoice = _invoice_of(intent)
    if invoice is None:
        return "ignored: no fedele invoice in the metadata"
    currency = str(intent["currency"]).upper()
    amount = from_minor_units(int(intent.get("amount_received") or intent["amount"]), currency)
    payment = payments.payment_record(
        account=invoice.account,
        amount=amount,
        currency=currency,
        method=MethodKind.CARD,
        gateway=Gateway.STRIPE,
        received_on=payments.business_today(),
        external_id=str(intent["id"]),
        invoice=invoice,
    )
    return f"payment {payment.public_id} recorded"


def _intent_failed(intent: Mapping[str, Any]) -> str:
    error = intent.get("last_payment_error") or {}
    code = str(error.get("decline_code") or error.get("code") or "payment_failed")
    reason = str(error.get("message") or "The payment failed.")
    payment = Payment.objects.filter(gateway=Gateway.STRIPE, external_id=str(intent["id"])).first()
    if payment is not None:
        if payment.status != Payment.Status.PENDING:
            return f"ignored: payment is {payment.status}"
        payments.payment_fail(payment=payment, code=code, reason=reason)
        return f"payment {payment.public_id} failed"
    invoice = _invoice_of(intent)
    if invoice is None:
        return "ignored: no fedele invoice in the metadata"
    currency = str(intent["currency"]).upper()
    payment = payments.payment_failed_record(
        account=invoice.account,
        amount=from_minor_units(int(intent["amount"]), currency),
        currency=currency,
        method=MethodKind.CARD,
        gateway=Gateway.STRIPE,
        external_id=str(intent["id"]),
        code=code,
        reason=reason,
        invoice=invoice,
    )
    return f"payment {payment.public_id} failed"


def _charge_refunded(charge: Mapping[str, Any]) -> str:
    intent_id = str(charge.get("payment_intent") or "")
    payment = Payment.objects.filter(gateway=Gateway.STRIPE, external_id=intent_id).first()
    if payment is None or not intent_id:
        return "ignored: unknown payment"
    currency = str(charge["currency"]).upper()
    refunded_total = from_minor_units(int(charge.get("amount_refunded") or 0), currency)
    new = refunded_total - payment.amount_refunded
    if new <= Decimal(0):
        return "already booked"
    listed = (charge.get("refunds") or {}).get("data") or []
    external_id = str(listed[0]["id"]) if listed else f"{charge['id']}:{int(charge['amount_refunded'])}"
    refund = refunds.refund_apply(
        payment=payment, amount=new, reason="Refunded in Stripe", external_id=external_id
    )
    return f"refund {refund.public_id} of {new}"


HANDLERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "payment_intent.succeeded": _intent_succeeded,
    "payment_intent.payment_failed": _intent_failed,
    "charge.refunded": _charge_refunded,
}


def stripe_event_process(event: Mapping[str, Any]) -> tuple[bool, str]:
    """(processed now, outcome). False when the event had been received before."""
    event_id = str(event.get("id") or "")
    event_type = str(event.get("type") or "")
    if not event_id.startswith("evt_"):
        return False, "ignored: no event id"
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = GatewayEvent.objects.create(
                    gateway=Gateway.STRIPE,
                    event_id=event_id[:120],
                    event_type=event_type[:100],
                    payload=dict(event),
                    received_at=clock.now(),
                )
        except IntegrityError:
            return False, "duplicate"
        handler = HANDLERS.get(event_type)
        if handler is None:
            outcome = "ignored: event type not handled"
        else:
            data_object = (event.get("data") or {}).get("object") or {}
            try:
                with transaction.atomic():
                    outcome = handler(data_object)
            except ApplicationError as failure:
                # A business refusal will not change on retry: keep it for the clerk to see.
                outcome = f"refused: {failure.code}: {failure.message}"
        row.outcome = outcome[:300]
        row.save(update_fields=["outcome"])
    return True, outcome
