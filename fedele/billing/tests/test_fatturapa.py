"""FatturaPA FPR12 XML validated against the official 1.2.2 schema (lxml XMLSchema)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from fedele.billing.documents.fatturapa import amount8, fatturapa_filename, latin, render_fatturapa
from fedele.billing.models import Invoice
from fedele.billing.services.invoicing import (
    credit_note_create,
    invoice_create_draft,
    invoice_fatturapa_xml,
    invoice_finalise,
    invoice_line_add,
)
from fedele.billing.tests.invoicing_helpers import (
    german_company_account,
    italian_company_account,
    italian_consumer_account,
    swiss_company_account,
)
from fedele.shared.errors import ValidationFailed

pytestmark = pytest.mark.django_db
D = Decimal
SCHEMA_DIR = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "fatturapa"
# The "_localimport" copy differs from the official file in one line only: it imports the xmldsig
# schema from the local file instead of w3.org, so validation works offline (see SOURCE.md there).
SCHEMA_FILE = SCHEMA_DIR / "Schema_del_file_xml_FatturaPA_v1.2.2_localimport.xsd"
P = "{http://ivaservizi.agenziaentrate.gov.it/docs/xsd/fatture/v1.2}"


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    if not SCHEMA_FILE.exists():
        pytest.skip(
            f"FatturaPA schema folder not found at {SCHEMA_DIR.resolve()} (shared data not installed)"
        )
    return etree.XMLSchema(etree.parse(str(SCHEMA_FILE)))


@pytest.fixture(autouse=True)
def _frozen(time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(datetime(2026, 4, 2, 9, 0, tzinfo=UTC), tick=False)


def issued(account, *lines: tuple[str, str, str, str]) -> Invoice:  # type: ignore[no-untyped-def]
    invoice = invoice_create_draft(account=account)
    for description, quantity, unit_amount, rate in lines:
        invoice_line_add(
            invoice=invoice,
            description=description,
            quantity=D(quantity),
            unit_amount=D(unit_amount),
            vat_rate=D(rate),
            vat_nature="N4" if rate == "0" else "",
            kind="discount" if unit_amount.startswith("-") else "one_time",
        )
    return invoice_finalise(invoice=invoice)


def parse(schema: etree.XMLSchema, xml: bytes) -> etree._Element:
    document = etree.fromstring(xml)
    if not schema.validate(document):
        raise AssertionError(str(schema.error_log))
    return document


def text(document: etree._Element, path: str) -> list[str]:
    return [element.text for element in document.iter(path)]


@pytest.mark.parametrize(
    "name", ["IT01234567890_FPR01.xml", "IT01234567890_FPR02.xml", "IT01234567890_FPR03.xml"]
)
def test_official_samples_pass_the_same_validator(schema: etree.XMLSchema, name: str) -> None:
    assert schema.validate(etree.parse(str(SCHEMA_DIR / name))), schema.error_log


def test_invoice_to_an_italian_company(schema: etree.XMLSchema) -> None:
    invoice = issued(
        italian_company_account(),
        ("Fibra 1 Gbit - aprile", "1", "29.90", "22"),
        ("API calls ≤ 1000 → tier 1", "12345", "0.0004", "22"),
        ("Libro", "2", "12.50", "4"),
        ("Sconto fedeltà", "1", "-5", "22"),
    )
    document = parse(schema, invoice_fatturapa_xml(invoice))
    assert document.get("versione") == "FPR12"
    assert text(document, "CodiceDestinatario") == ["ABC1234"]
    assert text(document, "TipoDocumento") == ["TD01"]
    assert text(document, "Numero") == ["INV-2026-000001"]
    assert text(document, "Data") == ["2026-04-02"]
    assert text(document, "PrezzoTotale") == ["29.90", "4.94", "25.00", "-5.00"]
    assert text(document, "PrezzoUnitario") == ["29.90", "0.0004", "12.50", "-5.00"]
    assert text(document, "Descrizione")[1] == "API calls <= 1000 -> tier 1"
    assert text(document, "ImponibileImporto") == ["29.84", "25.00"]
    assert text(document, "Imposta") == ["6.56", "1.00"]
    assert text(document, "ImportoTotaleDocumento") == ["62.40"]
    assert text(document, "ImportoPagamento") == ["62.40"]
    assert text(document, "DataScadenzaPagamento") == ["2026-05-02"]
    assert text(document, "ModalitaPagamento") == ["MP05"]
    assert fatturapa_filename(invoice) == f"IT01234567890_{text(document, 'ProgressivoInvio')[0]}.xml"


def test_invoice_to_an_italian_consumer_uses_the_fiscal_code_and_0000000(schema: etree.XMLSchema) -> None:
    account = italian_consumer_account()
    customer = account.customer
    customer.pec = "mario@pec.it"
    customer.save()
    document = parse(schema, render_fatturapa(issued(account, ("Canone", "1", "10", "22"))))
    assert text(document, "CodiceDestinatario") == ["0000000"]
    assert text(document, "PECDestinatario") == ["mario@pec.it"]
    assert text(document, "CodiceFiscale")[-1] == "RSSMRA85T10A562S"
    assert text(document, "Nome") == ["Mario"]
    assert text(document, "CAP") == ["00100", "00185"]


def test_reverse_charge_invoice_to_a_german_company(schema: etree.XMLSchema) -> None:
    document = parse(
        schema, render_fatturapa(issued(german_company_account(), ("Consulting", "10", "120", "22")))
    )
    assert text(document, "CodiceDestinatario") == ["XXXXXXX"]
    assert text(document, "IdPaese") == ["IT", "IT", "DE"]
    assert text(document, "IdCodice")[-1] == "136695976"
    assert text(document, "AliquotaIVA") == ["0.00", "0.00"]
    assert text(document, "Natura") == ["N2.1", "N2.1"]
    assert text(document, "RiferimentoNormativo") == ["Inversione contabile - art. 7-ter DPR 633/72"]
    assert "reverse charge" in text(document, "Causale")[0]
    assert text(document, "CAP")[-1] == "00000"


def test_non_eu_customer_is_out_of_scope(schema: etree.XMLSchema) -> None:
    document = parse(schema, render_fatturapa(issued(swiss_company_account(), ("Licence", "1", "500", "22"))))
    assert text(document, "Natura") == ["N2.1", "N2.1"]
    assert text(document, "RiferimentoNormativo") == ["Operazione non soggetta - art. 7-ter DPR 633/72"]
    assert text(document, "ImportoTotaleDocumento") == ["500.00"]


def test_credit_note_is_td04_with_positive_amounts_and_the_linked_invoice(schema: etree.XMLSchema) -> None:
    invoice = issued(italian_company_account(), ("Canone", "1", "100", "22"), ("Esente", "1", "10", "0"))
    note = credit_note_create(invoice=invoice, amount=D("61.00"), reason="Rimborso parziale")
    document = parse(schema, render_fatturapa(note))
    assert text(document, "TipoDocumento") == ["TD04"]
    assert text(document, "IdDocumento") == ["INV-2026-000001"]
    assert text(document, "Numero") == ["NC-2026-000001"]
    assert text(document, "ImportoTotaleDocumento") == ["61.00"]
    # 61.00 split by gross 122.00 : 10.00 → 56.38 + 4.62; 56.38 = 46.21 + 22% (10.17)
    assert text(document, "ImponibileImporto") == ["46.21", "4.62"]
    assert text(document, "Imposta") == ["10.17", "0.00"]
    assert text(document, "Natura") == ["N4", "N4"]
    assert not list(document.iter("DatiPagamento"))


def test_drafts_have_no_xml() -> None:
    draft = invoice_create_draft(account=italian_consumer_account())
    with pytest.raises(ValidationFailed):
        render_fatturapa(draft)


def test_italian_customer_without_any_tax_code_is_refused() -> None:
    account = italian_consumer_account()
    account.customer.fiscal_code = ""
    account.customer.save()
    invoice = issued(account, ("Canone", "1", "10", "22"))
    with pytest.raises(ValidationFailed) as error:
        render_fatturapa(invoice)
    assert error.value.code == "missing_fiscal_code"


def test_helpers() -> None:
    assert amount8(D("0.0004")) == "0.0004"
    assert amount8(D("12")) == "12.00"
    assert amount8(D("-1.5")) == "-1.50"
    assert latin("Caffè – €5 ☕", 100) == "Caffè - EUR5 ?"
    assert latin("x" * 300, 80) == "x" * 80
    assert date(2026, 4, 2).isoformat() == "2026-04-02"
