"""Invoices and credit notes: manual drafts, totals and VAT, finalising (gapless numbers), voiding.

The billing run (services/billing_run.py) builds subscription invoices in bulk with the same rules:
each line rounded on its own, VAT per (rate, nature) group on the group's taxable total, totals as
sums. A numbered invoice is never deleted: a finalised invoice is cancelled by a credit note.

Credit notes are stored with POSITIVE amounts (what is credited), as FatturaPA TD04 expects; once
issued their whole total is allocated (to the invoice's amount due, the rest to the customer's
credit balance), so ``amount_credited == total`` and a credit note is never "due".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Sum

from fedele.billing.contracts import InvoiceKind, InvoiceLineKind, InvoiceStatus
from fedele.billing.events import InvoiceFinalised, InvoicePaid
from fedele.billing.models import (
    BillingAccount,
    CreditEntry,
    Invoice,
    InvoiceLine,
    InvoiceTaxSummary,
    Product,
)
from fedele.billing.services import settlement, vat
from fedele.customers.facade import CustomerSummary, customer_summaries
from fedele.shared import audit, clock, events, sequences
from fedele.shared.errors import Conflict, ValidationFailed
from fedele.shared.money import Money

MAX_QUANTITY = Decimal("1000000000")
MAX_UNIT_AMOUNT = Decimal("1000000000")
BUSINESS_TIME_ZONE = "Europe/Rome"
SERIES_PREFIX = {InvoiceKind.INVOICE.value: "INV", InvoiceKind.CREDIT_NOTE.value: "NC"}
MANUAL_LINE_KINDS = {
    InvoiceLineKind.ONE_TIME.value,
    InvoiceLineKind.ADJUSTMENT.value,
    InvoiceLineKind.DISCOUNT.value,
    InvoiceLineKind.SETUP_FEE.value,
}


# customer snapshot and VAT --------------------------------------------------------------------------


def snapshot_of(summary: CustomerSummary) -> dict[str, Any]:
    """What an issued invoice keeps of its customer (it must not change when the customer does)."""
    return {
        "public_id": str(summary.public_id),
        "number": summary.number,
        "kind": summary.kind,
        "name": summary.display_name,
        "first_name": summary.first_name,
        "last_name": summary.last_name,
        "company_name": summary.company_name,
        "vat_number": summary.vat_number,
        "fiscal_code": summary.fiscal_code,
        "email": summary.email,
        "pec": summary.pec,
        "sdi_code": summary.sdi_code,
        "street": summary.street,
        "postal_code": summary.postal_code,
        "city": summary.city,
        "province": summary.province,
        "country": summary.country or "IT",
        "language": summary.language or "it",
    }


def customer_snapshots(customer_ids: list[int]) -> dict[int, dict[str, Any]]:
    return {pk: snapshot_of(summary) for pk, summary in customer_summaries(customer_ids).items()}


def account_snapshot(account: BillingAccount) -> dict[str, Any]:
    snapshot = customer_snapshots([account.customer_id]).get(account.customer_id)
    if snapshot is None:
        raise ValidationFailed("The account's customer no longer exists.", code="customer_not_found")
    return snapshot


def vat_customer(snapshot: dict[str, Any]) -> vat.VatCustomer:
    return vat.VatCustomer(
        country=str(snapshot.get("country") or "IT"),
        kind=str(snapshot.get("kind") or "person"),
        vat_number=str(snapshot.get("vat_number") or ""),
    )


def business_today() -> date:
    return clock.today(BUSINESS_TIME_ZONE)


# totals ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    groups: list[vat.TaxGroup]


def totals_for(lines: list[tuple[Decimal, Decimal, str]], currency: str, *, reverse_charge: bool) -> Totals:
    groups = vat.tax_groups(lines, currency, reverse_charge=reverse_charge)
    subtotal = sum((group.taxable for group in groups), Decimal("0.00"))
    tax_total = sum((group.tax for group in groups), Decimal("0.00"))
    return Totals(subtotal=subtotal, tax_total=tax_total, total=subtotal + tax_total, groups=groups)


def tax_summary_rows(invoice_id: int, groups: list[vat.TaxGroup]) -> list[InvoiceTaxSummary]:
    return [
        InvoiceTaxSummary(
            invoice_id=invoice_id,
            vat_rate=group.rate,
            vat_nature=group.nature,
            taxable_amount=group.taxable,
            tax_amount=group.tax,
            legal_reference=group.legal_reference,
        )
        for group in groups
    ]


def _recalculate(invoice: Invoice) -> Totals:
    """Totals and the VAT summary from the invoice's lines (caller holds the lock)."""
    rows = list(invoice.lines.values_list("amount", "vat_rate", "vat_nature"))
    totals = totals_for(rows, invoice.currency, reverse_charge=invoice.reverse_charge)
    InvoiceTaxSummary.objects.filter(invoice=invoice).delete()
    InvoiceTaxSummary.objects.bulk_create(tax_summary_rows(invoice.pk, totals.groups))
    invoice.subtotal, invoice.tax_total, invoice.total = totals.subtotal, totals.tax_total, totals.total
    invoice.updated_at = clock.now()
    invoice.save(update_fields=["subtotal", "tax_total", "total", "updated_at"])
    return totals


