"""FatturaPA 1.2.2 XML, format FPR12 (between private parties): TD01 invoices, TD04 credit notes.

The seller (CedentePrestatore) comes from the seller settings, the buyer (CessionarioCommittente)
from the invoice's frozen customer snapshot. CodiceDestinatario is the customer's SdI code, else
"0000000" (with PECDestinatario when there is a PEC), and "XXXXXXX" for foreign customers.
Credit notes carry positive amounts and name the invoice they credit (DatiFattureCollegate).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal
from typing import Any

from lxml import etree

from fedele.billing.contracts import InvoiceKind, InvoiceStatus
from fedele.billing.documents import seller
from fedele.billing.models import Invoice
from fedele.shared.errors import ValidationFailed

NAMESPACE = "http://ivaservizi.agenziaentrate.gov.it/docs/xsd/fatture/v1.2"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
FOREIGN_RECIPIENT = "XXXXXXX"
PEC_OR_PORTAL_RECIPIENT = "0000000"
ASCII_REPLACEMENTS = {
    "≤": "<=",
    "≥": ">=",
    "→": "->",
    "–": "-",
    "—": "-",
    "€": "EUR",
    "’": "'",
    "‘": "'",
    "“": '"',
    "”": '"',
    "…": "...",
}


def latin(text: str, limit: int) -> str:
    """Text the schema's Latin types accept (Basic Latin + Latin-1), cut to ``limit`` characters."""
    for original, replacement in ASCII_REPLACEMENTS.items():
        text = text.replace(original, replacement)
    text = unicodedata.normalize("NFC", text)
    cleaned = "".join(ch if ord(ch) < 256 and (ch.isprintable() or ch == " ") else "?" for ch in text)
    return " ".join(cleaned.split())[:limit] or "-"


def amount2(value: Decimal) -> str:
    return f"{Decimal(value).quantize(Decimal('0.01')):f}"


def amount8(value: Decimal) -> str:
    """PrezzoUnitario: 2 to 8 decimals, trailing zeros beyond the second dropped."""
    text = f"{Decimal(value).quantize(Decimal('0.00000001')):f}"
    integer, decimals = text.split(".")
    decimals = decimals.rstrip("0").ljust(2, "0")
    return f"{integer}.{decimals}"


