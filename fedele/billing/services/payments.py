"""Recording payments: manual entries, gateway charges and their outcomes.

A payment is unique per (gateway, external_id): a retried request, a double click or a replayed
webhook finds the payment already recorded and returns it, so an invoice is never paid twice. The
account row is locked first, which serialises every payment of one account (two threads posting the
same payment on PostgreSQL: the second waits, then finds the first).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import IntegrityError, transaction

from fedele.billing.contracts import InvoiceKind, InvoiceStatus
from fedele.billing.events import PaymentFailed
from fedele.billing.gateways import base as gateways
from fedele.billing.gateways.base import ChargeRequest, ResultStatus
from fedele.billing.models import (
    BillingAccount,
    CreditEntry,
    Invoice,
    Payment,
    PaymentAllocation,
    PaymentMethod,
)
from fedele.billing.models.payments import AUTOMATIC_KINDS, Gateway, MethodKind
from fedele.billing.services import settlement
from fedele.shared import audit, clock, events
from fedele.shared.errors import Conflict, ValidationFailed
from fedele.shared.money import Money

GATEWAY_OF_KIND = {
    MethodKind.BANK_TRANSFER: Gateway.MANUAL,
    MethodKind.CASH: Gateway.MANUAL,
    MethodKind.CHEQUE: Gateway.MANUAL,
    MethodKind.CARD: Gateway.STRIPE,
    MethodKind.SEPA_DEBIT: Gateway.SEPA,
}


def business_today() -> date:
    return clock.today("Europe/Rome")


def customer_public_id(account: BillingAccount) -> str:
    from fedele.customers.facade import customer_summaries

    summary = customer_summaries([account.customer_id]).get(account.customer_id)
    return str(summary.public_id) if summary else ""


def _validated(
    *,
    account: BillingAccount,
    amount: Decimal,
    currency: str,
    method: str,
    gateway: str,
    received_on: date,
    external_id: str,
    invoice: Invoice | None,
) -> tuple[Decimal, str]:
    errors: dict[str, str] = {}
    currency = (currency or "").upper()
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        errors["amount"] = "Must be a positive amount."
    elif amount >= Decimal("1e13"):
        errors["amount"] = "Too large."
    elif currency and amount != Money(amount, currency).rounded().amount:
        errors["amount"] = "At most two decimal places."
    if currency != account.currency:
        raise ValidationFailed(
            f"The account is billed in {account.currency}, not {currency or 'no currency'}.",
            code="currency_mismatch",
            fields={"currency": f"Must be {account.currency}."},
        )
    if method not in MethodKind.values:
        errors["method"] = f"Use one of: {', '.join(MethodKind.values)}."
    if gateway not in Gateway.values:
        errors["gateway"] = f"Use one of: {', '.join(Gateway.values)}."
    external_id = (external_id or "").strip()
    if not external_id:
        errors["external_id"] = "The payment's reference is required (bank reference, receipt number)."
    elif len(external_id) > 120:
        errors["external_id"] = "At most 120 characters."
    if received_on > business_today():
        errors["received_on"] = "Cannot be in the future."
    if invoice is not None:
        if invoice.account_id != account.pk:
            errors["invoice"] = "The invoice belongs to another account."
        elif invoice.kind != InvoiceKind.INVOICE:
            errors["invoice"] = "A credit note cannot be paid."
        elif invoice.status not in (InvoiceStatus.FINALISED, InvoiceStatus.PAID):
            errors["invoice"] = f"The invoice is {invoice.status}: only finalised invoices can be paid."
        elif invoice.currency != currency:
            raise ValidationFailed(
                f"The invoice is in {invoice.currency}, the payment in {currency}.",
                code="currency_mismatch",
                fields={"currency": f"Must be {invoice.currency}."},
            )
    if errors:
        raise ValidationFailed("The payment is not valid.", code="invalid_payment", fields=errors)
    return amount, external_id


def _existing(gateway: str, external_id: str, account: BillingAccount, amount: Decimal) -> Payment | None:
    payment = Payment.objects.filter(gateway=gateway, external_id=external_id).first()
    if payment is not None and (payment.account_id != account.pk or payment.amount != amount):
        raise Conflict(
            f"Reference '{external_id}' is already recorded for another payment.",
            code="duplicate_reference",
            fields={"external_id": "Already used by another payment."},
        )
    return payment


def open_invoices(account_id: int, currency: str) -> list[Invoice]:
    """Finalised invoices with something due, oldest first, locked (by pk) for settlement."""
    ids = list(
        Invoice.objects.filter(
            account_id=account_id, kind=InvoiceKind.INVOICE, status=InvoiceStatus.FINALISED, currency=currency
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    invoices = list(Invoice.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    invoices = [invoice for invoice in invoices if invoice.amount_due > 0]
    invoices.sort(key=lambda i: (i.due_date or date.max, i.issue_date or date.max, i.pk))
    return invoices


def _allocate(payment: Payment, invoice: Invoice | None) -> None:
    """Settle invoices with a succeeded payment: the named invoice, else open invoices oldest first;
    what is left becomes customer credit."""
    remaining = payment.amount
    now = clock.now()
    targets = (
        [settlement.locked_invoice(invoice.pk)]
        if invoice is not None
        else open_invoices(payment.account_id, payment.currency)
    )
    for target in targets:
        if remaining <= 0:
            break
        excess = settlement.invoice_settle(invoice=target, paid=remaining)
        applied = remaining - excess
        if applied > 0:
            PaymentAllocation.objects.create(payment=payment, invoice=target, amount=applied, created_at=now)
        remaining = excess
    if remaining > 0:
        settlement.account_credit_add(
            account_id=payment.account_id,
            amount=remaining,
            reason=CreditEntry.Reason.OVERPAYMENT,
            invoice=invoice,
            note=f"overpayment {payment.external_id}",
        )
        payment.amount_to_credit = remaining
        payment.save(update_fields=["amount_to_credit"])


def payment_record(
    *,
    account: BillingAccount,
    amount: Decimal,
    currency: str,
    method: str,
    received_on: date,
    external_id: str,
    invoice: Invoice | None = None,
    gateway: str | None = None,
    payment_method: PaymentMethod | None = None,
    note: str = "",
    actor_id: int | None = None,
) -> Payment:
    """Record money received and settle invoices with it. Idempotent on (gateway, external_id)."""
    if gateway is None:
        gateway = GATEWAY_OF_KIND[MethodKind(method)] if method in MethodKind.values else Gateway.MANUAL
    amount, external_id = _validated(
        account=account,
        amount=amount,
        currency=currency,
        method=method,
        gateway=gateway,
        received_on=received_on,
        external_id=external_id,
        invoice=invoice,
    )
    existing = _existing(gateway, external_id, account, amount)
    if existing is not None and existing.status == Payment.Status.SUCCEEDED:
        return existing
    try:
        with transaction.atomic():
            BillingAccount.objects.select_for_update().get(pk=account.pk)
            existing = _existing(gateway, external_id, account, amount)
            if existing is not None:
                if existing.status == Payment.Status.SUCCEEDED:
                    return existing
                return _succeed_locked(existing, received_on=received_on, actor_id=actor_id)
            now = clock.now()
            payment = Payment.objects.create(
                account=account,
                invoice=invoice,
                method=payment_method,
                gateway=gateway,
                method_kind=method,
                status=Payment.Status.SUCCEEDED,
                amount=amount,
                currency=currency.upper(),
                received_on=received_on,
                external_id=external_id,
                note=note[:300],
                actor_id=actor_id,
                created_at=now,
                updated_at=now,
            )
            _allocate(payment, invoice)
            _audit(payment, "billing.payment_recorded", actor_id)
    except IntegrityError as error:
        # Another account already used the reference between our check and insert.
        raise Conflict(
            f"Reference '{external_id}' is already recorded.",
            code="duplicate_reference",
            fields={"external_id": "Already used by another payment."},
        ) from error
    return payment


def _audit(payment: Payment, action: str, actor_id: int | None) -> None:
    audit.record(
        action=action,
        object_type="billing.payment",
        object_id=str(payment.public_id),
        after={
            "amount": payment.amount,
            "currency": payment.currency,
            "status": payment.status,
            "gateway": payment.gateway,
            "external_id": payment.external_id,
            "to_credit": payment.amount_to_credit,
        },
        actor_id=actor_id,
    )


def _succeed_locked(payment: Payment, *, received_on: date | None, actor_id: int | None) -> Payment:
    locked = Payment.objects.select_for_update().get(pk=payment.pk)
    if locked.status == Payment.Status.SUCCEEDED:
        return locked
    locked.status = Payment.Status.SUCCEEDED
    locked.failure_code = locked.failure_reason = ""
    locked.received_on = received_on or business_today()
    locked.updated_at = clock.now()
    locked.save(update_fields=["status", "failure_code", "failure_reason", "received_on", "updated_at"])
    invoice = locked.invoice
    if invoice is not None and invoice.status not in (InvoiceStatus.FINALISED, InvoiceStatus.PAID):
        invoice = None
    _allocate(locked, invoice)
    _audit(locked, "billing.payment_succeeded", actor_id)
    return locked


def payment_succeed(
    *, payment: Payment, received_on: date | None = None, actor_id: int | None = None
) -> Payment:
    """A pending (or failed, then retried) gateway payment has succeeded: settle with it, once."""
    with transaction.atomic():
        BillingAccount.objects.select_for_update().get(pk=payment.account_id)
        return _succeed_locked(payment, received_on=received_on, actor_id=actor_id)


def _publish_failed(payment: Payment) -> None:
    events.publish(
        PaymentFailed(
            payment_id=str(payment.public_id),
            invoice_id=str(payment.invoice.public_id) if payment.invoice else None,
            customer_id=customer_public_id(payment.account),
            currency=payment.currency,
            amount=str(payment.amount),
            reason=payment.failure_reason or payment.failure_code,
        ),
        aggregate_type="billing.payment",
        aggregate_id=str(payment.public_id),
    )


def payment_fail(*, payment: Payment, code: str, reason: str, actor_id: int | None = None) -> Payment:
    """A pending payment failed, or a collected one came back (SEPA return, charge-back): the money it
    settled is taken back from its invoices and PaymentFailed is published."""
    with transaction.atomic():
        BillingAccount.objects.select_for_update().get(pk=payment.account_id)
        locked = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("invoice", "account")
            .get(pk=payment.pk)
        )
        if locked.status == Payment.Status.FAILED:
            return locked
        if locked.status == Payment.Status.SUCCEEDED:
            if locked.amount_refunded > 0:
                raise Conflict("A refunded payment cannot be reversed.", code="payment_refunded")
            _reverse_allocations(locked)
        locked.status = Payment.Status.FAILED
        locked.failure_code = code[:64]
        locked.failure_reason = reason[:300]
        locked.updated_at = clock.now()
        locked.save(update_fields=["status", "failure_code", "failure_reason", "updated_at"])
        _audit(locked, "billing.payment_failed", actor_id)
        _publish_failed(locked)
    return locked


def _reverse_allocations(payment: Payment) -> None:
    for allocation in payment.allocations.select_related("invoice").order_by("pk"):
        open_part = allocation.amount - allocation.amount_reversed
        if open_part > 0:
            invoice = settlement.locked_invoice(allocation.invoice_id)
            settlement.invoice_unsettle_payment(invoice=invoice, amount=open_part)
            allocation.amount_reversed = allocation.amount
            allocation.save(update_fields=["amount_reversed"])
    if payment.amount_to_credit > 0:
        settlement.account_credit_add(
            account_id=payment.account_id,
            amount=-payment.amount_to_credit,
            reason=CreditEntry.Reason.MANUAL,
            note=f"payment {payment.external_id} reversed",
        )


def payment_failed_record(
    *,
    account: BillingAccount,
    amount: Decimal,
    currency: str,
    method: str,
    gateway: str,
    external_id: str,
    code: str,
    reason: str,
    invoice: Invoice | None = None,
    payment_method: PaymentMethod | None = None,
    attempt: int = 1,
    actor_id: int | None = None,
) -> Payment:
    """A payment attempt that failed outright (a declined card): kept for the record and dunning."""
    amount, external_id = _validated(
        account=account,
        amount=amount,
        currency=currency,
        method=method,
        gateway=gateway,
        received_on=business_today(),
        external_id=external_id,
        invoice=None,
    )
    with transaction.atomic():
        BillingAccount.objects.select_for_update().get(pk=account.pk)
        existing = _existing(gateway, external_id, account, amount)
        if existing is not None:
            if existing.status == Payment.Status.PENDING:
                return payment_fail(payment=existing, code=code, reason=reason, actor_id=actor_id)
            return existing
        now = clock.now()
        payment = Payment.objects.create(
            account=account,
            invoice=invoice,
            method=payment_method,
            gateway=gateway,
            method_kind=method,
            status=Payment.Status.FAILED,
            amount=amount,
            currency=currency.upper(),
            received_on=business_today(),
            external_id=external_id,
            attempt=attempt,
            failure_code=code[:64],
            failure_reason=reason[:300],
            actor_id=actor_id,
            created_at=now,
            updated_at=now,
        )
        _audit(payment, "billing.payment_failed", actor_id)
        _publish_failed(payment)
    return payment


def payment_pending_record(
    *,
    account: BillingAccount,
    amount: Decimal,
    currency: str,
    method: str,
    gateway: str,
    external_id: str,
    invoice: Invoice | None,
    payment_method: PaymentMethod | None = None,
    attempt: int = 1,
    sepa_batch_id: int | None = None,
) -> Payment:
    """A collection under way (a PaymentIntent awaiting its webhook, a debit in a SEPA file)."""
    amount, external_id = _validated(
        account=account,
        amount=amount,
        currency=currency,
        method=method,
        gateway=gateway,
        received_on=business_today(),
        external_id=external_id,
        invoice=invoice,
    )
    with transaction.atomic():
        BillingAccount.objects.select_for_update().get(pk=account.pk)
        existing = _existing(gateway, external_id, account, amount)
        if existing is not None:
            return existing
        now = clock.now()
        payment = Payment.objects.create(
            account=account,
            invoice=invoice,
            method=payment_method,
            gateway=gateway,
            method_kind=method,
            status=Payment.Status.PENDING,
            amount=amount,
            currency=currency.upper(),
            received_on=business_today(),
            external_id=external_id,
            attempt=attempt,
            sepa_batch_id=sepa_batch_id,
            created_at=now,
            updated_at=now,
        )
        _audit(payment, "billing.payment_pending", None)
    return payment


@dataclass(frozen=True, slots=True)
class ChargeOutcome:
    status: str
    """succeeded, pending, queued (waits for the next SEPA file), failed or no_method."""
    payment: Payment | None
    message: str = ""


def default_method(account_id: int) -> PaymentMethod | None:
    methods = PaymentMethod.objects.filter(
        account_id=account_id, is_active=True, kind__in=[kind.value for kind in AUTOMATIC_KINDS]
    ).select_related("mandate")
    usable = [m for m in methods if m.mandate is None or m.mandate.status == "active"]
    usable.sort(key=lambda m: (not m.is_default, m.pk))
    return usable[0] if usable else None


def invoice_charge(
    *, invoice: Invoice, payment_method: PaymentMethod | None = None, actor_id: int | None = None
) -> ChargeOutcome:
    """Charge what is due on an invoice through the account's automatic payment method.

    The gateway is called outside any transaction (it is a network call); its idempotency key is
    derived from the invoice and the attempt number, so a crash and retry never double-charges."""
    invoice = Invoice.objects.select_related("account").get(pk=invoice.pk)
    if (
        invoice.kind != InvoiceKind.INVOICE
        or invoice.status != InvoiceStatus.FINALISED
        or invoice.amount_due <= 0
    ):
        raise Conflict(f"Invoice {invoice} has nothing to charge.", code="nothing_due")
    method = payment_method or default_method(invoice.account_id)
    if method is None:
        return ChargeOutcome("no_method", None, "The account has no automatic payment method.")
    if method.account_id != invoice.account_id:
        raise ValidationFailed(
            "The payment method belongs to another account.",
            code="invalid_payment_method",
            fields={"payment_method": "Not this account's."},
        )
    if Payment.objects.filter(invoice=invoice, status=Payment.Status.PENDING).exists():
        return ChargeOutcome("pending", None, "A payment for this invoice is already under way.")
    attempt = Payment.objects.filter(invoice=invoice, gateway=method.gateway).count() + 1
    request = ChargeRequest(
        invoice_public_id=str(invoice.public_id),
        invoice_number=invoice.number or "",
        customer_public_id=str(invoice.customer_snapshot.get("public_id", "")),
        amount=invoice.amount_due,
        currency=invoice.currency,
        idempotency_key=f"invoice-{invoice.public_id}-attempt-{attempt}",
        method_external_id=method.external_id,
        customer_external_id=method.external_customer_id,
    )
    result = gateways.get(method.gateway).charge(request)
    external_id = result.external_id or f"{request.idempotency_key}"
    common = {
        "account": invoice.account,
        "amount": request.amount,
        "currency": invoice.currency,
        "method": method.kind,
        "payment_method": method,
    }
    if result.status == ResultStatus.SUCCEEDED:
        payment = payment_record(
            **common,  # type: ignore[arg-type]
            received_on=business_today(),
            external_id=external_id,
            invoice=invoice,
            gateway=method.gateway,
            actor_id=actor_id,
        )
        Payment.objects.filter(pk=payment.pk).update(attempt=attempt)
        return ChargeOutcome("succeeded", payment)
    if result.status == ResultStatus.PENDING:
        if not result.external_id:
            return ChargeOutcome("queued", None, "Queued for the next direct-debit collection file.")
        payment = payment_pending_record(
            **common,  # type: ignore[arg-type]
            gateway=method.gateway,
            external_id=external_id,
            invoice=invoice,
            attempt=attempt,
        )
        return ChargeOutcome("pending", payment)
    payment = payment_failed_record(
        **common,  # type: ignore[arg-type]
        gateway=method.gateway,
        external_id=external_id,
        code=result.failure_code,
        reason=result.failure_reason,
        invoice=invoice,
        attempt=attempt,
        actor_id=actor_id,
    )
    return ChargeOutcome("failed", payment, result.failure_reason)