# manual drafts --------------------------------------------------------------------------------------


def _decimal(value: object, field: str, errors: dict[str, str]) -> Decimal | None:
    if isinstance(value, (bool, float)) or not isinstance(value, (Decimal, int, str)):
        errors[field] = "Must be a decimal number (not a float)."
        return None
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        errors[field] = f"'{value}' is not a number."
        return None
    if not number.is_finite():
        errors[field] = "Must be a finite number."
        return None
    return number


def _validated_line(
    *,
    description: str,
    quantity: object,
    unit_amount: object,
    vat_rate: object,
    vat_nature: str,
    kind: str,
    currency: str,
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    errors: dict[str, str] = {}
    if not description.strip():
        errors["description"] = "A line needs a description."
    elif len(description) > 500:
        errors["description"] = "At most 500 characters."
    units = _decimal(quantity, "quantity", errors)
    if units is not None and not Decimal(0) < units <= MAX_QUANTITY:
        errors["quantity"] = f"Must be greater than zero and at most {MAX_QUANTITY}."
    price = _decimal(unit_amount, "unit_amount", errors)
    if price is not None and abs(price) > MAX_UNIT_AMOUNT:
        errors["unit_amount"] = f"Must be between -{MAX_UNIT_AMOUNT} and {MAX_UNIT_AMOUNT}."
    if price is not None and price.as_tuple().exponent < -6:  # type: ignore[operator]
        errors["unit_amount"] = "At most 6 decimal places."
    if price is not None and price < 0 and kind not in {"discount", "adjustment"}:
        errors["unit_amount"] = "Only discount and adjustment lines may be negative."
    if kind not in MANUAL_LINE_KINDS:
        errors["kind"] = f"Use one of: {', '.join(sorted(MANUAL_LINE_KINDS))}."
    rate = _decimal(vat_rate, "vat_rate", errors)
    if rate is not None and "vat_rate" not in errors:
        try:
            vat.validate_product_vat(rate.quantize(Decimal("0.01")), vat_nature)
        except ValidationFailed as error:
            errors.update({key: messages[0] for key, messages in error.fields.items()})
    if errors:
        raise ValidationFailed("The invoice line is not valid.", code="invalid_line", fields=errors)
    assert units is not None and price is not None and rate is not None
    amount = Money(units * price, currency).rounded().amount
    return units, price, rate, amount


def invoice_create_draft(
    *, account: BillingAccount, currency: str | None = None, actor_id: int | None = None
) -> Invoice:
    """An empty manual draft for the account (lines are added with :func:`invoice_line_add`)."""
    currency = (currency or account.currency).upper()
    if currency != account.currency:
        raise ValidationFailed(
            f"The account bills in {account.currency}.",
            code="currency_mismatch",
            fields={"currency": f"Must be {account.currency}."},
        )
    snapshot = account_snapshot(account)
    now = clock.now()
    with transaction.atomic():
        invoice = Invoice.objects.create(
            account=account,
            currency=currency,
            status=InvoiceStatus.DRAFT,
            customer_snapshot=snapshot,
            reverse_charge=vat.is_reverse_charge(vat_customer(snapshot)),
            created_at=now,
            updated_at=now,
        )
        audit.record(
            action="billing.invoice_draft_created",
            object_type="billing.invoice",
            object_id=str(invoice.public_id),
            after={"account": str(account.public_id), "currency": currency},
            actor_id=actor_id,
        )
    return invoice


def _locked_draft(invoice_id: int) -> Invoice:
    invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
    if invoice.status != InvoiceStatus.DRAFT:
        raise Conflict(f"Invoice {invoice} is {invoice.status}: only drafts can be edited.", code="not_draft")
    return invoice


def invoice_line_add(
    *,
    invoice: Invoice,
    description: str,
    quantity: Decimal | int | str = Decimal(1),
    unit_amount: Decimal | int | str,
    vat_rate: Decimal | int | str | None = None,
    vat_nature: str = "",
    product: Product | None = None,
    kind: str = InvoiceLineKind.ONE_TIME.value,
    actor_id: int | None = None,
) -> InvoiceLine:
    """Add a line to a draft. ``vat_rate``/``vat_nature`` are the product's Italian treatment (the
    product's when omitted, else 22%); the customer's regime may turn it into 0% N2.1."""
    if vat_rate is None:
        vat_rate = product.vat_rate if product is not None else Decimal("22")
        vat_nature = product.vat_nature if product is not None else vat_nature
    units, price, rate, amount = _validated_line(
        description=description,
        quantity=quantity,
        unit_amount=unit_amount,
        vat_rate=vat_rate,
        vat_nature=vat_nature,
        kind=kind,
        currency=invoice.currency,
    )
    line_vat = vat.line_vat(vat_customer(invoice.customer_snapshot), rate, vat_nature)
    with transaction.atomic():
        locked = _locked_draft(invoice.pk)
        position = (locked.lines.order_by("-position").values_list("position", flat=True).first() or 0) + 1
        line = InvoiceLine.objects.create(
            invoice=locked,
            kind=kind,
            description=description.strip(),
            quantity=units,
            unit_amount=price,
            amount=amount,
            vat_rate=line_vat.rate,
            vat_nature=line_vat.nature,
            product=product,
            position=position,
        )
        _recalculate(locked)
        audit.record(
            action="billing.invoice_line_added",
            object_type="billing.invoice",
            object_id=str(locked.public_id),
            after={"description": line.description, "amount": amount, "vat_rate": line.vat_rate},
            actor_id=actor_id,
        )
    invoice.refresh_from_db()
    return line


def invoice_line_remove(*, line: InvoiceLine, actor_id: int | None = None) -> None:
    with transaction.atomic():
        locked = _locked_draft(line.invoice_id)
        deleted, _rows = InvoiceLine.objects.filter(pk=line.pk, invoice=locked).delete()
        if not deleted:
            raise Conflict("The line is no longer on the invoice.", code="line_gone")
        _recalculate(locked)
        audit.record(
            action="billing.invoice_line_removed",
            object_type="billing.invoice",
            object_id=str(locked.public_id),
            before={"description": line.description, "amount": line.amount},
            actor_id=actor_id,
        )


# finalising -----------------------------------------------------------------------------------------


def number_text(kind: str, year: int, value: int) -> str:
    return f"{SERIES_PREFIX[kind]}-{year}-{value:06d}"


def series_for(kind: str, year: int) -> str:
    return f"{SERIES_PREFIX[kind]}-{year}"


def finalised_event(invoice: Invoice) -> InvoiceFinalised:
    return InvoiceFinalised(
        invoice_id=str(invoice.public_id),
        number=invoice.number or "",
        kind=invoice.kind,
        customer_id=str(invoice.customer_snapshot.get("public_id", "")),
        currency=invoice.currency,
        total=str(invoice.total),
        due_date=invoice.due_date.isoformat() if invoice.due_date else "",
    )


def mark_zero_total_paid(invoice: Invoice) -> None:
    """A total-zero invoice (a 100% coupon, a free plan) is issued already paid."""
    now = clock.now()
    invoice.status = InvoiceStatus.PAID
    invoice.paid_at = now
    invoice.first_paid_at = now
    invoice.save(update_fields=["status", "paid_at", "first_paid_at"])
    events.publish(
        InvoicePaid(
            invoice_id=str(invoice.public_id),
            number=invoice.number or "",
            customer_id=str(invoice.customer_snapshot.get("public_id", "")),
            currency=invoice.currency,
            total=str(invoice.total),
            paid_at=now.isoformat(),
        ),
        aggregate_type="billing.invoice",
        aggregate_id=str(invoice.public_id),
    )


def after_commit_delivery(invoice_id: int) -> None:
    from fedele.billing.services import delivery

    transaction.on_commit(lambda: delivery.invoice_send_later(invoice_id))


def _finalise_locked(invoice: Invoice, *, actor_id: int | None, apply_credit: bool = True) -> Invoice:
    if invoice.status != InvoiceStatus.DRAFT:
        raise Conflict(f"Invoice {invoice} is already {invoice.status}.", code="not_draft")
    if not invoice.lines.exists():
        raise ValidationFailed("An invoice needs at least one line.", code="empty_invoice")
    snapshot = account_snapshot(invoice.account)
    invoice.customer_snapshot = snapshot
    _recalculate(invoice)
    if invoice.total < 0:
        raise ValidationFailed(
            "The invoice total is negative: issue a credit note instead.", code="negative_invoice"
        )
    issue_date = business_today()
    invoice.fiscal_year = issue_date.year
    invoice.sequence_number = sequences.next_value(series_for(invoice.kind, issue_date.year))
    invoice.number = number_text(invoice.kind, issue_date.year, invoice.sequence_number)
    invoice.issue_date = issue_date
    invoice.due_date = issue_date + timedelta(days=invoice.account.payment_terms_days)
    invoice.status = InvoiceStatus.FINALISED
    invoice.finalised_at = invoice.updated_at = clock.now()
    invoice.save()
    audit.record(
        action="billing.invoice_finalised",
        object_type="billing.invoice",
        object_id=str(invoice.public_id),
        before={"status": InvoiceStatus.DRAFT},
        after={"status": invoice.status, "number": invoice.number, "total": invoice.total},
        actor_id=actor_id,
    )
    events.publish(
        finalised_event(invoice), aggregate_type="billing.invoice", aggregate_id=str(invoice.public_id)
    )
    if invoice.kind == InvoiceKind.INVOICE:
        if invoice.total == 0:
            mark_zero_total_paid(invoice)
        elif apply_credit:
            settlement.account_credit_apply(invoice=invoice)
    after_commit_delivery(invoice.pk)
    return invoice


def invoice_finalise(*, invoice: Invoice, actor_id: int | None = None) -> Invoice:
    """Draft → finalised: next gapless number of the fiscal year, dates, frozen customer snapshot,
    credit balance applied, InvoiceFinalised published; the PDF is e-mailed after commit."""
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().select_related("account").get(pk=invoice.pk)
        _finalise_locked(locked, actor_id=actor_id)
    invoice.refresh_from_db()
    return invoice


# voiding and credit notes ---------------------------------------------------------------------------


def credited_so_far(invoice: Invoice) -> Decimal:
    total = (
        Invoice.objects.filter(credit_note_for=invoice, kind=InvoiceKind.CREDIT_NOTE)
        .exclude(status=InvoiceStatus.VOID)
        .aggregate(total=Sum("total"))["total"]
    )
    return Decimal(total or 0)


def _split_gross(amount: Decimal, invoice: Invoice) -> list[tuple[Decimal, Decimal, str]]:
    """Split a gross amount over the invoice's VAT groups in proportion to their gross totals and
    return (taxable, rate, nature) per group such that taxable + round(taxable * rate) is the
    group's share (the nearest lower reachable amount when a cent cannot be reached)."""
    groups = list(invoice.tax_summaries.all())
    gross = [group.taxable_amount + group.tax_amount for group in groups]
    if sum(gross) <= 0:
        raise ValidationFailed("The invoice has nothing to credit.", code="nothing_to_credit")
    shares = Money(amount, invoice.currency).allocate([max(g, Decimal(0)) for g in gross])
    result = []
    for group, share in zip(groups, shares, strict=True):
        if share.is_zero():
            continue
        rate = group.vat_rate
        taxable = Money(share.amount * 100 / (100 + rate), invoice.currency).rounded().amount
        while (
            taxable > 0
            and taxable + Money(taxable * rate / 100, invoice.currency).rounded().amount > share.amount
        ):
            taxable -= Decimal("0.01")
        result.append((taxable, rate, group.vat_nature))
    return result


def _issue_credit_note(
    original: Invoice, amount: Decimal | None, reason: str, actor_id: int | None
) -> Invoice:
    """Create and number the credit note (caller holds the original's lock and allocates it)."""
    if original.kind != InvoiceKind.INVOICE or original.status not in (
        InvoiceStatus.FINALISED,
        InvoiceStatus.PAID,
    ):
        raise Conflict(
            f"{original} is a {original.kind} in status {original.status}: only finalised or paid "
            "invoices can be credited.",
            code="not_creditable",
        )
    creditable = original.total - credited_so_far(original)
    wanted = creditable if amount is None else amount
    if wanted <= 0 or wanted > creditable:
        raise ValidationFailed(
            f"At most {creditable} {original.currency} of {original} can still be credited.",
            code="credit_exceeds_invoice",
            fields={"amount": f"At most {creditable}."},
        )
    now = clock.now()
    note = Invoice.objects.create(
        kind=InvoiceKind.CREDIT_NOTE,
        account=original.account,
        subscription=original.subscription,
        credit_note_for=original,
        currency=original.currency,
        customer_snapshot=original.customer_snapshot,
        reverse_charge=original.reverse_charge,
        period_start=original.period_start,
        period_end=original.period_end,
        notes=reason,
        created_at=now,
        updated_at=now,
    )
    if wanted == original.total:
        lines = [
            InvoiceLine(
                invoice=note,
                kind=line.kind,
                description=f"{line.description}"[:500],
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                amount=line.amount,
                vat_rate=line.vat_rate,
                vat_nature=line.vat_nature,
                period_start=line.period_start,
                period_end=line.period_end,
                product_id=line.product_id,
                plan_charge_id=line.plan_charge_id,
                position=line.position,
            )
            for line in original.lines.all()
        ]
    else:
        lines = [
            InvoiceLine(
                invoice=note,
                kind=InvoiceLineKind.ADJUSTMENT,
                description=f"{reason} ({original.number})"[:500],
                quantity=Decimal(1),
                unit_amount=taxable,
                amount=taxable,
                vat_rate=rate,
                vat_nature=nature,
                position=position,
            )
            for position, (taxable, rate, nature) in enumerate(_split_gross(wanted, original), start=1)
        ]
    InvoiceLine.objects.bulk_create(lines)
    _finalise_locked(note, actor_id=actor_id, apply_credit=False)
    audit.record(
        action="billing.credit_note_created",
        object_type="billing.invoice",
        object_id=str(original.public_id),
        after={"credit_note": note.number, "amount": note.total, "reason": reason},
        actor_id=actor_id,
    )
    return note


def credit_note_create(
    *, invoice: Invoice, amount: Decimal | None = None, reason: str, actor_id: int | None = None
) -> Invoice:
    """A finalised credit note for ``amount`` (gross, VAT included; None = all that is left of the
    invoice). It settles the invoice's amount due first; any remainder becomes customer credit."""
    reason = (reason or "").strip()
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = "Say why the invoice is credited."
    elif len(reason) > 300:
        errors["reason"] = "At most 300 characters."
    if amount is not None and (not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0):
        errors["amount"] = "Must be a positive amount."
    elif amount is not None and amount != Money(amount, invoice.currency).rounded().amount:
        errors["amount"] = "At most two decimal places."
    if errors:
        raise ValidationFailed("The credit note is not valid.", code="invalid_credit_note", fields=errors)
    with transaction.atomic():
        original = settlement.locked_invoice(invoice.pk)
        note = _issue_credit_note(original, amount, reason, actor_id)
        _allocate_credit_note(note, original)
    note.refresh_from_db()
    return note


def _allocate_credit_note(note: Invoice, original: Invoice | None) -> None:
    """Settle the credited invoice first; the rest is the customer's credit."""
    remainder = note.total
    if original is not None and original.status in (InvoiceStatus.FINALISED, InvoiceStatus.PAID):
        remainder = settlement.invoice_settle(invoice=original, credited=note.total)
    if remainder > 0:
        settlement.account_credit_add(
            account_id=note.account_id,
            amount=remainder,
            reason=CreditEntry.Reason.CREDIT_NOTE,
            invoice=note,
            note=f"credit note {note.number}",
        )
    Invoice.objects.filter(pk=note.pk).update(amount_credited=note.total)


def invoice_void(*, invoice: Invoice, reason: str, actor_id: int | None = None) -> Invoice:
    """A draft is deleted (it was never numbered; the returned object says ``void``); a finalised,
    unpaid invoice is cancelled by a full credit note and marked void. A paid (even partly) invoice
    must be refunded or credited instead."""
    reason = (reason or "").strip()
    if not reason or len(reason) > 300:
        raise ValidationFailed(
            "Say why the invoice is voided (1-300 characters).",
            code="invalid_reason",
            fields={"reason": "Required, at most 300 characters."},
        )
    with transaction.atomic():
        locked = settlement.locked_invoice(invoice.pk)
        if locked.kind != InvoiceKind.INVOICE:
            raise Conflict("Credit notes cannot be voided.", code="not_voidable")
        if locked.status == InvoiceStatus.DRAFT:
            # A draft has no number and no legal existence: it is deleted (its one-off charges and
            # usage events go back to pending, through SET_NULL) rather than kept as a void shell.
            audit.record(
                action="billing.invoice_draft_deleted",
                object_type="billing.invoice",
                object_id=str(locked.public_id),
                before={"status": InvoiceStatus.DRAFT, "total": locked.total},
                after={"reason": reason},
                actor_id=actor_id,
            )
            locked.delete()
            invoice.status = InvoiceStatus.VOID
            return invoice
        if (
            locked.status == InvoiceStatus.FINALISED
            and locked.amount_paid == 0
            and locked.amount_credited == 0
        ):
            # Cancelled, not paid: the credit note offsets the invoice without settling it (no
            # InvoicePaid for a voided invoice) and never becomes customer credit.
            note = _issue_credit_note(locked, None, reason, actor_id)
            Invoice.objects.filter(pk=note.pk).update(amount_credited=note.total)
            locked.amount_credited = note.total
            locked.status = InvoiceStatus.VOID
        else:
            raise Conflict(
                f"{locked} is {locked.status} with {locked.amount_paid} paid and {locked.amount_credited} "
                "credited: refund or credit it instead of voiding.",
                code="not_voidable",
            )
        before_status = InvoiceStatus.FINALISED
        locked.voided_at = clock.now()
        locked.updated_at = locked.voided_at
        locked.save(update_fields=["status", "amount_credited", "voided_at", "updated_at"])
        audit.record(
            action="billing.invoice_voided",
            object_type="billing.invoice",
            object_id=str(locked.public_id),
            before={"status": before_status},
            after={"status": locked.status, "reason": reason},
            actor_id=actor_id,
        )
    invoice.refresh_from_db()
    return invoice


# documents ------------------------------------------------------------------------------------------


def invoice_pdf(invoice: Invoice, language: str) -> bytes:
    from fedele.billing.documents.pdf import render_invoice_pdf

    return render_invoice_pdf(invoice, language)


def invoice_fatturapa_xml(invoice: Invoice) -> bytes:
    from fedele.billing.documents.fatturapa import render_fatturapa

    return render_fatturapa(invoice)
