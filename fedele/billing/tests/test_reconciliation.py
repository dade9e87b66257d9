"""Bank statement import: both layouts, matching by invoice number and amount, partial matches
flagged, confirmation into payments, duplicate-proof re-imports, bad lines by line number."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from fedele.billing.models import BankStatementImport, BankStatementLine, Payment
from fedele.billing.services import reconciliation
from fedele.billing.tests import payments_helpers as helpers
from fedele.shared.errors import ValidationFailed

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def invoices():  # type: ignore[no-untyped-def]
    account = helpers.account()
    big = helpers.finalised_invoice(account, "1011.93")  # 1234.55 with VAT
    small = helpers.finalised_invoice(account, "100.00")  # 122.00
    return big, small


def _italian(big, small) -> bytes:  # type: ignore[no-untyped-def]
    return (
        "data;importo;causale;riferimento\n"
        f"02/03/2026;1.234,55;BONIFICO DA ROSSI SALDO FATT {big.number.replace('-', ' ')};CRO123\n"
        f"03/03/2026;100,00;ACCONTO {small.number};CRO124\n"
        "04/03/2026;-50,00;COMMISSIONI;\n"
        "05/03/2026;77,00;BONIFICO SENZA RIFERIMENTI;CRO125\n"
    ).encode()


def test_italian_statement_matches_exact_and_flags_partial(invoices) -> None:  # type: ignore[no-untyped-def]
    big, small = invoices
    assert big.total == Decimal("1234.55")
    statement = reconciliation.statement_import(content=_italian(big, small), filename="estratto.csv")
    lines = list(statement.lines.order_by("line_number"))
    assert [(row.line_number, row.amount, row.status) for row in lines] == [
        (2, Decimal("1234.55"), "matched"),
        (3, Decimal("100.00"), "partial"),
        (4, Decimal("-50.00"), "debit"),
        (5, Decimal("77.00"), "unmatched"),
    ]
    assert lines[0].matched_invoice_id == big.pk and lines[1].matched_invoice_id == small.pk
    assert lines[0].booked_on == date(2026, 3, 2)
    assert reconciliation.statement_confirm_matched(statement=statement) == 1
    big.refresh_from_db()
    assert big.status == "paid"
    payment = Payment.objects.get()
    assert (payment.gateway, payment.method_kind, payment.received_on, payment.amount) == (
        "bank",
        "bank_transfer",
        date(2026, 3, 2),
        Decimal("1234.55"),
    )
    # the partial one confirmed by the clerk: a partial payment of the named invoice
    reconciliation.statement_line_confirm(line=lines[1])
    small.refresh_from_db()
    assert (small.status, small.amount_due) == ("finalised", Decimal("22.00"))
    # confirming twice records nothing more
    reconciliation.statement_line_confirm(line=lines[1])
    assert Payment.objects.count() == 2


def test_reimporting_the_same_file_creates_no_duplicates(invoices) -> None:  # type: ignore[no-untyped-def]
    content = _italian(*invoices)
    reconciliation.statement_import(content=content, filename="a.csv")
    second = reconciliation.statement_import(content=content, filename="a.csv")
    assert (second.lines_total, second.lines_new, second.lines_duplicate) == (4, 0, 4)
    assert BankStatementLine.objects.count() == 4


def test_identical_lines_in_one_file_are_both_kept() -> None:
    content = b"date,amount,description,reference\n2026-03-02,10.00,fee,\n2026-03-02,10.00,fee,\n"
    statement = reconciliation.statement_import(content=content, filename="en.csv")
    assert statement.lines_new == 2
    assert reconciliation.statement_import(content=content, filename="en.csv").lines_new == 0


def test_english_layout_and_amount_only_match_is_partial(invoices) -> None:  # type: ignore[no-untyped-def]
    _big, small = invoices
    content = (
        b'date,amount,description,reference\n2026-03-04,"1,234.55",transfer,\n2026-03-04,122.00,transfer,x\n'
    )
    statement = reconciliation.statement_import(content=content, filename="en.csv")
    statuses = list(statement.lines.order_by("line_number").values_list("status", "matched_invoice_id"))
    assert statuses[1] == ("partial", small.pk)
    assert statuses[0][0] == "partial"


def test_bad_lines_are_reported_by_number_and_nothing_is_imported() -> None:
    content = (
        b"data;importo;causale;riferimento\n31/02/2026;10,00;x;\n01/03/2026;1,2,3;y;\n01/03/2026;5,00;ok;\n"
    )
    with pytest.raises(ValidationFailed) as failure:
        reconciliation.statement_import(content=content, filename="bad.csv")
    assert set(failure.value.fields) == {"line 2", "line 3"}
    assert "31/02/2026" in failure.value.fields["line 2"][0]
    assert BankStatementImport.objects.count() == 0
    statement = reconciliation.statement_import(content=content, filename="bad.csv", skip_bad_lines=True)
    assert statement.lines_new == 1
    assert [e["line"] for e in statement.errors] == ["line 2", "line 3"]


def test_unknown_header_is_refused() -> None:
    with pytest.raises(ValidationFailed) as failure:
        reconciliation.statement_import(content=b"foo;bar\n1;2\n", filename="x.csv")
    assert failure.value.code == "invalid_statement"