def quantity(value: Decimal) -> str:
    return amount8(abs(Decimal(value)))


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def progressive(invoice: Invoice) -> str:
    """ProgressivoInvio: unique per file, at most 10 characters (the invoice's key in base 36)."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    number, text = invoice.pk, ""
    while number:
        number, remainder = divmod(number, 36)
        text = digits[remainder] + text
    return (text or "0").rjust(5, "0")


def fatturapa_filename(invoice: Invoice) -> str:
    return f"IT{seller()['vat_number']}_{progressive(invoice)}.xml"


def _vat_code(country: str, vat_number: str) -> str:
    compact = re.sub(r"[^A-Za-z0-9]", "", vat_number).upper()
    prefix = "EL" if country == "GR" else country
    if compact.startswith(prefix) and len(compact) > 2:
        compact = compact[2:]
    return compact[:28]


def _postal_code(snapshot: dict[str, Any], country: str) -> str:
    code = str(snapshot.get("postal_code") or "")
    return code if country == "IT" and re.fullmatch(r"[0-9]{5}", code) else "00000"


def _header(root: etree._Element, invoice: Invoice, company: dict[str, str]) -> None:
    snapshot = invoice.customer_snapshot or {}
    country = str(snapshot.get("country") or "IT").upper()
    header = _sub(root, "FatturaElettronicaHeader")
    transmission = _sub(header, "DatiTrasmissione")
    sender = _sub(transmission, "IdTrasmittente")
    _sub(sender, "IdPaese", "IT")
    _sub(sender, "IdCodice", company["vat_number"])
    _sub(transmission, "ProgressivoInvio", progressive(invoice))
    _sub(transmission, "FormatoTrasmissione", "FPR12")
    sdi_code = str(snapshot.get("sdi_code") or "").upper()
    pec = str(snapshot.get("pec") or "")
    if country != "IT":
        _sub(transmission, "CodiceDestinatario", FOREIGN_RECIPIENT)
    elif re.fullmatch(r"[A-Z0-9]{7}", sdi_code) and sdi_code != PEC_OR_PORTAL_RECIPIENT:
        _sub(transmission, "CodiceDestinatario", sdi_code)
    else:
        _sub(transmission, "CodiceDestinatario", PEC_OR_PORTAL_RECIPIENT)
        if pec:
            _sub(transmission, "PECDestinatario", pec[:256])

    supplier = _sub(header, "CedentePrestatore")
    supplier_data = _sub(supplier, "DatiAnagrafici")
    supplier_vat = _sub(supplier_data, "IdFiscaleIVA")
    _sub(supplier_vat, "IdPaese", "IT")
    _sub(supplier_vat, "IdCodice", company["vat_number"])
    if company["fiscal_code"]:
        _sub(supplier_data, "CodiceFiscale", company["fiscal_code"].upper())
    _sub(_sub(supplier_data, "Anagrafica"), "Denominazione", latin(company["name"], 80))
    _sub(supplier_data, "RegimeFiscale", company["tax_regime"])
    _address(supplier, company["street"], company["postal_code"], company["city"], company["province"], "IT")

    buyer = _sub(header, "CessionarioCommittente")
    buyer_data = _sub(buyer, "DatiAnagrafici")
    vat_number = str(snapshot.get("vat_number") or "")
    fiscal_code = re.sub(r"[^A-Za-z0-9]", "", str(snapshot.get("fiscal_code") or "")).upper()
    if vat_number:
        buyer_vat = _sub(buyer_data, "IdFiscaleIVA")
        _sub(buyer_vat, "IdPaese", "GR" if country == "GR" else country)
        _sub(buyer_vat, "IdCodice", _vat_code(country, vat_number))
    if country == "IT" and re.fullmatch(r"[A-Z0-9]{11,16}", fiscal_code):
        _sub(buyer_data, "CodiceFiscale", fiscal_code)
    elif not vat_number:
        if country == "IT":
            raise ValidationFailed(
                "An Italian customer needs a fiscal code or a VAT number for an electronic invoice.",
                code="missing_fiscal_code",
                fields={"fiscal_code": "Required for FatturaPA."},
            )
        buyer_vat = _sub(buyer_data, "IdFiscaleIVA")
        _sub(buyer_vat, "IdPaese", country)
        _sub(buyer_vat, "IdCodice", "99999999999")
    registry = _sub(buyer_data, "Anagrafica")
    first, last = str(snapshot.get("first_name") or ""), str(snapshot.get("last_name") or "")
    if snapshot.get("kind") == "person" and first and last:
        _sub(registry, "Nome", latin(first, 60))
        _sub(registry, "Cognome", latin(last, 60))
    else:
        _sub(
            registry,
            "Denominazione",
            latin(str(snapshot.get("name") or snapshot.get("company_name") or "-"), 80),
        )
    _address(
        buyer,
        str(snapshot.get("street") or ""),
        _postal_code(snapshot, country),
        str(snapshot.get("city") or ""),
        str(snapshot.get("province") or "") if country == "IT" else "",
        country,
    )


def _address(
    parent: etree._Element, street: str, postal_code: str, city: str, province: str, country: str
) -> None:
    seat = _sub(parent, "Sede")
    _sub(seat, "Indirizzo", latin(street or "-", 60))
    _sub(seat, "CAP", postal_code if re.fullmatch(r"[0-9]{5}", postal_code or "") else "00000")
    _sub(seat, "Comune", latin(city or "-", 60))
    if re.fullmatch(r"[A-Z]{2}", (province or "").upper()):
        _sub(seat, "Provincia", province.upper())
    _sub(seat, "Nazione", country)


def _body(root: etree._Element, invoice: Invoice, company: dict[str, str]) -> None:
    body = _sub(root, "FatturaElettronicaBody")
    general = _sub(body, "DatiGenerali")
    document = _sub(general, "DatiGeneraliDocumento")
    _sub(document, "TipoDocumento", "TD04" if invoice.kind == InvoiceKind.CREDIT_NOTE else "TD01")
    _sub(document, "Divisa", invoice.currency)
    _sub(document, "Data", (invoice.issue_date or invoice.created_at.date()).isoformat())
    _sub(document, "Numero", invoice.number or "")
    _sub(document, "ImportoTotaleDocumento", amount2(invoice.total))
    if invoice.reverse_charge:
        _sub(document, "Causale", "Inversione contabile - art. 7-ter DPR 633/72 (reverse charge)")
    if invoice.notes:
        _sub(document, "Causale", latin(invoice.notes, 200))
    original = invoice.credit_note_for
    if invoice.kind == InvoiceKind.CREDIT_NOTE and original is not None and original.number:
        linked = _sub(general, "DatiFattureCollegate")
        _sub(linked, "IdDocumento", original.number)
        if original.issue_date:
            _sub(linked, "Data", original.issue_date.isoformat())

    goods = _sub(body, "DatiBeniServizi")
    for number, line in enumerate(invoice.lines.all(), start=1):
        detail = _sub(goods, "DettaglioLinee")
        _sub(detail, "NumeroLinea", str(number))
        _sub(detail, "Descrizione", latin(line.description, 1000))
        unit_price = line.unit_amount
        units = line.quantity
        if units < 0:
            units, unit_price = -units, -unit_price
        _sub(detail, "Quantita", quantity(units))
        if line.period_start and line.period_end:
            _sub(detail, "DataInizioPeriodo", line.period_start.isoformat())
            # Periods are half-open [start, end): the document shows the last day billed.
            last_day = line.period_end.toordinal() - 1
            _sub(
                detail,
                "DataFinePeriodo",
                date.fromordinal(max(last_day, line.period_start.toordinal())).isoformat(),
            )
        _sub(detail, "PrezzoUnitario", amount8(unit_price))
        _sub(detail, "PrezzoTotale", amount2(line.amount))
        _sub(detail, "AliquotaIVA", amount2(line.vat_rate))
        if line.vat_rate == 0:
            _sub(detail, "Natura", line.vat_nature or "N2.2")
    for summary in invoice.tax_summaries.all():
        recap = _sub(goods, "DatiRiepilogo")
        _sub(recap, "AliquotaIVA", amount2(summary.vat_rate))
        if summary.vat_rate == 0:
            _sub(recap, "Natura", summary.vat_nature or "N2.2")
        _sub(recap, "ImponibileImporto", amount2(summary.taxable_amount))
        _sub(recap, "Imposta", amount2(summary.tax_amount))
        if summary.vat_rate != 0:
            _sub(recap, "EsigibilitaIVA", "I")
        if summary.legal_reference:
            _sub(recap, "RiferimentoNormativo", latin(summary.legal_reference, 100))

    if invoice.kind == InvoiceKind.INVOICE and invoice.total > 0:
        payment = _sub(body, "DatiPagamento")
        _sub(payment, "CondizioniPagamento", "TP02")
        detail = _sub(payment, "DettaglioPagamento")
        _sub(detail, "ModalitaPagamento", "MP05")
        if invoice.due_date:
            _sub(detail, "DataScadenzaPagamento", invoice.due_date.isoformat())
        _sub(detail, "ImportoPagamento", amount2(invoice.total))
        if company["bank"]:
            _sub(detail, "IstitutoFinanziario", latin(company["bank"], 80))
        if company["iban"]:
            _sub(detail, "IBAN", company["iban"].replace(" ", "").upper())
        if company["bic"]:
            _sub(detail, "BIC", company["bic"].upper())


def render_fatturapa(invoice: Invoice) -> bytes:
    """The FPR12 XML of an issued invoice or credit note (drafts have no number: refused)."""
    if invoice.status == InvoiceStatus.DRAFT or not invoice.number:
        raise ValidationFailed("Only issued invoices have an electronic invoice.", code="not_issued")
    company = seller()
    root = etree.Element(f"{{{NAMESPACE}}}FatturaElettronica", nsmap={"p": NAMESPACE, "ds": DSIG, "xsi": XSI})
    root.set("versione", "FPR12")
    _header(root, invoice, company)
    _body(root, invoice, company)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
