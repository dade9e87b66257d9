"""Contacts of a customer and the consent they give or withdraw."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from fedele.accounts.facade import Actor
from fedele.customers import events
from fedele.customers.contracts import ConsentChannel, ConsentPurpose, CustomerStatus
from fedele.customers.models import ConsentRecord, Contact, Customer
from fedele.customers.services.guards import refuse_unknown_fields, require_on_customer
from fedele.customers.validation import normalise_email, normalise_phone
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.shared.events import publish

CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "job_title",
    "email",
    "phone",
    "mobile",
    "language",
    "is_primary",
)


def _require_on_contact(actor: Actor, permission: str, contact_public_id: str) -> None:
    if actor.can(permission):
        return
    from fedele.customers.selectors import contact_queryset_for

    if not contact_queryset_for(actor).filter(public_id=contact_public_id).exists():
        raise NotFound("Contact not found.")
    raise PermissionDenied("You do not have permission for this action.")


def _locked_customer(actor: Actor, customer_public_id: str) -> Customer:
    from fedele.customers.selectors import customer_queryset_for

    customer = customer_queryset_for(actor).select_for_update().filter(public_id=customer_public_id).first()
    if customer is None:
        raise NotFound("Customer not found.")
    if customer.status != CustomerStatus.ACTIVE:
        raise Conflict(
            f"This customer is {customer.status} and cannot be changed.", code="customer_not_active"
        )
    return customer


def clean_contact_data(values: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    cleaned = dict(values)
    for field in ("first_name", "last_name", "job_title"):
        cleaned[field] = str(cleaned.get(field) or "").strip()
        if len(cleaned[field]) > 100:
            errors.setdefault(field, []).append("At most 100 characters.")
    for field, function in (
        ("email", normalise_email),
        ("phone", normalise_phone),
        ("mobile", normalise_phone),
    ):
        try:
            cleaned[field] = function(str(cleaned.get(field) or ""), field)
        except ValidationFailed as error:
            for key, messages in error.fields.items():
                errors.setdefault(key, []).extend(messages)
    if cleaned.get("language", "it") not in ("it", "en"):
        errors.setdefault("language", []).append("Choose it or en.")
    cleaned["is_primary"] = bool(cleaned.get("is_primary", False))
    if not (cleaned["first_name"] or cleaned["last_name"] or cleaned.get("email")):
        errors.setdefault("last_name", []).append("A contact needs a name or an e-mail address.")
    if errors:
        raise ValidationFailed("Some fields are not valid.", fields=errors)
    return cleaned


def _snapshot(contact: Contact) -> dict[str, Any]:
    return {name: getattr(contact, name) for name in CONTACT_FIELDS}


def contact_create(*, actor: Actor, customer_public_id: str, data: Mapping[str, Any]) -> Contact:
    require_on_customer(actor, "customers.add_contact", customer_public_id)
    refuse_unknown_fields(data, CONTACT_FIELDS)
    cleaned = clean_contact_data({"language": "it", **dict(data)})
    with transaction.atomic():
        customer = _locked_customer(actor, customer_public_id)
        now = clock.now()
        if cleaned["is_primary"] or not customer.contacts.exists():
            customer.contacts.update(is_primary=False)
            cleaned["is_primary"] = True
        contact = Contact.objects.create(
            customer=customer, created_at=now, updated_at=now, **{k: cleaned[k] for k in CONTACT_FIELDS}
        )
        audit.record(
            action="contact.created",
            object_type="contact",
            object_id=str(contact.public_id),
            after={**_snapshot(contact), "customer": str(customer.public_id)},
        )
    return contact


def contact_update(*, actor: Actor, contact_public_id: str, data: Mapping[str, Any]) -> Contact:
    _require_on_contact(actor, "customers.change_contact", contact_public_id)
    refuse_unknown_fields(data, CONTACT_FIELDS)
    from fedele.customers.selectors import contact_queryset_for

    with transaction.atomic():
        contact = contact_queryset_for(actor).select_for_update().filter(public_id=contact_public_id).first()
        if contact is None:
            raise NotFound("Contact not found.")
        _locked_customer(actor, str(contact.customer.public_id))
        before = _snapshot(contact)
        cleaned = clean_contact_data({**before, **dict(data)})
        if cleaned["is_primary"] and not before["is_primary"]:
            Contact.objects.filter(customer_id=contact.customer_id).exclude(pk=contact.pk).update(
                is_primary=False
            )
        for name in CONTACT_FIELDS:
            setattr(contact, name, cleaned[name])
        contact.updated_at = clock.now()
        contact.save()
        audit.record(
            action="contact.updated",
            object_type="contact",
            object_id=str(contact.public_id),
            before=before,
            after=_snapshot(contact),
        )
    return contact


def contact_delete(*, actor: Actor, contact_public_id: str) -> None:
    _require_on_contact(actor, "customers.delete_contact", contact_public_id)
    from fedele.customers.selectors import contact_queryset_for

    with transaction.atomic():
        contact = contact_queryset_for(actor).select_for_update().filter(public_id=contact_public_id).first()
        if contact is None:
            raise NotFound("Contact not found.")
        if contact.portal_user_id is not None:
            raise Conflict(
                "This contact signs in to the portal; disable the login first.", code="contact_has_login"
            )
        customer_id = contact.customer_id
        before = _snapshot(contact)
        was_primary = contact.is_primary
        public_id = str(contact.public_id)
        contact.delete()
        if was_primary:
            successor = Contact.objects.filter(customer_id=customer_id).order_by("id").first()
            if successor is not None:
                Contact.objects.filter(pk=successor.pk).update(is_primary=True)
        audit.record(action="contact.deleted", object_type="contact", object_id=public_id, before=before)


def consent_record(
    *,
    actor: Actor | None,
    customer_public_id: str,
    channel: str,
    purpose: str,
    granted: bool,
    source: str,
    evidence: str = "",
    contact_public_id: str | None = None,
) -> ConsentRecord:
    """Append a consent decision. The latest record per channel and purpose is the one in force."""
    if actor is not None and not actor.is_portal_customer:
        require_on_customer(actor, "customers.record_consent", customer_public_id)
    errors: dict[str, str] = {}
    if channel not in {c.value for c in ConsentChannel}:
        errors["channel"] = f"Choose one of: {', '.join(c.value for c in ConsentChannel)}."
    if purpose not in {p.value for p in ConsentPurpose}:
        errors["purpose"] = f"Choose one of: {', '.join(p.value for p in ConsentPurpose)}."
    if not source.strip() or len(source) > 64:
        errors["source"] = "Say where the consent was given (1-64 characters)."
    if errors:
        raise ValidationFailed("Some fields are not valid.", fields=errors)
    from fedele.customers.selectors import customer_queryset_for

    with transaction.atomic():
        queryset = customer_queryset_for(actor) if actor is not None else Customer.objects.all()
        customer = queryset.select_for_update().filter(public_id=customer_public_id).first()
        if customer is None:
            raise NotFound("Customer not found.")
        if customer.status != CustomerStatus.ACTIVE:
            raise Conflict("Consent can only be recorded for an active customer.", code="customer_not_active")
        contact = None
        if contact_public_id:
            contact = customer.contacts.filter(public_id=contact_public_id).first()
            if contact is None:
                raise ValidationFailed(
                    "That contact does not belong to this customer.",
                    fields={"contact_id": "Not a contact of this customer."},
                )
        record = ConsentRecord.objects.create(
            customer=customer,
            contact=contact,
            channel=channel,
            purpose=purpose,
            granted=granted,
            source=source.strip(),
            evidence=evidence[:2000],
            recorded_at=clock.now(),
            recorded_by_id=actor.user_id if actor is not None else None,
        )
        audit.record(
            action="consent.recorded",
            object_type="customer",
            object_id=str(customer.public_id),
            after={"channel": channel, "purpose": purpose, "granted": granted, "source": source},
        )
        publish(
            events.ConsentChanged(str(customer.public_id), channel, purpose, granted),
            aggregate_type="customer",
            aggregate_id=str(customer.public_id),
        )
    return record


def contact_link_portal_user(*, actor: Actor, contact_public_id: str, user_id: int) -> Contact:
    """Let a contact sign in to the self-service pages with an existing portal login."""
    _require_on_contact(actor, "customers.change_contact", contact_public_id)
    from fedele.customers.selectors import contact_queryset_for

    with transaction.atomic():
        contact = contact_queryset_for(actor).select_for_update().filter(public_id=contact_public_id).first()
        if contact is None:
            raise NotFound("Contact not found.")
        if Contact.objects.filter(portal_user_id=user_id).exclude(pk=contact.pk).exists():
            raise Conflict("This login already belongs to another contact.", code="login_in_use")
        contact.portal_user_id = user_id
        contact.updated_at = clock.now()
        contact.save(update_fields=["portal_user", "updated_at"])
        audit.record(
            action="contact.portal_login_linked",
            object_type="contact",
            object_id=str(contact.public_id),
            after={"portal_user": user_id},
        )
    return contact
