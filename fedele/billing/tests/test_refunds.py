"""Refunds: full and partial, never more than paid minus refunded, credit notes, overpayment credit."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from fedele.billing.models import CreditEntry, Invoice, Refund
from fedele.billing.services import payments, refunds
from fedele.billing.tests import payments_helpers as helpers
from fedele.shared.errors import Conflict, ValidationFailed

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _paid(amount: str = "122.00", reference: str = "CRO-1"):  # type: ignore[no-untyped-def]
    account = helpers.account()
    invoice = helpers.finalised_invoice(account)
    payment = payments.payment_record(
        account=account,
        amount=Decimal(amount),
        currency="EUR",
        method="bank_transfer",
        received_on=date(2026, 3, 9),
        external_id=reference,
        invoice=invoice,
    )
    return account, invoice, payment


def test_partial_refund_takes_payment_back_and_credits_the_invoice() -> None:
    _account, invoice, payment = _paid()
    refund = refunds.refund_create(payment=payment, amount=Decimal("22.00"), reason="Goodwill")
    invoice.refresh_from_db()
    payment.refresh_from_db()
    assert (refund.amount, refund.status, refund.amount_from_credit) == (
        Decimal("22.00"),
        "succeeded",
        Decimal("0"),
    )
    assert refund.credit_note is not None
    note = Invoice.objects.get(pk=refund.credit_note.pk)
    assert (note.kind, note.total, note.credit_note_for_id) == ("credit_note", Decimal("22.00"), invoice.pk)
    assert (invoice.status, invoice.amount_paid, invoice.amount_credited) == (
        "paid",
        Decimal("100.00"),
        Decimal("22.00"),
    )
    assert payment.amount_refunded == Decimal("22.00")
    assert payment.refundable == Decimal("100.00")


def test_full_refund_by_default_and_nothing_left_after() -> None:
    _account, invoice, payment = _paid()
    refund = refunds.refund_create(payment=payment, reason="Cancelled order")
    assert refund.amount == Decimal("122.00")
    invoice.refresh_from_db()
    assert (invoice.amount_paid, invoice.amount_credited, invoice.amount_due) == (
        Decimal("0.00"),
        Decimal("122.00"),
        Decimal("0.00"),
    )
    payment.refresh_from_db()
    with pytest.raises(ValidationFailed) as failure:
        refunds.refund_create(payment=payment, amount=Decimal("0.01"), reason="again")
    assert failure.value.fields == {"amount": ["At most 0.00 can still be refunded."]}
    assert Refund.objects.count() == 1


@pytest.mark.parametrize(
    ("amount", "reason"), [("122.01", "x"), ("0", "x"), ("-1", "x"), ("1.005", "x"), ("1", "")]
)
def test_invalid_refunds_write_nothing(amount: str, reason: str) -> None:
    _account, invoice, payment = _paid()
    with pytest.raises(ValidationFailed):
        refunds.refund_create(payment=payment, amount=Decimal(amount), reason=reason)
    assert Refund.objects.count() == 0
    assert Invoice.objects.filter(kind="credit_note").count() == 0
    invoice.refresh_from_db()
    assert invoice.amount_paid == Decimal("122.00")


def test_refund_of_an_overpayment_comes_out_of_credit_first_without_credit_note() -> None:
    account, invoice, payment = _paid("150.00")
    account.refresh_from_db()
    assert account.credit_balance == Decimal("28.00")
    refund = refunds.refund_create(payment=payment, amount=Decimal("30.00"), reason="Paid twice")
    account.refresh_from_db()
    invoice.refresh_from_db()
    assert refund.amount_from_credit == Decimal("28.00")
    assert account.credit_balance == Decimal("0.00")
    assert CreditEntry.objects.filter(account=account, reason="refund").get().amount == Decimal("-28.00")
    assert refund.credit_note is not None and refund.credit_note.total == Decimal("2.00")
    assert (invoice.amount_paid, invoice.amount_credited, invoice.status) == (
        Decimal("120.00"),
        Decimal("2.00"),
        "paid",
    )


def test_failed_payment_cannot_be_refunded() -> None:
    account = helpers.account()
    failed = payments.payment_failed_record(
        account=account,
        amount=Decimal("10.00"),
        currency="EUR",
        method="card",
        gateway="stripe",
        external_id="pi_x",
        code="card_declined",
        reason="declined",
    )
    with pytest.raises(Conflict):
        refunds.refund_create(payment=failed, reason="no")
    assert Refund.objects.count() == 0
