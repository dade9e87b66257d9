"""Manual invoices, finalising (gapless numbers per fiscal year), voiding and credit notes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core import mail

from fedele.billing.models import BillingAccount, CreditEntry, Invoice, InvoiceLine
from fedele.billing.services import settlement
from fedele.billing.services.invoicing import (
    credit_note_create,
    invoice_create_draft,
    invoice_finalise,
    invoice_line_add,
    invoice_line_remove,
    invoice_void,
)
from fedele.billing.tests.invoicing_helpers import german_company_account, italian_consumer_account
from fedele.shared.errors import Conflict, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def _frozen(time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(datetime(2026, 3, 10, 9, 0, tzinfo=UTC), tick=False)


def draft_with(*lines: tuple[str, str, str], account: BillingAccount | None = None) -> Invoice:
    invoice = invoice_create_draft(account=account or italian_consumer_account())
    for description, quantity, unit_amount in lines:
        invoice_line_add(
            invoice=invoice, description=description, quantity=D(quantity), unit_amount=D(unit_amount)
        )
    invoice.refresh_from_db()
    return invoice


def test_draft_lines_are_rounded_each_and_totals_recomputed() -> None:
    invoice = draft_with(("Consulting", "3", "33.333"), ("Travel", "1", "10.005"))
    assert [line.amount for line in invoice.lines.all()] == [D("100.00"), D("10.01")]
    assert (invoice.subtotal, invoice.tax_total, invoice.total, invoice.number) == (
        D("110.01"),
        D("24.20"),
        D("134.21"),
        None,
    )
    line = invoice.lines.get(description="Travel")
    invoice_line_remove(line=line)
    invoice.refresh_from_db()
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (D("100.00"), D("22.00"), D("122.00"))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": D("0")}, "quantity"),
        ({"quantity": D("-1")}, "quantity"),
        ({"unit_amount": D("-5")}, "unit_amount"),
        ({"unit_amount": D("0.0000001")}, "unit_amount"),
        ({"unit_amount": D("1E+12")}, "unit_amount"),
        ({"description": "  "}, "description"),
        ({"vat_rate": D("21")}, "vat_rate"),
        ({"vat_rate": D("0")}, "vat_nature"),
        ({"kind": "usage"}, "kind"),
    ],
)
def test_bad_lines_are_refused_and_change_nothing(changes: dict[str, object], field: str) -> None:
    invoice = draft_with(("Consulting", "1", "100"))
    arguments: dict[str, object] = {
        "description": "Extra",
        "quantity": D("1"),
        "unit_amount": D("10"),
        "vat_rate": D("22"),
    }
    arguments.update(changes)
    with pytest.raises(ValidationFailed) as error:
        invoice_line_add(invoice=invoice, **arguments)  # type: ignore[arg-type]
    assert field in error.value.fields
    invoice.refresh_from_db()
    assert (invoice.lines.count(), invoice.total) == (1, D("122.00"))


def test_finalise_numbers_dates_snapshot_and_events(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    account = italian_consumer_account(payment_terms_days=15, billing_email="ap@example.it")
    invoice = draft_with(("Consulting", "1", "100"), account=account)
    with django_capture_on_commit_callbacks(execute=True):
        invoice_finalise(invoice=invoice, actor_id=None)
    invoice.refresh_from_db()
    assert (invoice.number, invoice.fiscal_year, invoice.sequence_number, invoice.status) == (
        "INV-2026-000001",
        2026,
        1,
        "finalised",
    )
    assert (invoice.issue_date, invoice.due_date) == (date(2026, 3, 10), date(2026, 3, 25))
    assert invoice.customer_snapshot["fiscal_code"] == "RSSMRA85T10A562S"
    assert invoice.customer_snapshot["city"] == "Roma"
    assert (
        OutboxEvent.objects.filter(
            event_type="billing.invoice_finalised", aggregate_id=str(invoice.public_id)
        ).count()
        == 1
    )
    assert AuditLog.objects.filter(action="billing.invoice_finalised").count() == 1
    assert [message.to for message in mail.outbox] == [["ap@example.it"]]
    assert "INV-2026-000001" in mail.outbox[0].subject
    second = draft_with(("More", "1", "1"), account=account)
    invoice_finalise(invoice=second)
    second.refresh_from_db()
    assert second.number == "INV-2026-000002"


def test_numbers_restart_each_fiscal_year(time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(datetime(2026, 12, 31, 22, 30, tzinfo=UTC), tick=False)  # 23:30 in Rome
    december = draft_with(("A", "1", "1"))
    invoice_finalise(invoice=december)
    time_machine.move_to(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), tick=False)  # 00:30 on 1 Jan in Rome
    january = draft_with(("B", "1", "1"))
    invoice_finalise(invoice=january)
    december.refresh_from_db()
    january.refresh_from_db()
    assert (december.number, december.issue_date) == ("INV-2026-000001", date(2026, 12, 31))
    assert (january.number, january.issue_date) == ("INV-2027-000001", date(2027, 1, 1))


def test_finalising_an_empty_or_finalised_invoice_fails_without_side_effects() -> None:
    empty = invoice_create_draft(account=italian_consumer_account())
    with pytest.raises(ValidationFailed):
        invoice_finalise(invoice=empty)
    empty.refresh_from_db()
    assert (empty.status, empty.number) == ("draft", None)
    assert not OutboxEvent.objects.exists()
    done = draft_with(("A", "1", "1"))
    invoice_finalise(invoice=done)
    with pytest.raises(Conflict):
        invoice_finalise(invoice=done)
    with pytest.raises(Conflict):
        invoice_line_add(invoice=done, description="late", unit_amount=D("1"))
    assert Invoice.objects.exclude(number=None).count() == 1


def test_negative_manual_invoice_is_refused() -> None:
    invoice = draft_with(("A", "1", "10"))
    invoice_line_add(invoice=invoice, description="Goodwill", unit_amount=D("-20"), kind="adjustment")
    with pytest.raises(ValidationFailed) as error:
        invoice_finalise(invoice=invoice)
    assert error.value.code == "negative_invoice"
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number) == ("draft", None)


def test_zero_total_manual_invoice_is_issued_paid() -> None:
    invoice = draft_with(("Free onboarding", "1", "0"))
    invoice_finalise(invoice=invoice)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.total) == ("paid", D("0.00"))


def test_credit_balance_is_applied_on_finalise() -> None:
    account = italian_consumer_account()
    settlement.account_credit_add(account_id=account.pk, amount=D("200.00"), reason="manual")
    invoice = draft_with(("A", "1", "100"), account=account)
    invoice_finalise(invoice=invoice)
    invoice.refresh_from_db()
    account.refresh_from_db()
    assert (invoice.status, invoice.amount_credited, invoice.amount_due) == ("paid", D("122.00"), D("0.00"))
    assert account.credit_balance == D("78.00")


def test_reverse_charge_draft_lines_are_zero_rated() -> None:
    invoice = draft_with(("Consulting", "1", "1000"), account=german_company_account())
    line = invoice.lines.get()
    assert (invoice.reverse_charge, line.vat_rate, line.vat_nature, invoice.total) == (
        True,
        D("0.00"),
        "N2.1",
        D("1000.00"),
    )


def test_void_a_draft_deletes_it_and_never_numbers_it() -> None:
    invoice = draft_with(("A", "1", "1"))
    public_id = invoice.public_id
    result = invoice_void(invoice=invoice, reason="typo")
    assert (result.status, result.number) == ("void", None)
    assert not Invoice.objects.exists() and not InvoiceLine.objects.exists()
    assert (
        AuditLog.objects.filter(action="billing.invoice_draft_deleted", object_id=str(public_id)).count() == 1
    )


def test_void_a_finalised_invoice_issues_a_full_credit_note() -> None:
    invoice = draft_with(("Consulting", "2", "50"), ("Modem", "1", "15.55"))
    invoice_finalise(invoice=invoice)
    invoice_void(invoice=invoice, reason="wrong customer")
    note = Invoice.objects.get(kind="credit_note")
    assert (invoice.status, invoice.amount_credited, invoice.amount_due) == ("void", D("140.97"), D("0.00"))
    assert (note.number, note.total, note.credit_note_for_id, note.notes) == (
        "NC-2026-000001",
        D("140.97"),
        invoice.pk,
        "wrong customer",
    )
    assert [line.amount for line in note.lines.all()] == [D("100.00"), D("15.55")]
    assert note.amount_due == D("0.00")
    assert not CreditEntry.objects.exists()
    assert not OutboxEvent.objects.filter(event_type="billing.invoice_paid").exists()
    assert OutboxEvent.objects.filter(event_type="billing.invoice_finalised").count() == 2


def test_void_refuses_paid_invoices_and_needs_a_reason() -> None:
    invoice = draft_with(("A", "1", "10"))
    invoice_finalise(invoice=invoice)
    with pytest.raises(ValidationFailed):
        invoice_void(invoice=invoice, reason=" ")
    settlement.invoice_settle(invoice=Invoice.objects.get(pk=invoice.pk), paid=D("1.00"))
    with pytest.raises(Conflict):
        invoice_void(invoice=invoice, reason="late")
    assert not Invoice.objects.filter(kind="credit_note").exists()


def test_partial_credit_note_splits_over_vat_groups_and_settles_first() -> None:
    invoice = draft_with(("Service", "1", "100"))
    invoice_line_add(invoice=invoice, description="Book", unit_amount=D("50"), vat_rate=D("4"))
    invoice_finalise(invoice=invoice)
    invoice.refresh_from_db()
    assert invoice.total == D("174.00")  # 122.00 + 52.00
    note = credit_note_create(invoice=invoice, amount=D("87.00"), reason="half refund")
    rows = [(s.vat_rate, s.taxable_amount, s.tax_amount) for s in note.tax_summaries.all()]
    assert rows == [(D("22.00"), D("50.00"), D("11.00")), (D("4.00"), D("25.00"), D("1.00"))]
    assert note.total == D("87.00")
    invoice.refresh_from_db()
    assert (invoice.amount_credited, invoice.amount_due, invoice.status) == (
        D("87.00"),
        D("87.00"),
        "finalised",
    )


def test_credit_note_on_a_paid_invoice_becomes_customer_credit() -> None:
    invoice = draft_with(("A", "1", "100"))
    invoice_finalise(invoice=invoice)
    settlement.invoice_settle(invoice=Invoice.objects.get(pk=invoice.pk), paid=D("122.00"))
    note = credit_note_create(invoice=invoice, amount=D("30.50"), reason="service outage")
    account = BillingAccount.objects.get(pk=invoice.account_id)
    assert (note.total, account.credit_balance) == (D("30.50"), D("30.50"))
    entry = CreditEntry.objects.get()
    assert (entry.reason, entry.amount, entry.invoice_id) == ("credit_note", D("30.50"), note.pk)


def test_credit_notes_cannot_exceed_the_invoice() -> None:
    invoice = draft_with(("A", "1", "100"))
    invoice_finalise(invoice=invoice)
    credit_note_create(invoice=invoice, amount=D("100.00"), reason="first")
    with pytest.raises(ValidationFailed) as error:
        credit_note_create(invoice=invoice, amount=D("22.01"), reason="too much")
    assert error.value.fields == {"amount": ["At most 22.00."]}
    rest = credit_note_create(invoice=invoice, reason="the rest")
    assert rest.total == D("22.00")
    assert Invoice.objects.filter(kind="credit_note").count() == 2
    with pytest.raises(ValidationFailed):
        credit_note_create(invoice=invoice, reason="nothing left")


@pytest.mark.parametrize("amount", [D("0"), D("-1"), D("1.001")])
def test_bad_credit_note_amounts(amount: Decimal) -> None:
    invoice = draft_with(("A", "1", "100"))
    invoice_finalise(invoice=invoice)
    with pytest.raises(ValidationFailed):
        credit_note_create(invoice=invoice, amount=amount, reason="x")
    assert not Invoice.objects.filter(kind="credit_note").exists()


def test_drafts_cannot_be_credited() -> None:
    invoice = draft_with(("A", "1", "100"))
    with pytest.raises(Conflict):
        credit_note_create(invoice=invoice, reason="x")
    assert InvoiceLine.objects.count() == 1


def test_delivery_sends_once_in_the_customer_language(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from django.utils import translation

    from fedele.billing.services import delivery

    languages: list[str | None] = []
    original = delivery.render_to_string

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        languages.append(translation.get_language())
        return original(*args, **kwargs)

    monkeypatch.setattr(delivery, "render_to_string", spy)
    invoice = draft_with(("A", "1", "10"))
    invoice_finalise(invoice=invoice)
    assert delivery.invoice_send(invoice_id=invoice.pk) is True
    assert delivery.invoice_send(invoice_id=invoice.pk) is False
    assert delivery.deliver_pending() == 0
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert languages == ["it", "it"]  # subject and body rendered in the customer's language
    assert "INV-2026-000001" in message.subject
    assert "12,20 EUR" in message.body and "09/04/2026" in message.body  # Italian number and date formats
    assert message.attachments[0][0] == "INV-2026-000001.pdf"
    invoice.refresh_from_db()
    assert invoice.sent_at == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def test_a_failed_send_releases_the_claim_for_the_sweep(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from django.core.mail import EmailMessage

    from fedele.billing.services.delivery import deliver_pending, invoice_send

    invoice = draft_with(("A", "1", "10"))
    invoice_finalise(invoice=invoice)

    def broken(self, fail_silently=False):  # type: ignore[no-untyped-def]
        raise OSError("SMTP down")

    monkeypatch.setattr(EmailMessage, "send", broken)
    with pytest.raises(OSError):
        invoice_send(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    assert invoice.sent_at is None
    monkeypatch.undo()
    assert deliver_pending() == 1
    assert len(mail.outbox) == 1


def test_drafts_and_addressless_customers_are_not_sent() -> None:
    from fedele.billing.services.delivery import invoice_send

    invoice = draft_with(("A", "1", "10"))
    assert invoice_send(invoice_id=invoice.pk) is False
    account = italian_consumer_account()
    account.customer.email = ""
    account.customer.save()
    silent = draft_with(("A", "1", "10"), account=account)
    invoice_finalise(invoice=silent)
    assert invoice_send(invoice_id=silent.pk) is False
    assert mail.outbox == []
