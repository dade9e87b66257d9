"""Create and change customers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from django.db import transaction

from fedele.accounts.facade import Actor
from fedele.customers import events
from fedele.customers.contracts import CustomerKind, CustomerStatus, Segment
from fedele.customers.models import Customer
from fedele.customers.services.guards import (
    ensure_email_free,
    refuse_unknown_fields,
    require,
    require_on_customer,
    save_guarding_email,
)
from fedele.customers.validation import (
    normalise_country,
    normalise_email,
    normalise_fiscal_code,
    normalise_phone,
    normalise_postal_code,
    normalise_province,
    normalise_sdi_code,
    normalise_vat_number,
)
from fedele.shared import audit, clock, sequences
from fedele.shared.errors import Conflict, NotFound, ValidationFailed
from fedele.shared.events import publish

EDITABLE_FIELDS = (
    "kind",
    "first_name",
    "last_name",
    "company_name",
    "fiscal_code",
    "vat_number",
    "email",
    "pec",
    "sdi_code",
    "phone",
    "language",
    "segment",
    "street",
    "postal_code",
    "city",
    "province",
    "country",
    "birth_date",
    "notes",
)
PII_FIELDS = (
    "first_name",
    "last_name",
    "company_name",
    "fiscal_code",
    "vat_number",
    "email",
    "pec",
    "phone",
    "street",
    "postal_code",
    "city",
    "province",
    "birth_date",
    "notes",
)
MAX_LENGTHS = {
    "first_name": 100,
    "last_name": 100,
    "company_name": 200,
    "street": 200,
    "city": 100,
    "notes": 10_000,
}


def snapshot(customer: Customer) -> dict[str, Any]:
    return {name: getattr(customer, name) for name in EDITABLE_FIELDS}


def display_name_for(values: Mapping[str, Any]) -> str:
    if values.get("kind") == CustomerKind.COMPANY:
        return str(values.get("company_name", "")).strip()
    return f"{values.get('first_name', '')} {values.get('last_name', '')}".strip()


def search_text_for(customer: Customer) -> str:
    parts = [
        customer.number,
        customer.display_name,
        customer.email,
        customer.phone,
        customer.fiscal_code,
        customer.vat_number,
        customer.city,
    ]
    return " ".join(p for p in parts if p).lower()


def clean_customer_data(values: dict[str, Any]) -> dict[str, Any]:
    """Normalise every field, collecting all errors so the caller sees them at once."""
    cleaned = dict(values)
    errors: dict[str, list[str]] = {}

    def run(field: str, function: Callable[[], Any]) -> None:
        try:
            cleaned[field] = function()
        except ValidationFailed as error:
            for key, messages in error.fields.items():
                errors.setdefault(key, []).extend(messages)

    for field in ("first_name", "last_name", "company_name", "street", "city", "notes"):
        text = str(cleaned.get(field) or "").strip()
        if len(text) > MAX_LENGTHS[field]:
            errors.setdefault(field, []).append(f"At most {MAX_LENGTHS[field]} characters.")
        cleaned[field] = text
    kind = cleaned.get("kind")
    if kind not in {k.value for k in CustomerKind}:
        errors.setdefault("kind", []).append("Choose person or company.")
    if cleaned.get("segment") not in {s.value for s in Segment}:
        errors.setdefault("segment", []).append(f"Choose one of: {', '.join(s.value for s in Segment)}.")
    if cleaned.get("language") not in ("it", "en"):
        errors.setdefault("language", []).append("Choose it or en.")
    run("country", lambda: normalise_country(str(cleaned.get("country") or "IT")))
    country = cleaned.get("country") if isinstance(cleaned.get("country"), str) else "IT"
    run("email", lambda: normalise_email(str(cleaned.get("email") or "")))
    run("pec", lambda: normalise_email(str(cleaned.get("pec") or ""), "pec"))
    run("phone", lambda: normalise_phone(str(cleaned.get("phone") or "")))
    run("fiscal_code", lambda: normalise_fiscal_code(str(cleaned.get("fiscal_code") or "")))
    run("vat_number", lambda: normalise_vat_number(str(cleaned.get("vat_number") or "")))
    run("province", lambda: normalise_province(str(cleaned.get("province") or ""), str(country)))
    run("postal_code", lambda: normalise_postal_code(str(cleaned.get("postal_code") or ""), str(country)))
    run("sdi_code", lambda: normalise_sdi_code(str(cleaned.get("sdi_code") or "")))
    birth_date = cleaned.get("birth_date")
    if birth_date is not None and not isinstance(birth_date, date):
        errors.setdefault("birth_date", []).append("Use a date (YYYY-MM-DD).")
    elif isinstance(birth_date, date) and birth_date > clock.today():
        errors.setdefault("birth_date", []).append("The birth date is in the future.")
    if kind == CustomerKind.PERSON and not (cleaned["first_name"] or cleaned["last_name"]):
        errors.setdefault("last_name", []).append("A person needs a first or last name.")
    if kind == CustomerKind.COMPANY and not cleaned["company_name"]:
        errors.setdefault("company_name", []).append("A company needs a name.")
    if (
        kind == CustomerKind.COMPANY
        and cleaned.get("country") == "IT"
        and not cleaned.get("vat_number")
        and not cleaned.get("fiscal_code")
    ):
        errors.setdefault("vat_number", []).append("An Italian company needs a VAT number or fiscal code.")
    if errors:
        raise ValidationFailed("Some fields are not valid.", fields=errors)
    return cleaned


DEFAULTS: dict[str, Any] = {
    "kind": CustomerKind.PERSON.value,
    "first_name": "",
    "last_name": "",
    "company_name": "",
    "fiscal_code": "",
    "vat_number": "",
    "email": "",
    "pec": "",
    "sdi_code": "",
    "phone": "",
    "language": "it",
    "segment": Segment.CONSUMER.value,
    "street": "",
    "postal_code": "",
    "city": "",
    "province": "",
    "country": "IT",
    "birth_date": None,
    "notes": "",
}


def customer_create(*, actor: Actor, data: Mapping[str, Any], source: str = "manual") -> Customer:
    require(actor, "customers.add_customer")
    refuse_unknown_fields(data, EDITABLE_FIELDS)
    cleaned = clean_customer_data({**DEFAULTS, **{k: v for k, v in data.items() if v is not None}})
    managed_by_id = actor.organisation_id if actor.is_partner else None
    with transaction.atomic():
        ensure_email_free(cleaned["email"])
        now = clock.now()
        customer = Customer(
            number=sequences.next_number("C"),
            display_name=display_name_for(cleaned),
            created_at=now,
            updated_at=now,
            managed_by_id=managed_by_id,
            **{name: cleaned[name] for name in EDITABLE_FIELDS},
        )
        customer.search_text = search_text_for(customer)
        save_guarding_email(customer)
        audit.record(
            action="customer.created",
            object_type="customer",
            object_id=str(customer.public_id),
            after={**snapshot(customer), "source": source},
        )
        publish(
            events.CustomerCreated(str(customer.public_id), customer.number, customer.kind, customer.segment),
            aggregate_type="customer",
            aggregate_id=str(customer.public_id),
        )
    return customer


def customer_update(*, actor: Actor, customer_public_id: str, data: Mapping[str, Any]) -> Customer:
    require_on_customer(actor, "customers.change_customer", customer_public_id)
    refuse_unknown_fields(data, EDITABLE_FIELDS)
    from fedele.customers.selectors import customer_queryset_for

    with transaction.atomic():
        customer = (
            customer_queryset_for(actor).select_for_update().filter(public_id=customer_public_id).first()
        )
        if customer is None:
            raise NotFound("Customer not found.")
        if customer.status != CustomerStatus.ACTIVE:
            raise Conflict(
                f"This customer is {customer.status} and cannot be changed.", code="customer_not_active"
            )
        before = snapshot(customer)
        cleaned = clean_customer_data({**before, **dict(data)})
        ensure_email_free(cleaned["email"], exclude_pk=customer.pk)
        changed = [name for name in EDITABLE_FIELDS if cleaned[name] != before[name]]
        if not changed:
            return customer
        for name in changed:
            setattr(customer, name, cleaned[name])
        customer.display_name = display_name_for(cleaned)
        customer.search_text = search_text_for(customer)
        customer.updated_at = clock.now()
        save_guarding_email(customer)
        audit.record(
            action="customer.updated",
            object_type="customer",
            object_id=str(customer.public_id),
            before=before,
            after=snapshot(customer),
        )
        publish(
            events.CustomerUpdated(str(customer.public_id), changed),
            aggregate_type="customer",
            aggregate_id=str(customer.public_id),
        )
    return customer


def customer_assign_partner(
    *, actor: Actor, customer_public_id: str, organisation_id: int | None
) -> Customer:
    """Hand a customer to a partner organisation (or take it back with None); partners see only theirs."""
    require_on_customer(actor, "customers.change_customer", customer_public_id)
    from fedele.customers.selectors import customer_queryset_for

    with transaction.atomic():
        customer = (
            customer_queryset_for(actor).select_for_update().filter(public_id=customer_public_id).first()
        )
        if customer is None:
            raise NotFound("Customer not found.")
        if customer.managed_by_id == organisation_id:
            return customer
        before = {"managed_by": customer.managed_by_id}
        customer.managed_by_id = organisation_id
        customer.updated_at = clock.now()
        customer.save(update_fields=["managed_by", "updated_at"])
        audit.record(
            action="customer.partner_assigned",
            object_type="customer",
            object_id=str(customer.public_id),
            before=before,
            after={"managed_by": organisation_id},
        )
    return customer
