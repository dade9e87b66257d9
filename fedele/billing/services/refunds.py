"""Refunds: money paid back on a payment, never more than was paid minus what was refunded already.

The refunded amount comes first out of what the payment left as customer credit (an overpayment:
the credit balance goes down, no document needed), then out of the invoices it settled, newest
allocation first: the payment is taken back from the invoice and a credit note for the same amount
reduces it, so the invoice stays settled and the books show why the money went back.
For Stripe payments the gateway refunds first (outside the transaction, idempotency key per refund),
and a ``charge.refunded`` webhook for a refund made here changes nothing (the amounts already match).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from fedele.billing.gateways import base as gateways
from fedele.billing.gateways.base import ResultStatus
from fedele.billing.models import BillingAccount, CreditEntry, Invoice, Payment, Refund
from fedele.billing.models.payments import Gateway
from fedele.billing.services import settlement
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, ValidationFailed
from fedele.shared.money import Money

GATEWAY_REFUNDS = frozenset({Gateway.STRIPE})


def _validated(payment: Payment, amount: Decimal | None, reason: str) -> tuple[Decimal, str]:
    errors: dict[str, str] = {}
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = "Say why the payment is refunded."
    elif len(reason) > 300:
        errors["reason"] = "At most 300 characters."
    if payment.status != Payment.Status.SUCCEEDED:
        raise Conflict(
            f"Only a succeeded payment can be refunded; this one is {payment.status}.", code="not_refundable"
        )
    refundable = payment.amount - payment.amount_refunded
    wanted = refundable if amount is None else amount
    if not isinstance(wanted, Decimal) or not wanted.is_finite() or wanted <= 0:
        errors["amount"] = "Must be a positive amount."
    elif wanted != Money(wanted, payment.currency).rounded().amount:
        errors["amount"] = "At most two decimal places."
    elif wanted > refundable:
        errors["amount"] = f"At most {refundable} can still be refunded."
    if errors:
        raise ValidationFailed("The refund is not valid.", code="invalid_refund", fields=errors)
    return wanted, reason


def refund_create(
    *, payment: Payment, amount: Decimal | None = None, reason: str, actor_id: int | None = None
) -> Refund:
    """Refund ``amount`` of a payment (None = all that is left)."""
    wanted, reason = _validated(payment, amount, reason)
    sequence = Refund.objects.filter(payment=payment).count() + 1
    idempotency_key = f"refund-{payment.public_id}-{sequence}-{wanted}"
    external_id = f"{payment.gateway}-refund:{idempotency_key}"
    if payment.gateway in GATEWAY_REFUNDS:
        result = gateways.get(payment.gateway).refund(
            payment_external_id=payment.external_id,
            amount=wanted,
            currency=payment.currency,
            idempotency_key=idempotency_key,
        )
        if result.status == ResultStatus.FAILED:
            raise Conflict(
                f"The gateway refused the refund: {result.failure_reason}", code="gateway_refund_failed"
            )
        external_id = result.external_id
    return refund_apply(
        payment=payment, amount=wanted, reason=reason, external_id=external_id, actor_id=actor_id
    )


def refund_apply(
    *, payment: Payment, amount: Decimal, reason: str, external_id: str, actor_id: int | None = None
) -> Refund:
    """Book a refund that the gateway has made (by us, or from its dashboard seen by webhook)."""
    existing = Refund.objects.filter(gateway=payment.gateway, external_id=external_id).first()
    if existing is not None:
        return existing
    from fedele.billing.services.invoicing import credit_note_create

    with transaction.atomic():
        BillingAccount.objects.select_for_update().get(pk=payment.account_id)
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        existing = Refund.objects.filter(gateway=payment.gateway, external_id=external_id).first()
        if existing is not None:
            return existing
        wanted, reason = _validated(locked, amount, reason)
        remaining = wanted
        from_credit = _take_from_credit(locked, remaining)
        remaining -= from_credit
        credit_note: Invoice | None = None
        allocations = list(locked.allocations.order_by("-pk"))
        for allocation in allocations:
            if remaining <= 0:
                break
            part = min(remaining, allocation.amount - allocation.amount_reversed)
            if part <= 0:
                continue
            invoice = settlement.locked_invoice(allocation.invoice_id)
            settlement.invoice_unsettle_payment(invoice=invoice, amount=part)
            credit_note = credit_note_create(
                invoice=invoice, amount=part, reason=f"Refund: {reason}"[:300], actor_id=actor_id
            )
            allocation.amount_reversed += part
            allocation.save(update_fields=["amount_reversed"])
            remaining -= part
        if remaining > 0:
            # The credit this payment left has been spent since: refund it from the account's credit
            # balance only if it still holds it; otherwise refuse rather than refund money owed.
            raise Conflict(
                f"{remaining} {locked.currency} of this payment is no longer available to refund.",
                code="not_refundable",
            )
        refund = Refund.objects.create(
            payment=locked,
            amount=wanted,
            currency=locked.currency,
            reason=reason,
            status=Refund.Status.SUCCEEDED,
            gateway=locked.gateway,
            external_id=external_id,
            credit_note=credit_note,
            amount_from_credit=from_credit,
            actor_id=actor_id,
            created_at=clock.now(),
        )
        locked.amount_refunded += wanted
        locked.updated_at = clock.now()
        locked.save(update_fields=["amount_refunded", "updated_at"])
        audit.record(
            action="billing.payment_refunded",
            object_type="billing.payment",
            object_id=str(locked.public_id),
            before={"amount_refunded": locked.amount_refunded - wanted},
            after={
                "amount_refunded": locked.amount_refunded,
                "refund": str(refund.public_id),
                "credit_note": credit_note.number if credit_note else None,
                "from_credit": from_credit,
            },
            actor_id=actor_id,
        )
    payment.refresh_from_db()
    return refund


def _take_from_credit(payment: Payment, wanted: Decimal) -> Decimal:
    """The part of the refund paid out of the credit this payment created (while the account holds it)."""
    already = sum((r.amount_from_credit for r in Refund.objects.filter(payment=payment)), Decimal(0))
    left_as_credit = payment.amount_to_credit - already
    account = BillingAccount.objects.get(pk=payment.account_id)
    take = min(wanted, left_as_credit, account.credit_balance)
    if take <= 0:
        return Decimal(0)
    settlement.account_credit_add(
        account_id=payment.account_id,
        amount=-take,
        reason=CreditEntry.Reason.REFUND,
        note=f"refund of payment {payment.external_id}",
    )
    return take
