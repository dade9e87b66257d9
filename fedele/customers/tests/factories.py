"""Factories for customers. Codes are generated valid (check digits computed), as real data would be."""

from __future__ import annotations

import factory
from django.utils import timezone
from stdnum import luhn

from fedele.customers.models import ConsentRecord, Contact, Customer
from fedele.shared import sequences


def valid_italian_vat(seed: int) -> str:
    """An Italian partita IVA with a valid office code and Luhn check digit."""
    body = f"{seed % 10_000_000:07d}" + "001"
    return "IT" + body + luhn.calc_check_digit(body)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    number = factory.LazyFunction(lambda: sequences.next_number("C"))
    kind = "person"
    first_name = "Mario"
    last_name = factory.Sequence(lambda n: f"Rossi{n}")
    display_name = factory.LazyAttribute(
        lambda o: o.company_name if o.kind == "company" else f"{o.first_name} {o.last_name}".strip()
    )
    email = factory.Sequence(lambda n: f"customer{n}@example.it")
    phone = factory.Sequence(lambda n: f"+39061234{n % 10000:04d}")
    city = "Roma"
    province = "RM"
    postal_code = "00100"
    country = "IT"
    segment = "consumer"
    language = "it"
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)
    search_text = factory.LazyAttribute(lambda o: f"{o.number} {o.display_name} {o.email} {o.phone}".lower())


class CompanyFactory(CustomerFactory):
    kind = "company"
    first_name = ""
    last_name = ""  # type: ignore[assignment]
    company_name = factory.Sequence(lambda n: f"Acme {n} S.p.A.")
    vat_number = factory.Sequence(valid_italian_vat)
    segment = "small_business"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    first_name = "Luca"
    last_name = factory.Sequence(lambda n: f"Verdi{n}")
    email = factory.Sequence(lambda n: f"contact{n}@example.it")
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


class ConsentRecordFactory(factory.django.DjangoModelFactory):
    """A consent record; the latest per (customer, channel, purpose) is the one in force."""

    class Meta:
        model = ConsentRecord

    customer = factory.SubFactory(CustomerFactory)
    channel = "email"
    purpose = "marketing"
    granted = True
    source = "test"
    recorded_at = factory.LazyFunction(timezone.now)
