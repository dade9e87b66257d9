"""Payments: recording, allocation oldest first, partial and over-payments, idempotency, failures,
SEPA mandates and pain.008 collection files, returned debits."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from lxml import etree

from fedele.billing.models import CreditEntry, Invoice, Payment, PaymentAllocation, SepaMandate
from fedele.billing.services import payment_methods, payments
from fedele.billing.tests import payments_helpers as helpers
from fedele.shared.errors import Conflict, NotFound, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _record(account, amount: str, reference: str = "CRO-1", **kwargs):  # type: ignore[no-untyped-def]
    return payments.payment_record(
        account=account,
        amount=Decimal(amount),
        currency=kwargs.pop("currency", "EUR"),
        method=kwargs.pop("method", "bank_transfer"),
        received_on=kwargs.pop("received_on", date(2026, 3, 9)),
        external_id=reference,
        **kwargs,
    )


def test_full_payment_of_named_invoice_marks_it_paid_once() -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    assert invoice.total == Decimal("122.00")
    payment = _record(account, "122.00", invoice=invoice)
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert invoice.amount_paid == Decimal("122.00")
    assert payment.status == "succeeded"
    assert payment.amount_to_credit == Decimal("0.00")
    assert [(a.invoice_id, a.amount) for a in payment.allocations.all()] == [(invoice.pk, Decimal("122.00"))]
    assert OutboxEvent.objects.filter(event_type="billing.invoice_paid").count() == 1
    assert AuditLog.objects.filter(action="billing.payment_recorded").count() == 1


def test_same_reference_twice_records_one_payment() -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    first = _record(account, "122.00", invoice=invoice)
    second = _record(account, "122.00", invoice=invoice)
    assert first.pk == second.pk
    assert Payment.objects.count() == 1
    invoice.refresh_from_db()
    assert invoice.amount_paid == Decimal("122.00")
    assert OutboxEvent.objects.filter(event_type="billing.invoice_paid").count() == 1


def test_same_reference_with_another_amount_is_a_conflict_and_writes_nothing() -> None:
    account = helpers.account()
    _record(account, "50.00")
    with pytest.raises(Conflict):
        _record(account, "60.00")
    assert Payment.objects.count() == 1


def test_unnamed_payment_settles_open_invoices_oldest_first_then_partial() -> None:
    account = helpers.account()
    with time_machine.travel(datetime(2026, 1, 5, 9, tzinfo=UTC), tick=False):
        older = helpers.finalised_invoice(account, "100.00")  # 122.00 due 2026-02-04
    with time_machine.travel(datetime(2026, 2, 5, 9, tzinfo=UTC), tick=False):
        newer = helpers.finalised_invoice(account, "50.00")  # 61.00 due 2026-03-07
    payment = _record(account, "150.00")
    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.status, older.amount_paid, older.amount_due) == ("paid", Decimal("122.00"), Decimal("0.00"))
    assert (newer.status, newer.amount_paid, newer.amount_due) == (
        "finalised",
        Decimal("28.00"),
        Decimal("33.00"),
    )
    assert list(payment.allocations.values_list("invoice_id", "amount")) == [
        (older.pk, Decimal("122.00")),
        (newer.pk, Decimal("28.00")),
    ]


def test_overpayment_becomes_customer_credit() -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    payment = _record(account, "200.00", invoice=invoice)
    account.refresh_from_db()
    assert payment.amount_to_credit == Decimal("78.00")
    assert account.credit_balance == Decimal("78.00")
    entry = CreditEntry.objects.get(account=account)
    assert (entry.amount, entry.reason) == (Decimal("78.00"), "overpayment")


def test_payment_without_open_invoices_is_all_credit() -> None:
    account = helpers.account()
    payment = _record(account, "0.01")
    account.refresh_from_db()
    assert account.credit_balance == Decimal("0.01")
    assert payment.allocations.count() == 0


@pytest.mark.parametrize(
    ("amount", "field"),
    [("0", "amount"), ("-5.00", "amount"), ("10.001", "amount"), ("1e14", "amount")],
)
def test_bad_amounts_are_refused_and_nothing_is_written(amount: str, field: str) -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    audit_before = AuditLog.objects.count()
    with pytest.raises(ValidationFailed) as failure:
        _record(account, amount, invoice=invoice)
    assert field in failure.value.fields
    assert Payment.objects.count() == 0
    assert AuditLog.objects.count() == audit_before
    invoice.refresh_from_db()
    assert invoice.amount_paid == 0


def test_currency_mismatch_is_422() -> None:
    account = helpers.account()
    with pytest.raises(ValidationFailed) as failure:
        _record(account, "10.00", currency="USD")
    assert failure.value.code == "currency_mismatch"
    assert failure.value.status_code == 422
    assert Payment.objects.count() == 0


def test_future_date_and_other_accounts_invoice_are_refused() -> None:
    account = helpers.account()
    other_invoice = helpers.finalised_invoice(helpers.account())
    with pytest.raises(ValidationFailed) as failure:
        _record(account, "10.00", received_on=date(2026, 3, 11), invoice=other_invoice)
    assert set(failure.value.fields) == {"received_on", "invoice"}
    assert Payment.objects.count() == 0


def test_failed_payment_publishes_payment_failed() -> None:
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    payment = payments.payment_failed_record(
        account=account,
        amount=Decimal("122.00"),
        currency="EUR",
        method="card",
        gateway="stripe",
        external_id="pi_failed_1",
        code="card_declined",
        reason="Your card was declined.",
        invoice=invoice,
    )
    assert payment.status == "failed"
    event = OutboxEvent.objects.get(event_type="billing.payment_failed")
    assert event.payload["amount"] == "122.00"
    assert event.payload["invoice_id"] == str(invoice.public_id)
    assert event.payload["reason"] == "Your card was declined."
    invoice.refresh_from_db()
    assert invoice.amount_paid == 0


# SEPA -------------------------------------------------------------------------------------------


def _mandate(account, **kwargs):  # type: ignore[no-untyped-def]
    return payment_methods.mandate_create(
        account=account,
        iban=kwargs.pop("iban", "IT60 X054 2811 1010 0000 0123 456"),
        debtor_name=kwargs.pop("debtor_name", "Mario Rossi"),
        signed_on=kwargs.pop("signed_on", date(2026, 1, 2)),
        **kwargs,
    )


def test_mandate_validates_iban_and_gets_a_unique_reference() -> None:
    account = helpers.account()
    mandate = _mandate(account)
    assert mandate.iban == "IT60X0542811101000000123456"
    assert mandate.reference.startswith("MNDT-")
    assert mandate.sequence == "FRST"
    method = account.payment_methods.get()
    assert (method.kind, method.gateway, method.is_default) == ("sepa_debit", "sepa", True)
    with pytest.raises(ValidationFailed) as failure:
        _mandate(
            helpers.account(),
            iban="IT60X0542811101000000123457",
            reference=mandate.reference,
            signed_on=date(2026, 4, 1),
        )
    assert set(failure.value.fields) == {"iban", "reference", "signed_on"}
    assert SepaMandate.objects.count() == 1


def test_sepa_batch_collects_due_invoices_in_a_valid_pain_008() -> None:
    first_account = helpers.account()
    second_account = helpers.account()
    no_mandate = helpers.account()
    with time_machine.travel(datetime(2026, 1, 5, 9, tzinfo=UTC), tick=False):
        first = helpers.finalised_invoice(first_account, "100.00")
        second = helpers.finalised_invoice(second_account, "10.10")
        helpers.finalised_invoice(no_mandate, "10.00")
    _mandate(first_account)
    _mandate(second_account, iban="DE89370400440532013000", debtor_name="Müller GmbH")
    result = payment_methods.sepa_batch_create(collection_date=date(2026, 3, 12))
    assert result.transactions == 2
    batch = result.batch
    assert batch is not None
    assert batch.control_sum == Decimal("134.32")
    document = etree.fromstring(batch.xml.encode())
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"}
    assert document.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:NbOfTxs", namespaces=ns) == "2"
    assert document.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:CtrlSum", namespaces=ns) == "134.32"
    info = document.find("p:CstmrDrctDbtInitn/p:PmtInf", namespaces=ns)
    assert info.findtext("p:PmtTpInf/p:SeqTp", namespaces=ns) == "FRST"
    assert info.findtext("p:ReqdColltnDt", namespaces=ns) == "2026-03-12"
    amounts = [(e.text, e.get("Ccy")) for e in info.iterfind("p:DrctDbtTxInf/p:InstdAmt", namespaces=ns)]
    assert amounts == [("122.00", "EUR"), ("12.32", "EUR")]
    names = [e.text for e in info.iterfind("p:DrctDbtTxInf/p:Dbtr/p:Nm", namespaces=ns)]
    assert names == ["Mario Rossi", "M ller GmbH"]
    end_to_end = [e.text for e in info.iterfind("p:DrctDbtTxInf/p:PmtId/p:EndToEndId", namespaces=ns)]
    assert end_to_end == [f"{first.number}-1", f"{second.number}-1"]
    assert Payment.objects.filter(status="pending", gateway="sepa").count() == 2
    assert set(SepaMandate.objects.values_list("sequence", flat=True)) == {"RCUR"}
    # nothing more to collect while the debits are under way
    assert payment_methods.sepa_batch_create(collection_date=date(2026, 3, 12)).transactions == 0
    # the bank settles: both invoices are paid
    assert payment_methods.sepa_batch_settle(batch=batch, settled_on=date(2026, 3, 10)) == 2
    first.refresh_from_db()
    assert first.status == "paid"


def test_returned_debit_fails_the_payment_and_reopens_the_invoice() -> None:
    account = helpers.account()
    with time_machine.travel(datetime(2026, 1, 5, 9, tzinfo=UTC), tick=False):
        invoice = helpers.finalised_invoice(account, "100.00")
    _mandate(account)
    batch = payment_methods.sepa_batch_create(collection_date=date(2026, 3, 10)).batch
    assert batch is not None
    payment_methods.sepa_batch_settle(batch=batch, settled_on=date(2026, 3, 10))
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    payment = payment_methods.sepa_return_record(end_to_end_id=f"{invoice.number}-1", reason_code="AM04")
    assert (payment.status, payment.failure_code, payment.failure_reason) == (
        "failed",
        "AM04",
        "Insufficient funds",
    )
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("finalised", Decimal("0.00"))
    assert OutboxEvent.objects.filter(event_type="billing.payment_failed").count() == 1
    # the same return again changes nothing; the next file collects the invoice again (attempt 2)
    payment_methods.sepa_return_record(end_to_end_id=f"{invoice.number}-1", reason_code="AM04")
    assert OutboxEvent.objects.filter(event_type="billing.payment_failed").count() == 1
    again = payment_methods.sepa_batch_create(collection_date=date(2026, 3, 11))
    assert again.transactions == 1
    assert Payment.objects.filter(external_id=f"{invoice.number}-2", status="pending").exists()
    assert PaymentAllocation.objects.get(payment=payment).amount_reversed == Decimal("122.00")


def test_return_for_closed_account_revokes_the_mandate_and_bad_codes_are_refused() -> None:
    account = helpers.account()
    with time_machine.travel(datetime(2026, 1, 5, 9, tzinfo=UTC), tick=False):
        invoice = helpers.finalised_invoice(account, "100.00")
    mandate = _mandate(account)
    payment_methods.sepa_batch_create(collection_date=date(2026, 3, 10))
    with pytest.raises(ValidationFailed):
        payment_methods.sepa_return_record(end_to_end_id=f"{invoice.number}-1", reason_code="XX99")
    with pytest.raises(NotFound):
        payment_methods.sepa_return_record(end_to_end_id="nope", reason_code="AC04")
    payment_methods.sepa_return_record(end_to_end_id=f"{invoice.number}-1", reason_code="AC04")
    mandate.refresh_from_db()
    assert mandate.status == "revoked"
    assert payment_methods.sepa_batch_create(collection_date=date(2026, 3, 11)).transactions == 0
    assert Invoice.objects.get(pk=invoice.pk).status == "finalised"
