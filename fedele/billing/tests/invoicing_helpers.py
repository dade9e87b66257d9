"""Test helpers for invoicing: customers in each VAT regime, accounts, one-off charges, runs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.utils import timezone

from fedele.billing.models import BillingAccount, OneOffCharge, PlanVersion, Subscription
from fedele.billing.services.billing_run import billing_run_execute, billing_run_start
from fedele.billing.tests.factories import BillingAccountFactory, flat_plan, subscription
from fedele.customers.tests.factories import CompanyFactory, CustomerFactory

GERMAN_VAT = "DE136695976"
"""A German VAT number with a valid check digit (the public example of the German tax office)."""


def italian_consumer_account(**account: Any) -> BillingAccount:
    customer = CustomerFactory(
        fiscal_code="RSSMRA85T10A562S",
        street="Via Garibaldi 10",
        postal_code="00185",
        city="Roma",
        province="RM",
    )
    return BillingAccountFactory(customer=customer, **account)  # type: ignore[no-any-return]


def italian_company_account(**account: Any) -> BillingAccount:
    customer = CompanyFactory(
        sdi_code="ABC1234", street="Via Torino 5", postal_code="20123", city="Milano", province="MI"
    )
    return BillingAccountFactory(customer=customer, **account)  # type: ignore[no-any-return]


def german_company_account(vat_number: str = GERMAN_VAT) -> BillingAccount:
    customer = CompanyFactory(
        country="DE",
        vat_number=vat_number,
        city="Berlin",
        province="",
        postal_code="10115",
        street="Hauptstr. 1",
    )
    return BillingAccountFactory(customer=customer)  # type: ignore[no-any-return]


def swiss_company_account() -> BillingAccount:
    customer = CompanyFactory(
        country="CH", vat_number="CHE-116.281.710", city="Zurich", province="", postal_code="8001"
    )
    return BillingAccountFactory(customer=customer)  # type: ignore[no-any-return]


def french_consumer_account() -> BillingAccount:
    customer = CustomerFactory(country="FR", city="Paris", province="", postal_code="75001")
    return BillingAccountFactory(customer=customer)  # type: ignore[no-any-return]


def one_off(
    account: BillingAccount,
    amount: str,
    *,
    description: str = "Installation",
    kind: str = "one_time",
    quantity: str = "1",
    key: str | None = None,
    vat_rate: str = "22",
) -> OneOffCharge:
    return OneOffCharge.objects.create(
        account=account,
        description=description,
        quantity=Decimal(quantity),
        unit_amount=Decimal(amount),
        currency=account.currency,
        kind=kind,
        vat_rate=Decimal(vat_rate),
        idempotency_key=key or f"test:{account.pk}:{OneOffCharge.objects.count()}",
        created_at=timezone.now(),
    )


def monthly(
    amount: str = "30.00",
    *,
    account: BillingAccount | None = None,
    start: date = date(2026, 1, 1),
    **kwargs: Any,
) -> Subscription:
    version: PlanVersion = flat_plan(amount, **kwargs)
    return subscription(version, account=account or italian_consumer_account(), start=start)


def run(as_of: date, **kwargs: Any) -> Any:
    billing_run = billing_run_start(as_of=as_of, execute=False, **kwargs)
    return billing_run_execute(billing_run.pk)
