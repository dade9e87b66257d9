"""A customer's account statement: every document and movement in date order with a running balance.

The balance is what the customer owes (positive) or is owed (negative): invoices add, credit notes,
payments and manual credits subtract, refunds add back. Credit applied to an invoice and credit
created by a credit note or an overpayment are shown for information but move nothing (the document
or payment they come from already did).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils.translation import gettext as _

from fedele.billing.contracts import InvoiceKind, InvoiceStatus
from fedele.billing.models import BillingAccount, CreditEntry, Invoice, Payment, Refund

ORDER = {"invoice": 0, "credit_note": 1, "payment": 2, "refund": 3, "credit": 4}


@dataclass(frozen=True, slots=True)
class StatementEntry:
    on: date
    kind: str
    reference: str
    description: str
    debit: Decimal
    credit: Decimal
    balance: Decimal
    object_id: str


@dataclass(frozen=True, slots=True)
class Statement:
    account: BillingAccount
    currency: str
    entries: list[StatementEntry]
    total_debit: Decimal
    total_credit: Decimal
    balance: Decimal


def account_statement(
    account: BillingAccount, *, date_from: date | None = None, date_to: date | None = None
) -> Statement:
    """Entries before ``date_from`` are folded into an opening balance line."""
    rows: list[tuple[date, int, int, str, str, str, Decimal, Decimal, str]] = []
    documents = Invoice.objects.filter(
        account=account, status__in=[InvoiceStatus.FINALISED, InvoiceStatus.PAID]
    ).only("pk", "public_id", "kind", "number", "issue_date", "total", "finalised_at", "created_at")
    for document in documents:
        on = document.issue_date or document.created_at.date()
        if document.kind == InvoiceKind.CREDIT_NOTE:
            rows.append(
                (
                    on,
                    ORDER["credit_note"],
                    document.pk,
                    "credit_note",
                    document.number or "",
                    _("Credit note"),
                    Decimal(0),
                    document.total,
                    str(document.public_id),
                )
            )
        else:
            rows.append(
                (
                    on,
                    ORDER["invoice"],
                    document.pk,
                    "invoice",
                    document.number or "",
                    _("Invoice"),
                    document.total,
                    Decimal(0),
                    str(document.public_id),
                )
            )
    for payment in Payment.objects.filter(account=account, status=Payment.Status.SUCCEEDED):
        rows.append(
            (
                payment.received_on,
                ORDER["payment"],
                payment.pk,
                "payment",
                payment.external_id,
                _("Payment (%(method)s)") % {"method": payment.get_method_kind_display()},
                Decimal(0),
                payment.amount,
                str(payment.public_id),
            )
        )
    for refund in Refund.objects.filter(payment__account=account, status=Refund.Status.SUCCEEDED):
        rows.append(
            (
                refund.created_at.date(),
                ORDER["refund"],
                refund.pk,
                "refund",
                refund.external_id,
                _("Refund: %(reason)s") % {"reason": refund.reason},
                refund.amount,
                Decimal(0),
                str(refund.public_id),
            )
        )
    for entry in CreditEntry.objects.filter(account=account):
        moves = entry.reason == CreditEntry.Reason.MANUAL
        debit = -entry.amount if moves and entry.amount < 0 else Decimal(0)
        credit = entry.amount if moves and entry.amount > 0 else Decimal(0)
        description = f"Credit {entry.get_reason_display()}: {entry.amount}" + (
            f" ({entry.note})" if entry.note else ""
        )
        rows.append(
            (entry.created_at.date(), ORDER["credit"], entry.pk, "credit", "", description, debit, credit, "")
        )
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    entries: list[StatementEntry] = []
    balance = Decimal(0)
    opening = Decimal(0)
    total_debit = total_credit = Decimal(0)
    for on, _order, _pk, kind, reference, description, debit, credit, object_id in rows:
        if date_to is not None and on > date_to:
            break
        if date_from is not None and on < date_from:
            opening += debit - credit
            balance = opening
            continue
        if date_from is not None and not entries and opening:
            entries.append(
                StatementEntry(
                    date_from, "opening", "", _("Opening balance"), Decimal(0), Decimal(0), opening, ""
                )
            )
        balance += debit - credit
        total_debit += debit
        total_credit += credit
        entries.append(StatementEntry(on, kind, reference, description, debit, credit, balance, object_id))
    return Statement(account, account.currency, entries, total_debit, total_credit, balance)


def statement_csv(statement: Statement) -> str:
    """Semicolon-separated with decimal commas, as Italian spreadsheets open it."""
    output = io.StringIO()
    writer = csv.writer(output, delimiter=";")
    writer.writerow(["date", "kind", "reference", "description", "debit", "credit", "balance"])
    for entry in statement.entries:
        writer.writerow(
            [
                entry.on.isoformat(),
                entry.kind,
                entry.reference,
                entry.description,
                f"{entry.debit:.2f}".replace(".", ","),
                f"{entry.credit:.2f}".replace(".", ","),
                f"{entry.balance:.2f}".replace(".", ","),
            ]
        )
    return output.getvalue()
