"""The invoice PDF: a real document in Italian and English (text read from uncompressed output)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fedele.billing.documents import pdf as pdf_module
from fedele.billing.documents.pdf import format_amount, format_unit_price
from fedele.billing.models import Invoice
from fedele.billing.services.invoicing import (
    credit_note_create,
    invoice_create_draft,
    invoice_finalise,
    invoice_line_add,
    invoice_pdf,
)
from fedele.billing.tests.invoicing_helpers import german_company_account, italian_consumer_account

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def _setup(time_machine, monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(datetime(2026, 4, 2, 9, 0, tzinfo=UTC), tick=False)
    monkeypatch.setattr(pdf_module, "COMPRESS", False)
    settings.FEDELE_SELLER = {
        "name": "Fedele Telecom S.p.A.",
        "vat_number": "09876543210",
        "iban": "IT02L1234512345123456789012",
    }


def page_text(data: bytes) -> str:
    """The strings drawn with Tj in the uncompressed content streams, joined by spaces."""
    raw = data.decode("latin-1")
    return " ".join(
        match.replace("\\(", "(").replace("\\)", ")")
        for match in re.findall(r"\(((?:[^()\\]|\\.)*)\)\s*Tj", raw)
    )


def issued(account, amount: str = "1234.5") -> Invoice:  # type: ignore[no-untyped-def]
    invoice = invoice_create_draft(account=account)
    invoice_line_add(invoice=invoice, description="Fibra 1 Gbit - canone", unit_amount=D(amount))
    invoice_line_add(
        invoice=invoice, description="Chiamate API", quantity=D("12345"), unit_amount=D("0.0004")
    )
    return invoice_finalise(invoice=invoice)


def test_italian_invoice_has_every_block() -> None:
    invoice = issued(italian_consumer_account())
    data = invoice_pdf(invoice, "it")
    assert data[:5] == b"%PDF-"
    text = page_text(data)
    for expected in [
        "Fedele Telecom S.p.A.",
        "P.IVA IT09876543210",
        "Fattura",
        "Numero: INV-2026-000001",
        "Data: 02/04/2026",
        "Scadenza: 02/05/2026",
        "RSSMRA85T10A562S",
        "Fibra 1 Gbit - canone",
        "1.234,50 EUR",  # line
        "0,0004 EUR",  # sub-cent unit price
        "4,94 EUR",  # 12345 x 0.0004
        "Imponibile 1.239,44 EUR",
        "Imposta 272,68 EUR",
        "1.512,12 EUR",  # total
        "IBAN: IT02L1234512345123456789012",
        "Causale: INV-2026-000001",
    ]:
        assert expected in text, expected


def test_english_invoice_uses_english_labels_and_amounts() -> None:
    text = page_text(invoice_pdf(issued(italian_consumer_account()), "en"))
    for expected in [
        "Invoice",
        "Number: INV-2026-000001",
        "Date: 2026-04-02",
        "EUR 1,234.50",
        "EUR 1,512.12",
        "Amount due",
    ]:
        assert expected in text, expected


def test_reverse_charge_wording_on_the_pdf() -> None:
    invoice = issued(german_company_account(), "100")
    text_it = page_text(invoice_pdf(invoice, "it"))
    text_en = page_text(invoice_pdf(invoice, "en"))
    assert "inversione contabile" in text_it and "7-ter" in text_it
    assert "VAT reverse charge" in text_en
    assert "104,94 EUR" in text_it  # no VAT added


def test_credit_note_pdf_names_the_invoice() -> None:
    invoice = issued(italian_consumer_account(), "100")
    note = credit_note_create(invoice=invoice, reason="Rimborso")
    text = page_text(invoice_pdf(note, "it"))
    assert (
        "Nota di credito" in text
        and "NC-2026-000001" in text
        and "Storno della fattura INV-2026-000001" in text
    )


def test_draft_is_marked_as_not_valid() -> None:
    draft = invoice_create_draft(account=italian_consumer_account())
    invoice_line_add(invoice=draft, description="x", unit_amount=D("1"))
    assert "BOZZA" in page_text(invoice_pdf(draft, "it"))


@pytest.mark.parametrize(
    ("value", "language", "expected"),
    [
        (D("1234.5"), "it", "1.234,50 EUR"),
        (D("1234.5"), "en", "EUR 1,234.50"),
        (D("-0.5"), "it", "-0,50 EUR"),
        (D("0"), "en", "EUR 0.00"),
        (D("99999999999.99"), "it", "99.999.999.999,99 EUR"),
    ],
)
def test_format_amount(value: Decimal, language: str, expected: str) -> None:
    assert format_amount(value, "EUR", language) == expected


def test_format_unit_price_keeps_sub_cent_precision() -> None:
    assert format_unit_price(D("0.000400"), "EUR", "it") == "0,0004 EUR"
    assert format_unit_price(D("12.500000"), "EUR", "en") == "EUR 12.50"
