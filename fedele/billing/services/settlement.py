"""Settling invoices: the one place where an invoice's paid/credited amounts and its paid state move,
and where the account's credit balance changes. Payments, credit notes and applied credit all come
through here, so the invariants hold whoever settles:

- ``amount_paid + amount_credited`` never exceeds ``total`` (the excess is the caller's to keep as
  customer credit, see :func:`account_credit_add`);
- an invoice becomes ``paid`` when its amount due reaches zero; ``InvoicePaid`` is published in the
  same transaction the first time only (``first_paid_at``), even if a refund or a returned debit
  reopens the invoice and it is settled again;
- ``BillingAccount.credit_balance`` always equals the sum of the account's CreditEntry rows.

Callers hold the invoice's row lock (``select_for_update``) and run inside ``transaction.atomic``.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import F

from fedele.billing.contracts import InvoiceStatus
from fedele.billing.events import InvoicePaid
from fedele.billing.models import BillingAccount, CreditEntry, Invoice
from fedele.shared import audit, clock, events
from fedele.shared.errors import Conflict, ValidationFailed


def locked_invoice(invoice_id: int) -> Invoice:
    return Invoice.objects.select_for_update().select_related("account").get(pk=invoice_id)


def invoice_settle(
    *, invoice: Invoice, paid: Decimal = Decimal(0), credited: Decimal = Decimal(0)
) -> Decimal:
    """Add ``paid`` and/or ``credited`` to a finalised invoice; returns the part that did not fit
    (the overpayment), which the invoice does not absorb. Marks it paid when nothing is due."""
    if paid < 0 or credited < 0:
        raise ValidationFailed("A settlement cannot be negative.", code="invalid_amount")
    if invoice.status not in (InvoiceStatus.FINALISED, InvoiceStatus.PAID):
        raise Conflict(
            f"Invoice {invoice} is {invoice.status}: only finalised invoices can be settled.",
            code="invoice_not_payable",
        )
    due = max(invoice.amount_due, Decimal(0))
    applied_credit = min(credited, due)
    applied_paid = min(paid, due - applied_credit)
    excess = paid + credited - applied_credit - applied_paid
    if applied_paid == 0 and applied_credit == 0:
        return excess
    before = {
        "amount_paid": invoice.amount_paid,
        "amount_credited": invoice.amount_credited,
        "status": invoice.status,
    }
    invoice.amount_paid += applied_paid
    invoice.amount_credited += applied_credit
    now = clock.now()
    invoice.updated_at = now
    fields = ["amount_paid", "amount_credited", "updated_at"]
    if invoice.amount_due <= 0 and invoice.status == InvoiceStatus.FINALISED:
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = now
        fields += ["status", "paid_at"]
        if invoice.first_paid_at is None:
            # Once per invoice: a refund that reopens it and a credit note that settles it again
            # must not make loyalty earn twice or support close a collections case twice.
            invoice.first_paid_at = now
            fields.append("first_paid_at")
            _publish_paid(invoice)
    invoice.save(update_fields=fields)
    audit.record(
        action="billing.invoice_settled",
        object_type="billing.invoice",
        object_id=str(invoice.public_id),
        before=before,
        after={
            "amount_paid": invoice.amount_paid,
            "amount_credited": invoice.amount_credited,
            "status": invoice.status,
        },
    )
    return excess


def _publish_paid(invoice: Invoice) -> None:
    customer_public_id = invoice.customer_snapshot.get("public_id") or ""
    events.publish(
        InvoicePaid(
            invoice_id=str(invoice.public_id),
            number=invoice.number or "",
            customer_id=str(customer_public_id),
            currency=invoice.currency,
            total=str(invoice.total),
            paid_at=(invoice.paid_at or clock.now()).isoformat(),
        ),
        aggregate_type="billing.invoice",
        aggregate_id=str(invoice.public_id),
    )


def invoice_unsettle_payment(*, invoice: Invoice, amount: Decimal) -> None:
    """Take back ``amount`` of payment (a refund or a charge-back): a paid invoice is due again."""
    if amount <= 0 or amount > invoice.amount_paid:
        raise ValidationFailed(
            f"Cannot take back {amount}: the invoice has {invoice.amount_paid} paid.", code="invalid_amount"
        )
    invoice.amount_paid -= amount
    fields = ["amount_paid", "updated_at"]
    if invoice.status == InvoiceStatus.PAID and invoice.amount_due > 0:
        invoice.status = InvoiceStatus.FINALISED
        invoice.paid_at = None
        fields += ["status", "paid_at"]
    invoice.updated_at = clock.now()
    invoice.save(update_fields=fields)


def account_credit_add(
    *, account_id: int, amount: Decimal, reason: str, invoice: Invoice | None = None, note: str = ""
) -> CreditEntry:
    """Move the credit balance by ``amount`` (positive adds credit). Never lets it go negative."""
    if amount == 0:
        raise ValidationFailed("A credit movement needs a non-zero amount.", code="invalid_amount")
    with transaction.atomic():
        account = BillingAccount.objects.select_for_update().get(pk=account_id)
        if account.credit_balance + amount < 0:
            raise Conflict(
                f"The account has {account.credit_balance} of credit; {-amount} cannot be taken.",
                code="insufficient_credit",
            )
        entry = CreditEntry.objects.create(
            account=account,
            amount=amount,
            reason=reason,
            invoice=invoice,
            note=note[:300],
            created_at=clock.now(),
        )
        BillingAccount.objects.filter(pk=account_id).update(credit_balance=F("credit_balance") + amount)
    return entry


def account_credit_apply(*, invoice: Invoice) -> Decimal:
    """Use the account's credit balance against a finalised invoice; returns what was applied."""
    with transaction.atomic():
        account = BillingAccount.objects.select_for_update().get(pk=invoice.account_id)
        usable = min(account.credit_balance, max(invoice.amount_due, Decimal(0)))
        if usable <= 0 or account.currency != invoice.currency:
            return Decimal(0)
        invoice_settle(invoice=invoice, credited=usable)
        account_credit_add(
            account_id=account.pk,
            amount=-usable,
            reason=CreditEntry.Reason.APPLIED,
            invoice=invoice,
            note=f"applied to {invoice.number}",
        )
    return usable
