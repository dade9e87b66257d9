"""The quote PDF (fpdf2, core Helvetica font: Latin-1 text, amounts "1.234,56 EUR" in Italian and
"EUR 1,234.56" in English), in the house style of the invoice PDF whose formatting helpers it uses."""

from __future__ import annotations

from decimal import Decimal

from fedele.billing.documents import pdf as invoice_pdf
from fedele.billing.documents import seller
from fedele.billing.documents.fatturapa import latin
from fedele.billing.documents.pdf import format_amount, format_date, format_number, format_unit_price
from fedele.billing.models import Quote, QuoteLine
from fedele.customers.facade import customer_summary

LABELS: dict[str, dict[str, str]] = {
    "it": {
        "quote": "Preventivo",
        "draft": "BOZZA - non ancora inviato",
        "status_accepted": "ACCETTATO",
        "status_declined": "RIFIUTATO",
        "status_expired": "SCADUTO",
        "number": "Numero",
        "date": "Data",
        "valid_until": "Valido fino al",
        "customer": "Cliente",
        "vat_number": "P.IVA",
        "fiscal_code": "C.F.",
        "description": "Descrizione",
        "quantity": "Q.ta",
        "unit_price": "Prezzo unit.",
        "discount": "Sconto",
        "amount": "Importo",
        "per_period": "canone ricorrente",
        "one_off": "una tantum",
        "period_month": "al mese",
        "period_quarter": "al trimestre",
        "period_year": "all'anno",
        "subtotal": "Totale righe",
        "quote_discount": "Sconto sul preventivo",
        "setup_fee": "Costo di attivazione",
        "total": "Totale (IVA esclusa)",
        "recurring_total": "di cui canoni ricorrenti per periodo",
        "one_off_total": "di cui importi una tantum",
        "vat_note": (
            "Importi IVA esclusa: l'IVA di legge (22% salvo diversa indicazione) e' aggiunta in fattura."
        ),
        "how_to_accept": "Come accettare",
        "accept_link": "Per accettare o rifiutare il preventivo apra questo indirizzo entro il {date}:",
        "accept_contact": "Per accettare il preventivo risponda entro il {date} a {email}.",
        "accept_effect": "Con l'accettazione i servizi ricorrenti vengono attivati e fatturati in anticipo.",
        "notes": "Note",
        "footer": "Preventivo non valido ai fini fiscali",
    },
    "en": {
        "quote": "Quote",
        "draft": "DRAFT - not sent yet",
        "status_accepted": "ACCEPTED",
        "status_declined": "DECLINED",
        "status_expired": "EXPIRED",
        "number": "Number",
        "date": "Date",
        "valid_until": "Valid until",
        "customer": "Prepared for",
        "vat_number": "VAT no.",
        "fiscal_code": "Fiscal code",
        "description": "Description",
        "quantity": "Qty",
        "unit_price": "Unit price",
        "discount": "Discount",
        "amount": "Amount",
        "per_period": "recurring",
        "one_off": "one-off",
        "period_month": "per month",
        "period_quarter": "per quarter",
        "period_year": "per year",
        "subtotal": "Lines total",
        "quote_discount": "Quote discount",
        "setup_fee": "Setup fee",
        "total": "Total (excluding VAT)",
        "recurring_total": "of which recurring charges per period",
        "one_off_total": "of which one-off amounts",
        "vat_note": "Amounts exclude VAT: VAT at the legal rate (22% unless stated) is added on the invoice.",
        "how_to_accept": "How to accept",
        "accept_link": "To accept or decline this quote, open this address by {date}:",
        "accept_contact": "To accept this quote, reply by {date} to {email}.",
        "accept_effect": "On acceptance the recurring services start and are invoiced in advance.",
        "notes": "Notes",
        "footer": "Quote - not a tax document",
    },
}


def _percent(value: Decimal, language: str) -> str:
    return f"{format_number(value, language)}%" if value else ""


def display_description(line: QuoteLine, language: str) -> str:
    """The clerk's description, or the generated one (English, from pricing) in ``language``."""
    text = LABELS[language if language in LABELS else "it"]
    version = line.plan_version
    if version is None:
        return line.description
    if line.kind == "setup_fee" and line.description == f"Setup fee: {version.plan.name}"[:300]:
        return f"{text['setup_fee']}: {version.plan.name}"
    if (
        line.kind == "plan"
        and line.description == f"{version.plan.name} ({version.plan.billing_period})"[:300]
    ):
        return version.plan.name
    return line.description


