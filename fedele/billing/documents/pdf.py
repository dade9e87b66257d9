"""The invoice PDF (fpdf2, core Helvetica font, so Latin-1 text only: amounts are written
"1.234,56 EUR" in Italian and "EUR 1,234.56" in English, never with the euro glyph)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fpdf import FPDF

from fedele.billing.contracts import InvoiceKind, InvoiceStatus
from fedele.billing.documents import seller
from fedele.billing.documents.fatturapa import latin
from fedele.billing.models import Invoice
from fedele.billing.services import vat

COMPRESS = True
"""Tests turn compression off to read the text drawn on the page."""

LABELS: dict[str, dict[str, str]] = {
    "it": {
        "invoice": "Fattura",
        "credit_note": "Nota di credito",
        "draft": "BOZZA - documento non valido ai fini fiscali",
        "number": "Numero",
        "issue_date": "Data",
        "due_date": "Scadenza",
        "period": "Periodo",
        "customer": "Cliente",
        "vat_number": "P.IVA",
        "fiscal_code": "C.F.",
        "description": "Descrizione",
        "quantity": "Q.ta",
        "unit_price": "Prezzo unit.",
        "vat": "IVA",
        "amount": "Importo",
        "vat_summary": "Riepilogo IVA",
        "taxable": "Imponibile",
        "tax": "Imposta",
        "subtotal": "Imponibile totale",
        "tax_total": "IVA totale",
        "total": "Totale documento",
        "paid": "Pagato",
        "credited": "Stornato / credito applicato",
        "amount_due": "Da pagare",
        "payment": "Pagamento: bonifico bancario entro il",
        "iban": "IBAN",
        "reference": "Causale",
        "credits": "Storno della fattura",
        "void": "ANNULLATA",
        "electronic": "Copia di cortesia: l'originale e' la fattura elettronica trasmessa tramite SdI.",
    },
    "en": {
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "draft": "DRAFT - not a valid tax document",
        "number": "Number",
        "issue_date": "Date",
        "due_date": "Due date",
        "period": "Period",
        "customer": "Bill to",
        "vat_number": "VAT no.",
        "fiscal_code": "Fiscal code",
        "description": "Description",
        "quantity": "Qty",
        "unit_price": "Unit price",
        "vat": "VAT",
        "amount": "Amount",
        "vat_summary": "VAT summary",
        "taxable": "Taxable",
        "tax": "VAT",
        "subtotal": "Total before VAT",
        "tax_total": "Total VAT",
        "total": "Total",
        "paid": "Paid",
        "credited": "Credited / credit applied",
        "amount_due": "Amount due",
        "payment": "Payment: bank transfer by",
        "iban": "IBAN",
        "reference": "Reference",
        "credits": "Credits invoice",
        "void": "VOID",
        "electronic": "Courtesy copy: the original is the electronic invoice sent through the SdI.",
    },
}


def format_amount(value: Decimal, currency: str, language: str) -> str:
    """'1.234,56 EUR' (it) or 'EUR 1,234.56' (en); negative amounts keep their sign."""
    amount = Decimal(value).quantize(Decimal("0.01"))
    sign = "-" if amount < 0 else ""
    integer, decimals = f"{abs(amount):f}".split(".")
    groups = f"{int(integer):,}"
    if language == "it":
        return f"{sign}{groups.replace(',', '.')},{decimals} {currency}"
    return f"{sign}{currency} {groups}.{decimals}"


def format_number(value: Decimal, language: str) -> str:
    text = f"{Decimal(value).normalize():f}"
    return text.replace(".", ",") if language == "it" else text


def format_unit_price(value: Decimal, currency: str, language: str) -> str:
    """Unit prices may carry sub-cent precision (0.0004 per call): show up to 6 decimals."""
    amount = Decimal(value)
    if amount == amount.quantize(Decimal("0.01")):
        return format_amount(amount, currency, language)
    text = f"{amount.normalize():f}"
    return f"{text.replace('.', ',')} {currency}" if language == "it" else f"{currency} {text}"


def format_date(day: date | None, language: str) -> str:
    if day is None:
        return "-"
    return day.strftime("%d/%m/%Y") if language == "it" else day.isoformat()


def _last_day(end: date | None) -> date | None:
    return end - timedelta(days=1) if end else None


class Document(FPDF):
    """An A4 page with the house footer (issuer, page n/N); shared by invoices and quotes."""

    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        self.set_text_color(110)
        self.cell(0, 5, latin(self.footer_text, 300), align="L")
        self.cell(0, 5, f"{self.page_no()}/{{nb}}", align="R")

    def text_line(self, value: str, size: float = 9, style: str = "", height: float = 4.6) -> None:
        self.set_font("Helvetica", style=style, size=size)
        self.multi_cell(0, height, latin(value, 2000), new_x="LMARGIN", new_y="NEXT")


def start_document(*, title: str, footer: str, author: str) -> Document:
    pdf = Document(format="A4")
    pdf.set_compression(COMPRESS)
    pdf.footer_text = footer
    pdf.set_title(latin(title, 100))
    pdf.set_author(latin(author, 80))
    pdf.alias_nb_pages()
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    pdf.set_margins(15, 15, 15)
    return pdf


def seller_block(pdf: Document, company: dict[str, str], text: dict[str, str]) -> None:
    """Name, address, VAT number and fiscal code, contacts of the issuing company."""
    pdf.text_line(company["name"], size=14, style="B", height=7)
    place = f"{company['postal_code']} {company['city']} ({company['province']}) {company['country']}"
    pdf.text_line(f"{company['street']}, {place}")
    pdf.text_line(
        f"{text['vat_number']} IT{company['vat_number']}  {text['fiscal_code']} {company['fiscal_code']}"
    )
    contacts = "  ".join(v for v in (company["email"], company["pec"], company["phone"]) if v)
    if contacts:
        pdf.text_line(contacts)
    pdf.ln(4)


def render_invoice_pdf(invoice: Invoice, language: str) -> bytes:
    language = language if language in LABELS else "it"
    text = LABELS[language]
    company = seller()
    snapshot: dict[str, Any] = invoice.customer_snapshot or {}
    currency = invoice.currency
    pdf = start_document(
        title=f"{text[invoice.kind]} {invoice.number or ''}",
        footer=f"{company['name']} - {text['vat_number']} IT{company['vat_number']} - {text['electronic']}",
        author=company["name"],
    )
    line = pdf.text_line
    seller_block(pdf, company, text)

    # title and dates
    title = text[invoice.kind]
    if invoice.status == InvoiceStatus.DRAFT:
        title = f"{title} - {text['draft']}"
    elif invoice.status == InvoiceStatus.VOID:
        title = f"{title} - {text['void']}"
    line(title, size=13, style="B", height=7)
    facts = [
        f"{text['number']}: {invoice.number or '-'}",
        f"{text['issue_date']}: {format_date(invoice.issue_date, language)}",
    ]
    if invoice.kind == InvoiceKind.INVOICE:
        facts.append(f"{text['due_date']}: {format_date(invoice.due_date, language)}")
    if invoice.period_start and invoice.period_end:
        facts.append(
            f"{text['period']}: {format_date(invoice.period_start, language)} - "
            f"{format_date(_last_day(invoice.period_end), language)}"
        )
    line("   ".join(facts))
    if invoice.kind == InvoiceKind.CREDIT_NOTE and invoice.credit_note_for_id and invoice.credit_note_for:
        original = invoice.credit_note_for
        line(f"{text['credits']} {original.number} ({format_date(original.issue_date, language)})")
    pdf.ln(3)

    # customer block
    line(text["customer"], style="B")
    line(str(snapshot.get("name") or ""), style="B")
    address = (
        f"{snapshot.get('street') or ''}, {snapshot.get('postal_code') or ''} {snapshot.get('city') or ''}"
    )
    if snapshot.get("province"):
        address += f" ({snapshot['province']})"
    line(f"{address.strip(', ')} {snapshot.get('country') or ''}".strip())
    ids = []
    if snapshot.get("vat_number"):
        ids.append(f"{text['vat_number']} {snapshot['vat_number']}")
    if snapshot.get("fiscal_code"):
        ids.append(f"{text['fiscal_code']} {snapshot['fiscal_code']}")
    if snapshot.get("sdi_code"):
        ids.append(f"SdI {snapshot['sdi_code']}")
    if snapshot.get("pec"):
        ids.append(f"PEC {snapshot['pec']}")
    if ids:
        line("  ".join(ids))
    pdf.ln(4)

    # lines table
    widths = (86, 16, 28, 14, 36)
    headers = (text["description"], text["quantity"], text["unit_price"], text["vat"], text["amount"])
    pdf.set_font("Helvetica", style="B", size=8.5)
    pdf.set_fill_color(235, 238, 242)
    for width, header in zip(widths, headers, strict=True):
        pdf.cell(
            width, 6, latin(header, 40), border="B", fill=True, align="L" if header == headers[0] else "R"
        )
    pdf.ln()
    pdf.set_font("Helvetica", size=8.5)
    for invoice_line in invoice.lines.all():
        description = invoice_line.description
        if invoice_line.period_start and invoice_line.period_end:
            description += (
                f" ({format_date(invoice_line.period_start, language)} - "
                f"{format_date(_last_day(invoice_line.period_end), language)})"
            )
        rate = (
            f"{invoice_line.vat_rate.normalize():f}%"
            if invoice_line.vat_rate
            else (invoice_line.vat_nature or "0%")
        )
        y_before = pdf.get_y()
        pdf.multi_cell(widths[0], 4.6, latin(description, 500), new_x="RIGHT", new_y="TOP")
        height = max(pdf.get_y() - y_before, 4.6)
        pdf.set_xy(15 + widths[0], y_before)
        pdf.cell(widths[1], 4.6, format_number(invoice_line.quantity, language), align="R")
        pdf.cell(widths[2], 4.6, format_unit_price(invoice_line.unit_amount, currency, language), align="R")
        pdf.cell(widths[3], 4.6, rate, align="R")
        pdf.cell(widths[4], 4.6, format_amount(invoice_line.amount, currency, language), align="R")
        pdf.set_xy(15, y_before + height + 1)
    pdf.ln(3)

    # VAT summary
    line(text["vat_summary"], style="B")
    pdf.set_font("Helvetica", size=8.5)
    natures = []
    for summary in invoice.tax_summaries.all():
        label = f"{summary.vat_rate.normalize():f}%" if summary.vat_rate else f"0% {summary.vat_nature}"
        if summary.legal_reference:
            label += f" - {summary.legal_reference}"
        natures.append(summary.vat_nature)
        pdf.cell(96, 4.6, latin(label, 100))
        pdf.cell(
            42,
            4.6,
            f"{text['taxable']} {format_amount(summary.taxable_amount, currency, language)}",
            align="R",
        )
        pdf.cell(42, 4.6, f"{text['tax']} {format_amount(summary.tax_amount, currency, language)}", align="R")
        pdf.ln()
    pdf.ln(2)

    # totals
    rows = [
        (text["subtotal"], invoice.subtotal, ""),
        (text["tax_total"], invoice.tax_total, ""),
        (text["total"], invoice.total, "B"),
    ]
    if invoice.kind == InvoiceKind.INVOICE and invoice.status != InvoiceStatus.DRAFT:
        if invoice.amount_paid:
            rows.append((text["paid"], invoice.amount_paid, ""))
        if invoice.amount_credited:
            rows.append((text["credited"], invoice.amount_credited, ""))
        rows.append((text["amount_due"], max(invoice.amount_due, Decimal(0)), "B"))
    for label, value, style in rows:
        pdf.set_font("Helvetica", style=style, size=10 if style else 9)
        pdf.cell(130, 5.5, latin(label, 60), align="R")
        pdf.cell(50, 5.5, format_amount(value, currency, language), align="R")
        pdf.ln()
    pdf.ln(3)

    for sentence in vat.exemption_wording(natures, reverse_charge=invoice.reverse_charge, language=language):
        line(sentence, size=8.5, style="I")
    if invoice.notes:
        line(invoice.notes, size=8.5)
    if (
        invoice.kind == InvoiceKind.INVOICE
        and invoice.amount_due > 0
        and invoice.status != InvoiceStatus.VOID
    ):
        pdf.ln(2)
        line(f"{text['payment']} {format_date(invoice.due_date, language)}", style="B")
        line(f"{text['iban']}: {company['iban']}" + (f"  BIC {company['bic']}" if company["bic"] else ""))
        if company["bank"]:
            line(company["bank"])
        line(f"{text['reference']}: {invoice.number or ''}")
    return bytes(pdf.output())
