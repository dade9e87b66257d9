"""The quote PDF in Italian and English: seller, customer, number, validity, lines, totals, acceptance."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from fedele.billing.documents import pdf as invoice_pdf
from fedele.billing.documents.quote_pdf import render_quote_pdf
from fedele.billing.models import Quote
from fedele.billing.services.quote_pricing import LineInput
from fedele.billing.services.quotes import quote_create, quote_send
from fedele.billing.tests.factories import BillingAccountFactory, ProductFactory
from fedele.billing.tests.test_orders import seat_plan
from fedele.customers.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
LINK = "https://fedele.example/billing/q/abc:def/"


@pytest.fixture(autouse=True)
def readable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(invoice_pdf, "COMPRESS", False)
    with time_machine.travel(NOW, tick=False):
        yield


def _text(content: bytes) -> str:
    assert content.startswith(b"%PDF")
    assert b"/FlateDecode" not in content  # pages are not compressed in these tests
    return content.decode("latin-1").replace("\\(", "(").replace("\\)", ")")


def _quote() -> Quote:
    customer = CustomerFactory(
        kind="company",
        company_name="Caffè Sàn Marco S.r.l.",
        vat_number="IT01234567890",
        street="Via Garibaldi 7",
        postal_code="20121",
        city="Milano",
        province="MI",
    )
    quote = quote_create(
        account=BillingAccountFactory(customer=customer),
        lines=[
            LineInput(plan_version=seat_plan(), quantity=Decimal(2)),
            LineInput(
                product=ProductFactory(name="Installazione"),
                unit_amount=Decimal("1234.56"),
                discount_percent=Decimal("10"),
            ),
        ],
        valid_until=date(2026, 3, 31),
        discount_percent=Decimal("2.5"),
        notes="Prezzi bloccati per 12 mesi.",
    )
    return quote


def test_italian_quote_pdf_has_every_block() -> None:
    quote = quote_send(quote=_quote(), to_email="a@example.it", accept_url=LINK)
    # 2 x 12.50 = 25.00; setup 50.00; 1234.56 x 0.9 = 1111.104 -> 1111.10; subtotal 1186.10
    # quote discount 2.5% = 29.6525 -> 29.65; total 1156.45
    assert (quote.subtotal, quote.discount_amount, quote.total) == (
        Decimal("1186.10"),
        Decimal("29.65"),
        Decimal("1156.45"),
    )
    text = _text(render_quote_pdf(quote, "it", accept_url=LINK))
    for expected in (
        "fedele S.r.l.",  # seller
        "P.IVA IT01234567890",
        "Preventivo",
        "Numero: Q-2026-000001",
        "Valido fino al: 31/03/2026",
        "Caff\xe8 S\xe0n Marco S.r.l.",  # Latin-1 customer name
        "Via Garibaldi 7, 20121 Milano (MI) IT",
        "1.111,10 EUR",
        "1.234,56 EUR",
        "10%",
        "1.186,10 EUR",
        "Sconto sul preventivo 2,5%",
        "-29,65 EUR",
        "Totale (IVA esclusa)",
        "1.156,45 EUR",
        "Importi IVA esclusa",
        "Prezzi bloccati per 12 mesi.",
        "Come accettare",
        LINK,
        "Office (al mese)",
        "Costo di attivazione: Office (una tantum)",
        "Installazione (una tantum)",
    ):
        assert expected in text, expected


def test_english_quote_pdf_and_closed_quotes_have_no_link() -> None:
    quote = quote_send(quote=_quote(), to_email="a@example.it", accept_url=LINK)
    text = _text(render_quote_pdf(quote, "en", accept_url=LINK))
    for expected in (
        "Quote",
        "Valid until: 2026-03-31",
        "EUR 1,156.45",
        "EUR 1,111.10",
        "How to accept",
        "per month",
    ):
        assert expected in text, expected
    Quote.objects.filter(pk=quote.pk).update(status="accepted")
    quote.refresh_from_db()
    closed = _text(render_quote_pdf(quote, "en", accept_url=LINK))
    assert "ACCEPTED" in closed
    assert LINK not in closed and "How to accept" not in closed


def test_draft_without_link_says_how_to_reply_and_unknown_language_falls_back() -> None:
    quote = _quote()
    text = _text(render_quote_pdf(quote, "de"))
    assert "BOZZA - non ancora inviato" in text
    assert "risponda entro il 31/03/2026 a billing@fedele.local" in text