def render_quote_pdf(quote: Quote, language: str, *, accept_url: str = "") -> bytes:
    """The quote a customer reads and accepts. ``accept_url`` is printed for a sent quote; without
    it the customer is told to reply to the seller's e-mail address."""
    language = language if language in LABELS else "it"
    text = LABELS[language]
    company = seller()
    customer = customer_summary(str(quote.account.customer.public_id))
    currency = quote.currency
    pdf = invoice_pdf.start_document(
        title=f"{text['quote']} {quote.number}",
        footer=f"{company['name']} - {text['vat_number']} IT{company['vat_number']} - {text['footer']}",
        author=company["name"],
    )
    line = pdf.text_line
    invoice_pdf.seller_block(pdf, company, text)

    # title and facts
    title = text["quote"]
    if quote.status == Quote.Status.DRAFT:
        title = f"{title} - {text['draft']}"
    elif quote.status in ("accepted", "declined", "expired"):
        title = f"{title} - {text['status_' + quote.status]}"
    line(title, size=13, style="B", height=7)
    line(
        f"{text['number']}: {quote.number}   "
        f"{text['date']}: {format_date((quote.sent_at or quote.created_at).date(), language)}   "
        f"{text['valid_until']}: {format_date(quote.valid_until, language)}"
    )
    pdf.ln(3)

    # customer block
    line(text["customer"], style="B")
    if customer is not None:
        line(customer.display_name, style="B")
        address = f"{customer.street}, {customer.postal_code} {customer.city}".strip(", ")
        if customer.province:
            address += f" ({customer.province})"
        line(f"{address} {customer.country}".strip())
        ids = []
        if customer.vat_number:
            ids.append(f"{text['vat_number']} {customer.vat_number}")
        if customer.fiscal_code:
            ids.append(f"{text['fiscal_code']} {customer.fiscal_code}")
        if ids:
            line("  ".join(ids))
        if customer.email:
            line(customer.email)
    pdf.ln(4)

    # lines
    widths = (76, 16, 28, 18, 42)
    headers = (text["description"], text["quantity"], text["unit_price"], text["discount"], text["amount"])
    pdf.set_font("Helvetica", style="B", size=8.5)
    pdf.set_fill_color(235, 238, 242)
    for width, header in zip(widths, headers, strict=True):
        pdf.cell(
            width, 6, latin(header, 40), border="B", fill=True, align="L" if header == headers[0] else "R"
        )
    pdf.ln()
    pdf.set_font("Helvetica", size=8.5)
    recurring_total = Decimal(0)
    one_off_total = Decimal(0)
    for quote_line in quote.lines.select_related("plan_version__plan").order_by("position", "id"):
        if quote_line.recurring:
            recurring_total += quote_line.amount
            period = quote_line.plan_version.plan.billing_period if quote_line.plan_version else ""
            kind = text.get(f"period_{period}", text["per_period"])
        else:
            one_off_total += quote_line.amount
            kind = text["one_off"]
        description = f"{display_description(quote_line, language)} ({kind})"
        y_before = pdf.get_y()
        pdf.multi_cell(widths[0], 4.6, latin(description, 500), new_x="RIGHT", new_y="TOP")
        height = max(pdf.get_y() - y_before, 4.6)
        pdf.set_xy(15 + widths[0], y_before)
        pdf.cell(widths[1], 4.6, format_number(quote_line.quantity, language), align="R")
        pdf.cell(widths[2], 4.6, format_unit_price(quote_line.unit_amount, currency, language), align="R")
        pdf.cell(widths[3], 4.6, _percent(quote_line.discount_percent, language), align="R")
        pdf.cell(widths[4], 4.6, format_amount(quote_line.amount, currency, language), align="R")
        pdf.set_xy(15, y_before + height + 1)
    pdf.ln(3)

    # totals
    rows: list[tuple[str, Decimal, str]] = [(text["subtotal"], quote.subtotal, "")]
    if quote.discount_amount:
        label = f"{text['quote_discount']} {_percent(quote.discount_percent, language)}"
        rows.append((label, -quote.discount_amount, ""))
    rows.append((text["total"], quote.total, "B"))
    for label, value, style in rows:
        pdf.set_font("Helvetica", style=style, size=10 if style else 9)
        pdf.cell(130, 5.5, latin(label, 80), align="R")
        pdf.cell(50, 5.5, format_amount(value, currency, language), align="R")
        pdf.ln()
    if recurring_total and one_off_total:
        # Before the quote-level discount: what each kind of line adds up to.
        for label, value in (
            (text["recurring_total"], recurring_total),
            (text["one_off_total"], one_off_total),
        ):
            pdf.set_font("Helvetica", size=8)
            pdf.cell(130, 4.6, latin(label, 80), align="R")
            pdf.cell(50, 4.6, format_amount(value, currency, language), align="R")
            pdf.ln()
    pdf.ln(3)
    line(text["vat_note"], size=8.5, style="I")
    if quote.notes:
        pdf.ln(2)
        line(text["notes"], style="B")
        line(quote.notes, size=8.5)

    # acceptance
    if quote.status in (Quote.Status.DRAFT, Quote.Status.SENT):
        pdf.ln(3)
        line(text["how_to_accept"], style="B")
        until = format_date(quote.valid_until, language)
        if accept_url:
            line(text["accept_link"].format(date=until), size=9)
            pdf.set_text_color(13, 110, 253)
            pdf.set_font("Helvetica", size=8.5)
            pdf.multi_cell(0, 4.6, latin(accept_url, 1000), new_x="LMARGIN", new_y="NEXT", link=accept_url)
            pdf.set_text_color(0)
        else:
            line(text["accept_contact"].format(date=until, email=company["email"]), size=9)
        line(text["accept_effect"], size=8.5)
    return bytes(pdf.output())
