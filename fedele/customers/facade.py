"""The only surface other modules may import from customers. Returns contracts, not ORM objects."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from fedele.accounts.contracts import Actor
from fedele.customers.contracts import ConsentState, CustomerSummary, TimelineAppend
from fedele.customers.models import Contact, Customer
from fedele.customers.validation import normalise_email, normalise_phone
from fedele.shared.errors import ValidationFailed

__all__ = [
    "ConsentState",
    "CustomerSummary",
    "TimelineAppend",
    "consent_change",
    "consents_in_force",
    "create_customer",
    "customer_for_user",
    "customer_summaries",
    "customer_summary",
    "customers_for_survey",
    "find_customer_by_code",
    "find_customer_by_email",
    "find_customer_by_fiscal_code",
    "find_customer_by_phone",
    "link_portal_user",
    "search_customer_ids",
]


def _summary(customer: Customer) -> CustomerSummary:
    return CustomerSummary(
        public_id=customer.public_id,
        number=customer.number,
        kind=customer.kind,
        display_name=customer.display_name,
        email=customer.email,
        phone=customer.phone,
        language=customer.language,
        segment=customer.segment,
        status=customer.status,
        fiscal_code=customer.fiscal_code,
        vat_number=customer.vat_number,
        country=customer.country,
        first_name=customer.first_name,
        last_name=customer.last_name,
        company_name=customer.company_name,
        pec=customer.pec,
        sdi_code=customer.sdi_code,
        street=customer.street,
        postal_code=customer.postal_code,
        city=customer.city,
        province=customer.province,
        customer_id=customer.pk,
    )


def _resolve_merged(customer: Customer | None) -> Customer | None:
    seen = 0
    while customer is not None and customer.merged_into_id is not None and seen < 10:
        customer = customer.merged_into
        seen += 1
    return customer


def customer_summary(public_id: str) -> CustomerSummary | None:
    """Follows merges, so a reference to a merged duplicate finds the surviving customer."""
    customer = _resolve_merged(Customer.objects.filter(public_id=public_id).first())
    return _summary(customer) if customer else None


def find_customer_by_phone(phone: str) -> CustomerSummary | None:
    """Caller identification: any written form of the number, matched on E.164."""
    try:
        e164 = normalise_phone(phone)
    except ValidationFailed:
        return None
    if not e164:
        return None
    customer = Customer.objects.filter(phone=e164, status="active").order_by("id").first()
    if customer is None:
        contact = (
            Contact.objects.filter(customer__status="active")
            .filter(phone=e164)
            .select_related("customer")
            .first()
            or Contact.objects.filter(customer__status="active", mobile=e164)
            .select_related("customer")
            .first()
        )
        customer = contact.customer if contact else None
    return _summary(customer) if customer else None


def find_customer_by_email(email: str) -> CustomerSummary | None:
    try:
        address = normalise_email(email)
    except ValidationFailed:
        return None
    if not address:
        return None
    customer = Customer.objects.filter(email=address, status="active").first()
    if customer is None:
        contact = (
            Contact.objects.filter(email=address, customer__status="active")
            .select_related("customer")
            .first()
        )
        customer = contact.customer if contact else None
    return _summary(customer) if customer else None


def find_customer_by_code(code: str) -> CustomerSummary | None:
    """An active customer by their customer number, as written (``C-000123``) or as keyed on a phone
    (only its digits, ``000123``): an IVR caller identifying themselves."""
    value = (code or "").strip()
    if not value or len(value) > 32:
        return None
    customer = Customer.objects.filter(number__iexact=value, status="active").first()
    if customer is None and value.isdigit():
        candidates = Customer.objects.filter(number__endswith=value, status="active").order_by("id")[:20]
        customer = next((row for row in candidates if re.sub(r"\D", "", row.number) == value), None)
    return _summary(customer) if customer else None


def find_customer_by_fiscal_code(fiscal_code: str) -> CustomerSummary | None:
    """An active customer by Italian fiscal code (codice fiscale), any letter case."""
    value = (fiscal_code or "").strip().upper()
    if not value or len(value) > 16:
        return None
    customer = Customer.objects.filter(fiscal_code=value, status="active").order_by("id").first()
    return _summary(customer) if customer else None


def find_customers_by_emails(emails: Iterable[str]) -> dict[str, CustomerSummary]:
    """``find_customer_by_email`` for many addresses with two queries (imports, batch channels): the
    found customers by the address as given. An active customer's own address wins over a contact's;
    among several, the oldest record, as the one-by-one lookup picks."""
    addresses: dict[str, list[str]] = {}
    for email in emails:
        try:
            address = normalise_email(email)
        except ValidationFailed:
            continue
        if address:
            addresses.setdefault(address, []).append(email)
    by_address: dict[str, Customer] = {}
    wanted = list(addresses)
    for start in range(0, len(wanted), 5_000):
        chunk = wanted[start : start + 5_000]
        for customer in Customer.objects.filter(email__in=chunk, status="active").order_by("pk"):
            by_address.setdefault(customer.email, customer)
        rest = [address for address in chunk if address not in by_address]
        if rest:
            contacts = (
                Contact.objects.filter(email__in=rest, customer__status="active")
                .select_related("customer")
                .order_by("pk")
            )
            for contact in contacts:
                by_address.setdefault(contact.email, contact.customer)
    found: dict[str, CustomerSummary] = {}
    for address, customer in by_address.items():
        summary = _summary(customer)
        for email in addresses[address]:
            found[email] = summary
    return found


def search_customer_ids(query: str, limit: int) -> list[int]:
    """Internal keys of the customers a staff search finds (number, name, phone, codes, city word by
    word; an e-mail address exactly), lowest first, at most ``limit``: for modules that hold customer
    foreign keys to filter their own rows (``customer_id IN ...``) without joining the customers table.
    Not scoped to an actor: the caller must already have checked that its user may search."""
    from fedele.customers.selectors import customer_ids_matching

    return customer_ids_matching(query, limit=limit)


def customer_for_user(user_id: int) -> CustomerSummary | None:
    """The customer a portal user belongs to."""
    contact = Contact.objects.filter(portal_user_id=user_id).select_related("customer").first()
    return _summary(contact.customer) if contact else None


def customer_summaries(customer_ids: Iterable[int]) -> dict[int, CustomerSummary]:
    """Batch lookup by internal key (one query), for modules that hold customer foreign keys."""
    ids = sorted(set(customer_ids))
    return {customer.pk: _summary(customer) for customer in Customer.objects.filter(pk__in=ids)}


def create_customer(*, actor: Actor, data: Mapping[str, Any], source: str) -> CustomerSummary:
    """Create a customer through the customers service (validation, audit, events), e.g. for imports
    in other modules. Raises ValidationFailed like the customers API does."""
    from fedele.customers.services.customers import customer_create

    return _summary(customer_create(actor=actor, data=data, source=source))


def customers_for_survey(*, segment: str, channel: str, purpose: str) -> list[CustomerSummary]:
    """Active customers with an address on ``channel`` whose consent in force (the latest record) for
    (channel, purpose) is granted, e.g. an NPS survey by e-mail under the marketing purpose."""
    from django.db.models import OuterRef, Subquery

    from fedele.customers.models import ConsentRecord

    latest = (
        ConsentRecord.objects.filter(customer=OuterRef("pk"), channel=channel, purpose=purpose)
        .order_by("-recorded_at", "-id")
        .values("granted")[:1]
    )
    customers = (
        Customer.objects.filter(status="active").annotate(consent=Subquery(latest)).filter(consent=True)
    )
    if channel == "email":
        customers = customers.exclude(email="")
    elif channel in {"sms", "phone", "whatsapp"}:
        customers = customers.exclude(phone="")
    if segment:
        customers = customers.filter(segment=segment)
    return [_summary(customer) for customer in customers.order_by("id")]


def link_portal_user(
    *, customer_public_id: str, user_id: int, email: str, first_name: str, last_name: str, language: str
) -> None:
    """Let a verified portal login act for a customer: reuse the customer's contact with that e-mail or
    create one, then link the login to it. Runs as the system (the caller has verified the address)."""
    from django.db import transaction

    from fedele.customers.services.contacts import contact_create, contact_link_portal_user

    system = _system_actor()
    with transaction.atomic():
        address = normalise_email(email)
        contact = (
            Contact.objects.filter(
                customer__public_id=customer_public_id, email=address, portal_user__isnull=True
            )
            .order_by("id")
            .first()
        )
        if contact is None:
            contact = contact_create(
                actor=system,
                customer_public_id=customer_public_id,
                data={
                    "first_name": first_name,
                    "last_name": last_name,
                    "email": address,
                    "language": language,
                },
            )
        contact_link_portal_user(actor=system, contact_public_id=str(contact.public_id), user_id=user_id)


def consents_in_force(customer_public_id: str) -> dict[tuple[str, str], ConsentState]:
    """The consent in force per (channel, purpose) for a customer: the latest record of each.
    A pair never recorded is absent (no consent). Unknown customer: empty."""
    from fedele.customers.models import ConsentRecord

    current: dict[tuple[str, str], ConsentState] = {}
    records = ConsentRecord.objects.filter(customer__public_id=customer_public_id).order_by(
        "-recorded_at", "-id"
    )
    for record in records.only("channel", "purpose", "granted", "source", "recorded_at"):
        current.setdefault(
            (record.channel, record.purpose),
            ConsentState(record.channel, record.purpose, record.granted, record.source, record.recorded_at),
        )
    return current


def consent_change(
    *,
    actor: Actor | None,
    customer_public_id: str,
    channel: str,
    purpose: str,
    granted: bool,
    source: str = "portal",
    evidence: str = "",
) -> ConsentState:
    """Record a consent given or withdrawn through the customers service (validation, scoping, audit,
    ``ConsentChanged`` event). A portal customer may change only their own customer's consent: any
    other customer is NotFound. Raises ValidationFailed for an unknown channel or purpose."""
    from fedele.customers.services.contacts import consent_record

    record = consent_record(
        actor=actor,
        customer_public_id=customer_public_id,
        channel=channel,
        purpose=purpose,
        granted=granted,
        source=source,
        evidence=evidence,
    )
    return ConsentState(record.channel, record.purpose, record.granted, record.source, record.recorded_at)


def _system_actor() -> Actor:
    import uuid

    return Actor(
        user_id=0,
        public_id=uuid.UUID(int=0),
        email="system@fedele.local",
        roles=frozenset({"admin"}),
        permissions=frozenset(),
        organisation_id=None,
        organisation_kind=None,
        language="it",
        is_superuser=True,
    )
