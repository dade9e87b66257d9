"""Bank reconciliation: import a bank statement CSV, match credits to open invoices, confirm matches
into payments, and leave the rest for a clerk to match by hand.

Two layouts are read: the Italian home-banking export ``data;importo;causale;riferimento`` (dates
dd/mm/yyyy, amounts ``1.234,56``) and ``date,amount,description,reference`` (ISO dates, ``1234.56``).
Each line is identified by a hash of its content (and its occurrence number among identical lines of
the same file), so importing the same file or an overlapping statement again adds nothing twice.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction

from fedele.billing.contracts import InvoiceKind, InvoiceStatus
from fedele.billing.models import BankStatementImport, BankStatementLine, Invoice, Payment
from fedele.billing.models.payments import Gateway, MethodKind
from fedele.billing.services import payments
from fedele.shared import audit, clock
from fedele.shared.csvfiles import csv_lines
from fedele.shared.errors import Conflict, ValidationFailed

MAX_BYTES = 5 * 1024 * 1024
MAX_LINES = 20_000
ITALIAN_HEADER = ["data", "importo", "causale", "riferimento"]
ENGLISH_HEADER = ["date", "amount", "description", "reference"]
INVOICE_NUMBER = re.compile(r"\b(INV|FT|NC|CN)[\s\-/_.]?(\d{4})[\s\-/_.]?(\d{1,6})\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ParsedLine:
    line_number: int
    booked_on: date
    amount: Decimal
    description: str
    reference: str


@dataclass(slots=True)
class ParseResult:
    format: str
    lines: list[ParsedLine] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def _parse_date(value: str, italian: bool) -> date:
    value = value.strip()
    formats = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d") if italian else ("%Y-%m-%d", "%d/%m/%Y")
    for pattern in formats:
        try:
            return datetime.strptime(value, pattern).date()  # noqa: DTZ007 (a calendar date)
        except ValueError:
            continue
    raise ValueError(f"date '{value}' is not a date (expected {'dd/mm/yyyy' if italian else 'yyyy-mm-dd'})")


def _parse_amount(value: str, italian: bool) -> Decimal:
    text = value.strip().replace(" ", "").replace("€", "").replace("\u00a0", "")
    if italian:
        if not re.fullmatch(r"[+-]?\d{1,3}(\.\d{3})*(,\d{1,2})?|[+-]?\d+(,\d{1,2})?", text):
            raise ValueError(f"amount '{value}' is not an amount like 1.234,56")
        text = text.replace(".", "").replace(",", ".")
    else:
        if not re.fullmatch(r"[+-]?\d{1,3}(,\d{3})*(\.\d{1,2})?|[+-]?\d+(\.\d{1,2})?", text):
            raise ValueError(f"amount '{value}' is not an amount like 1234.56")
        text = text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation as error:
        raise ValueError(f"amount '{value}' is not a number") from error
    if amount == 0:
        raise ValueError("amount is zero")
    if abs(amount) >= Decimal("1e13"):
        raise ValueError(f"amount '{value}' is too large")
    return amount


def parse_statement(content: bytes) -> ParseResult:
    """Read the CSV; every bad line is reported as ``{"line N": "why"}`` (line 1 is the header)."""
    if len(content) > MAX_BYTES:
        raise ValidationFailed(
            "The file is larger than 5 MB.", code="file_too_large", fields={"file": "Too large."}
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("cp1252", errors="replace")
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    rows = [row for _line, row in csv_lines(text, delimiter=delimiter)]
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    if header[:4] == ITALIAN_HEADER:
        italian = True
    elif header[:4] == ENGLISH_HEADER:
        italian = False
    else:
        raise ValidationFailed(
            "Unknown statement layout: the first line must be 'data;importo;causale;riferimento' or "
            "'date,amount,description,reference'.",
            code="invalid_statement",
            fields={"file": "Unknown column header."},
        )
    result = ParseResult(format="it" if italian else "en")
    if len(rows) - 1 > MAX_LINES:
        raise ValidationFailed(
            f"At most {MAX_LINES} lines per file.", code="file_too_large", fields={"file": "Too many lines."}
        )
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 2:
            result.errors[f"line {number}"] = "needs at least a date and an amount"
            continue
        cells = [*row, "", ""][:4]
        try:
            booked_on = _parse_date(cells[0], italian)
            amount = _parse_amount(cells[1], italian)
        except ValueError as error:
            result.errors[f"line {number}"] = str(error)
            continue
        result.lines.append(
            ParsedLine(number, booked_on, amount, cells[2].strip()[:500], cells[3].strip()[:200])
        )
    return result


def _line_hash(line: ParsedLine, occurrence: int) -> str:
    key = f"{line.booked_on.isoformat()}|{line.amount}|{line.description}|{line.reference}|{occurrence}"
    return hashlib.sha256(key.encode()).hexdigest()


def invoice_numbers_in(text: str) -> list[str]:
    found: list[str] = []
    for prefix, year, sequence in INVOICE_NUMBER.findall(text):
        number = f"{prefix.upper()}-{year}-{int(sequence):06d}"
        if number not in found:
            found.append(number)
    return found


def match_line(line: BankStatementLine) -> tuple[str, Invoice | None]:
    """(status, invoice): matched when the named invoice's amount due equals the credit; partial when
    only the number or only the amount fits (the clerk decides); unmatched otherwise."""
    if line.amount < 0:
        return BankStatementLine.Status.DEBIT, None
    numbers = invoice_numbers_in(f"{line.description} {line.reference}")
    invoices = list(
        Invoice.objects.filter(number__in=numbers, kind=InvoiceKind.INVOICE, currency=line.currency)
    )
    invoices.sort(key=lambda invoice: numbers.index(invoice.number or ""))
    for invoice in invoices:
        if invoice.status == InvoiceStatus.FINALISED and invoice.amount_due == line.amount:
            return BankStatementLine.Status.MATCHED, invoice
    if invoices:
        return BankStatementLine.Status.PARTIAL, invoices[0]
    by_amount = [
        invoice
        for invoice in Invoice.objects.filter(
            kind=InvoiceKind.INVOICE,
            status=InvoiceStatus.FINALISED,
            currency=line.currency,
            total__gte=line.amount,
        ).order_by("due_date", "pk")[:500]
        if invoice.amount_due == line.amount
    ]
    if len(by_amount) == 1:
        return BankStatementLine.Status.PARTIAL, by_amount[0]
    return BankStatementLine.Status.UNMATCHED, None


def statement_import(
    *, content: bytes, filename: str, skip_bad_lines: bool = False, actor_id: int | None = None
) -> BankStatementImport:
    """Import and match. With bad lines, nothing is imported unless ``skip_bad_lines`` (then the good
    lines are, and the bad ones are listed on the import)."""
    parsed = parse_statement(content)
    if parsed.errors and not skip_bad_lines:
        raise ValidationFailed(
            f"{len(parsed.errors)} line(s) of the statement are not valid; nothing was imported.",
            code="invalid_statement",
            fields=parsed.errors,
        )
    seen: dict[tuple[date, Decimal, str, str], int] = {}
    hashed: list[tuple[ParsedLine, str]] = []
    for line in parsed.lines:
        key = (line.booked_on, line.amount, line.description, line.reference)
        seen[key] = seen.get(key, 0) + 1
        hashed.append((line, _line_hash(line, seen[key])))
    with transaction.atomic():
        known = set(
            BankStatementLine.objects.filter(line_hash__in=[h for _, h in hashed]).values_list(
                "line_hash", flat=True
            )
        )
        statement = BankStatementImport.objects.create(
            filename=(filename or "statement.csv")[:200],
            file_hash=hashlib.sha256(content).hexdigest(),
            format=parsed.format,
            lines_total=len(parsed.lines),
            lines_new=len([h for _, h in hashed if h not in known]),
            lines_duplicate=len([h for _, h in hashed if h in known]),
            errors=[{"line": key, "error": message} for key, message in parsed.errors.items()],
            actor_id=actor_id,
            created_at=clock.now(),
        )
        for line, line_hash in hashed:
            if line_hash in known:
                continue
            row = BankStatementLine(
                statement=statement,
                line_number=line.line_number,
                booked_on=line.booked_on,
                amount=line.amount,
                description=line.description,
                reference=line.reference,
                line_hash=line_hash,
                status=BankStatementLine.Status.UNMATCHED,
            )
            row.status, row.matched_invoice = match_line(row)
            row.save()
        audit.record(
            action="billing.bank_statement_imported",
            object_type="billing.bank_statement",
            object_id=str(statement.public_id),
            after={
                "filename": statement.filename,
                "lines_new": statement.lines_new,
                "lines_duplicate": statement.lines_duplicate,
                "bad_lines": len(parsed.errors),
            },
            actor_id=actor_id,
        )
    return statement


def statement_line_confirm(
    *, line: BankStatementLine, invoice: Invoice | None = None, actor_id: int | None = None
) -> Payment:
    """Turn a credit line into a bank-transfer payment of ``invoice`` (the suggested match when None).
    Idempotent: the payment's reference is the line's hash."""
    target = invoice or line.matched_invoice
    if line.amount <= 0:
        raise ValidationFailed("A debit line is not a payment.", code="not_a_credit")
    if target is None:
        raise ValidationFailed(
            "Choose the invoice this transfer pays.", code="invoice_required", fields={"invoice": "Required."}
        )
    with transaction.atomic():
        locked = BankStatementLine.objects.select_for_update().get(pk=line.pk)
        if locked.status == BankStatementLine.Status.CONFIRMED and locked.payment is not None:
            return locked.payment
        if locked.status == BankStatementLine.Status.IGNORED:
            raise Conflict("The line was ignored; it cannot be confirmed.", code="line_ignored")
        payment = payments.payment_record(
            account=target.account,
            amount=locked.amount,
            currency=locked.currency,
            method=MethodKind.BANK_TRANSFER,
            gateway=Gateway.BANK,
            received_on=locked.booked_on,
            external_id=f"bank:{locked.line_hash[:40]}",
            invoice=target,
            note=f"{locked.description} {locked.reference}".strip()[:300],
            actor_id=actor_id,
        )
        locked.status = BankStatementLine.Status.CONFIRMED
        locked.matched_invoice = target
        locked.payment = payment
        locked.save(update_fields=["status", "matched_invoice", "payment"])
    line.refresh_from_db()
    return payment


def statement_confirm_matched(*, statement: BankStatementImport, actor_id: int | None = None) -> int:
    """Confirm every exact match of the import; partial matches wait for a clerk."""
    confirmed = 0
    for line in statement.lines.filter(status=BankStatementLine.Status.MATCHED).order_by("line_number"):
        statement_line_confirm(line=line, actor_id=actor_id)
        confirmed += 1
    return confirmed


def statement_line_ignore(*, line: BankStatementLine, actor_id: int | None = None) -> BankStatementLine:
    with transaction.atomic():
        locked = BankStatementLine.objects.select_for_update().get(pk=line.pk)
        if locked.status == BankStatementLine.Status.CONFIRMED:
            raise Conflict("A confirmed line cannot be ignored.", code="line_confirmed")
        locked.status = BankStatementLine.Status.IGNORED
        locked.save(update_fields=["status"])
        audit.record(
            action="billing.bank_line_ignored",
            object_type="billing.bank_statement_line",
            object_id=str(locked.public_id),
            actor_id=actor_id,
        )
    return locked
