"""The billing facade other modules use: balances, subscriptions, invoices, one-off charges."""

from __future__ import annotations

import threading
import uuid
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from fedele.billing import facade
from fedele.billing.models import BillingAccount, Invoice, OneOffCharge
from fedele.billing.tests.factories import BillingAccountFactory, flat_plan, subscription
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared.errors import Conflict, NotFound, ValidationFailed
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db


def _invoice(
    account: BillingAccount, number: str, total: str, *, paid: str = "0", due: date, status: str = "finalised"
):
    now = date(2026, 1, 1)
    return Invoice.objects.create(
        account=account,
        number=number,
        status=status,
        currency="EUR",
        issue_date=now,
        due_date=due,
        total=Decimal(total),
        amount_paid=Decimal(paid),
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
    )


@time_machine.travel("2026-03-10 10:00:00+01:00", tick=False)
def test_customer_balance_sums_open_and_overdue_amounts_exactly():
    account = BillingAccountFactory(credit_balance=Decimal("5.00"))
    _invoice(account, "INV-2026-000001", "122.00", paid="22.00", due=date(2026, 3, 1))  # overdue 100.00
    _invoice(account, "INV-2026-000002", "36.60", due=date(2026, 3, 31))  # open, not overdue
    _invoice(account, "INV-2026-000003", "50.00", paid="50.00", due=date(2026, 2, 1), status="paid")
    balance = facade.customer_balance(str(account.customer.public_id))
    assert balance is not None
    assert (balance.open_amount, balance.overdue_amount, balance.credit_balance) == (
        Decimal("136.60"),
        Decimal("100.00"),
        Decimal("5.00"),
    )
    assert balance.open_invoices == 2
    assert balance.currency == "EUR"
    assert balance.is_suspended is False


def test_customer_balance_is_none_for_unknown_or_never_billed_customers():
    assert facade.customer_balance(str(uuid.uuid4())) is None
    assert facade.customer_balance(str(CustomerFactory().public_id)) is None


def test_active_subscriptions_lists_live_ones_with_mrr():
    version = flat_plan("120.00", period="year")
    live = subscription(version, quantity=2)
    subscription(version, account=live.account, status="cancelled")
    result = facade.active_subscriptions(str(live.account.customer.public_id))
    assert [s.number for s in result] == [live.number]
    # A flat fee does not depend on the quantity: 120.00 a year = 10.00 a month.
    assert result[0].mrr == Decimal("10.00")
    assert result[0].quantity == Decimal(2)


def test_recent_invoices_never_shows_drafts():
    account = BillingAccountFactory()
    _invoice(account, "INV-2026-000010", "10.00", due=date(2026, 2, 1))
    Invoice.objects.create(
        account=account,
        status="draft",
        currency="EUR",
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
    )
    result = facade.recent_invoices(str(account.customer.public_id))
    assert [(i.number, i.amount_due) for i in result] == [("INV-2026-000010", Decimal("10.00"))]


def test_charge_customer_is_idempotent_on_its_key():
    account = BillingAccountFactory()
    customer_id = str(account.customer.public_id)
    first = facade.charge_customer(
        customer_public_id=customer_id,
        description="Spare part: ONT power supply",
        amount=Decimal("19.90"),
        idempotency_key="wo-1:part-7",
        source="field_service",
    )
    again = facade.charge_customer(
        customer_public_id=customer_id,
        description="Spare part: ONT power supply",
        amount=Decimal("19.90"),
        idempotency_key="wo-1:part-7",
        source="field_service",
    )
    assert first.created is True and again.created is False
    assert first.charge_id == again.charge_id
    assert OneOffCharge.objects.count() == 1
    charge = OneOffCharge.objects.get()
    assert (charge.unit_amount, charge.kind, charge.idempotency_key) == (
        Decimal("19.90"),
        "one_time",
        "field_service:wo-1:part-7",
    )
    assert AuditLog.objects.filter(action="billing.one_off_charge_created").count() == 1


def test_negative_charge_is_a_credit_on_the_next_invoice():
    account = BillingAccountFactory()
    receipt = facade.charge_customer(
        customer_public_id=str(account.customer.public_id),
        description="Loyalty reward: 10 EUR off",
        amount=Decimal("-10.00"),
        idempotency_key="redemption-42",
        source="loyalty",
    )
    assert receipt.amount == Decimal("-10.00")
    assert OneOffCharge.objects.get().kind == "discount"


@pytest.mark.parametrize(
    ("amount", "field"),
    [(Decimal(0), "amount"), (Decimal("1.001"), "amount"), (Decimal("2000000"), "amount"), (1.5, "amount")],
)
def test_bad_charges_are_refused_and_write_nothing(amount, field):
    account = BillingAccountFactory()
    with pytest.raises(ValidationFailed) as error:
        facade.charge_customer(
            customer_public_id=str(account.customer.public_id),
            description="x",
            amount=amount,
            idempotency_key="k",
            source="test",
        )
    assert field in error.value.fields
    assert OneOffCharge.objects.count() == 0


def test_charge_refuses_currency_mismatch_unknown_customer_and_missing_account():
    account = BillingAccountFactory()
    with pytest.raises(ValidationFailed) as error:
        facade.charge_customer(
            customer_public_id=str(account.customer.public_id),
            description="x",
            amount=Decimal("1.00"),
            currency="USD",
            idempotency_key="k",
            source="test",
        )
    assert error.value.code == "currency_mismatch"
    with pytest.raises(NotFound):
        facade.charge_customer(
            customer_public_id=str(uuid.uuid4()),
            description="x",
            amount=Decimal(1),
            idempotency_key="k",
            source="t",
        )
    with pytest.raises(Conflict):
        facade.charge_customer(
            customer_public_id=str(CustomerFactory().public_id),
            description="x",
            amount=Decimal(1),
            idempotency_key="k",
            source="t",
        )
    assert OneOffCharge.objects.count() == 0


def test_a_key_reused_for_another_customer_is_a_conflict():
    first, second = BillingAccountFactory(), BillingAccountFactory()
    kwargs = {"description": "x", "amount": Decimal("1.00"), "idempotency_key": "same", "source": "t"}
    facade.charge_customer(customer_public_id=str(first.customer.public_id), **kwargs)
    with pytest.raises(Conflict):
        facade.charge_customer(customer_public_id=str(second.customer.public_id), **kwargs)
    assert OneOffCharge.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_charges_with_one_key_create_one_charge():
    account = BillingAccountFactory()
    customer_id = str(account.customer.public_id)
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        try:
            barrier.wait()
            receipt = facade.charge_customer(
                customer_public_id=customer_id,
                description="Penalty",
                amount=Decimal("5.00"),
                idempotency_key="race",
                source="test",
            )
            results.append(receipt.created)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    assert OneOffCharge.objects.count() == 1
